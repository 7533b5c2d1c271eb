// The final check of the crash tests: with the daemon stopped, open the data
// directory's database directly, let an in-process worker apply whatever is
// still dirty (stale locks are freed at once: nobody else runs), then read
// every count of the ledger's keyspaces and check it against the ledger.
//
// A windowed keyspace (`windowed`) is read period by period. A sum keyspace's
// frames (2^i each) must be in one period each, the periods in the order the
// frames were sent (a frame applied in two periods, or in a period other than
// its record's, shows as a carry or an overlap); their sum is checked as any
// count. A max keyspace's count is the largest frame applied, 2^(p-1) when
// frames 0 … p-1 were applied: checked as the count 2^p - 1 (a max cannot
// show a frame applied twice; a lost or an ERR frame it shows).

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
export async function drainAndCheck(
  dataDirPath: string,
  ledger: Ledger,
  inspect?: (store: Store) => Promise<void>,
  windowed: Record<string, 'sum' | 'max'> = {},
): Promise<FinalCheck> {
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
    const periodViolations: Violation[] = [];
    for (const ks of keyspaces) {
      if (windowed[ks] !== undefined) {
        await readPeriods(store, ks, windowed[ks]!, counts, rankIndexBroken, periodViolations);
        continue;
      }
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
    const checked = ledger.check((ks, key) => counts.get(`${ks}\u0000${key}`));
    return { figures: checked.figures, violations: [...periodViolations, ...checked.violations], rankIndexBroken };
  } finally {
    await store.close();
  }
}

/** Every stored period of windowed keyspace `ks`, oldest first, into `counts` (as the ledger reads them); period order and overlaps checked for a sum. */
async function readPeriods(store: Store, ks: string, op: 'sum' | 'max', counts: Map<string, bigint>, rankIndexBroken: string[], violations: Violation[]): Promise<void> {
  const now = Date.now();
  const current = (await store.periods(ks)).at(-1)?.start;
  if (current === undefined) return;
  const latest = Math.max(now, current);
  const seconds = (start: number): number => Math.floor(latest / 1000) - start / 1000;
  for (const { start } of await store.periods(ks)) {
    const at = { ago: seconds(start), now: latest };
    const period = `${ks} (period ${new Date(start).toISOString()})`;
    if (!(await store.checkRankIndex(ks, at))) rankIndexBroken.push(period);
    let position = 0;
    for await (const entry of store.iterate(ks, at)) {
      // The count record (with a --ties first keyspace's apply order) leads to this very index entry.
      if ((await store.rank(ks, entry.key, at)) !== position++ && !rankIndexBroken.includes(period)) rankIndexBroken.push(period);
      const id = `${ks}\u0000${entry.key.toString('latin1')}`;
      const before = counts.get(id) ?? 0n;
      if (op === 'max') {
        const best = entry.count > before ? entry.count : before;
        counts.set(id, best);
        continue;
      }
      // Frames of one key are sent in order: each later period holds only later frames.
      if (before !== 0n && (entry.count & -entry.count) <= before) {
        violations.push({ keyspace: ks, key: entry.key.toString('latin1'), count: entry.count, why: `period ${new Date(start).toISOString()} holds a frame not after those of the periods before it (${before})` });
      }
      counts.set(id, before + entry.count);
    }
  }
  if (op === 'max') for (const [id, best] of counts) if (id.startsWith(`${ks}\u0000`)) counts.set(id, best === 0n ? 0n : 2n * best - 1n);
}
