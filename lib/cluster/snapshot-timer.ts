// The store process's snapshot rounds (docs/cluster.md, "Snapshots and
// purge"): every `intervalMs`, one round over the partitions that are owned
// and applying, one partition at a time (a snapshot reads the whole
// partition: they must not pile up); a round never overlaps the next.

import type { Snapshots } from './snapshots.js';

export function startSnapshotting(
  intervalMs: number,
  snapshots: Snapshots,
  owned: () => Array<{ p: number; stillOwner: () => Promise<boolean>; dataSeq?: number | undefined }>,
): { stop(): Promise<void>; idle(): Promise<void> } {
  let round: Promise<void> | undefined;
  const timer = setInterval(() => {
    round ??= snapshots.round(owned()).finally(() => (round = undefined));
  }, intervalMs);
  timer.unref();
  return {
    /** Resolves once the round in progress (if any) ended. */
    async idle() {
      await round;
    },
    async stop() {
      clearInterval(timer);
      await round;
    },
  };
}
