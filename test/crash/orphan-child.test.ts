// A supervisor killed (SIGKILL) while it restarts a child: the child, still
// loading its modules, must notice that its supervisor is gone and exit, not
// run on as an orphan holding the port and its commit-log locks. Found by the
// crash soak ("timed out waiting for orphaned children gone").

import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDataDir } from '../../lib/datadir/meta.js';
import { settingsOf } from '../../lib/daemon/settings.js';
import { CHILD_SPEC_ENV, ChildSpec } from '../../lib/daemon/supervisor.js';
import { ROOT } from '../harness/daemon.js';

describe('crash: supervisor gone while a child starts', function () {
  this.timeout(30_000);
  let root = '';
  const pids: number[] = [];
  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-orphan-'));
  });
  after(async () => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone, as it should be
      }
    }
    await fsp.rm(root, { recursive: true, force: true });
  });

  for (const kind of ['writer', 'store'] as const) {
    it(`a ${kind} child whose IPC channel closes while it loads exits by itself`, async () => {
      const dataDir = await openDataDir(path.join(root, kind), { create: true, sizes: { keyspaceSize: 16, keySize: 16 } });
      const spec: ChildSpec = { kind, settings: { ...settingsOf('start', {}), dataDir: dataDir.paths.root, writePort: 0, readPort: 0 } };
      const child = fork(path.join(ROOT, 'dist/lib/daemon/child-main.js'), [kind], {
        env: { ...process.env, [CHILD_SPEC_ENV]: JSON.stringify(spec) },
        stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      });
      pids.push(child.pid!);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.disconnect(); // what the kernel does to the channel when the supervisor is killed
      const code = await Promise.race([exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 15_000))]);
      assert.notEqual(code, 'running', 'the orphaned child still runs 15 s later');
    });
  }
});
