// The final check of the crash tests: with the daemon stopped, open the data
// directory's database directly, let an in-process worker apply whatever is
// still dirty (stale locks are freed at once: nobody else runs), then read
// every count of the ledger's keyspaces and check it against the ledger.

import { openDataDir } from '../../lib/datadir/meta.js';
import { startWorker } from '../../lib/roles/worker.js';
import { Store } from '../../lib/store/store.js';
import { Ledger, LedgerFigures, Violation } from './ledger.js';

export interface FinalCheck {
  figures: LedgerFigures;
  violations: Violation[];
  /** Keyspaces whose persisted rank index (fences) disagrees with their counts (Store.checkRankIndex). */
  rankIndexBroken: string[];
}

/** Apply what is left, then compare every count with the ledger. The daemon must not run. */
export async function drainAndCheck(dataDirPath: string, ledger: Ledger, inspect?: (store: Store) => Promise<void>): Promise<FinalCheck> {
  const dataDir = await openDataDir(dataDirPath);
  const store = await Store.open({ location: dataDir.paths.db, sizes: dataDir.sizes });
  try {
    const worker = await startWorker({ dataDir, store, staleLockGraceMs: 0, pollMs: 5 });
    await worker.drained();
    await worker.close();
    const keyspaces = new Set<string>();
    for (const e of ledger.keys.values()) keyspaces.add(e.keyspace);
    const counts = new Map<string, bigint>();
    const rankIndexBroken: string[] = [];
    for (const ks of keyspaces) {
      if (!(await store.checkRankIndex(ks))) rankIndexBroken.push(ks);
      let position = 0;
      let ranksAgree = true;
      for await (const entry of store.iterate(ks)) {
        counts.set(`${ks}\u0000${entry.key.toString('latin1')}`, entry.count);
        // The count record (with a --ties first keyspace's apply order) leads to this very index entry.
        if ((await store.rank(ks, entry.key)) !== position++) ranksAgree = false;
      }
      if (!ranksAgree && !rankIndexBroken.includes(ks)) rankIndexBroken.push(ks);
    }
    if (inspect) await inspect(store);
    return { ...ledger.check((ks, key) => counts.get(`${ks}\u0000${key}`)), rankIndexBroken };
  } finally {
    await store.close();
  }
}
