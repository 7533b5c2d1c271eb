// Child process of the worker crash test: runs countd-worker on the data
// directory given as argv[2] (argv[3]: maxLogsPerApply) until no dirty log is
// left, then prints "drained" and exits. The parent kills it with SIGKILL at
// random moments. With COUNTD_TEST_KILL_AFTER_APPLY=N the child kills itself
// right after its N-th database batch commits, before the logs are released:
// the narrowest window of the exactly-once argument (lib/roles/worker.ts).

import { openDataDir } from '../../lib/datadir/meta.js';
import { startWorker } from '../../lib/roles/worker.js';
import { Store } from '../../lib/store/store.js';

const dataDir = await openDataDir(process.argv[2]!, { create: false });
const store = await Store.open({ location: dataDir.paths.db, sizes: dataDir.sizes });
let killAfter = Number(process.env.COUNTD_TEST_KILL_AFTER_APPLY ?? 0);
const apply = store.apply.bind(store);
if (killAfter > 0) {
  store.apply = async (...args) => {
    const result = await apply(...args);
    if (--killAfter === 0) process.kill(process.pid, 'SIGKILL');
    return result;
  };
}
const worker = await startWorker({ dataDir, store, pollMs: 5, maxLogsPerApply: Number(process.argv[3] ?? 2), staleLockGraceMs: 0 });
process.stdout.write('started\n');
await worker.drained();
await worker.close();
await store.close();
process.stdout.write('drained\n');
