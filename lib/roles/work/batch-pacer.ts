// How many distinct keys the worker's next batch may hold so that applying
// it takes about a target time (lib/roles/worker.ts), and when memory is
// short (heapUnderPressure).

import { getHeapStatistics } from 'node:v8';

export const DEFAULT_BATCH_TARGET_MS = 500;
/** The smallest batch the pacer asks for: below it an apply's fixed costs (an fsync, the marks) dominate. */
const MIN_PACED_KEYS = 8192;
/** The apply rate assumed before any apply was measured (keys/s): the slow end of what bench:worker measured. */
const INITIAL_APPLY_RATE = 100_000;

/**
 * Batches sized by the lag they cause, not only by memory. A write becomes
 * readable when the batch holding it commits; under load it waits for the
 * apply in progress and then its own, so each apply must stay short. The
 * pacer measures how fast the store applies (distinct keys per second of
 * the store's busy time: from an apply's start, or the end of the one before
 * it if later, to its commit; smoothed over the last few applies) and caps a
 * batch at rate x target. Bigger batches sum repeated keys once and amortize
 * an apply's fixed costs, so the cap trades throughput for visibility only
 * where an apply would take longer than the target.
 */
export class BatchPacer {
  #rate = INITIAL_APPLY_RATE;
  #lastDone = 0;
  constructor(
    readonly targetMs: number,
    readonly maxKeys: number,
  ) {}

  /** Distinct keys the next batch may hold. */
  limit(): number {
    return Math.max(Math.min(MIN_PACED_KEYS, this.maxKeys), Math.min(this.maxKeys, Math.floor((this.#rate * this.targetMs) / 1000)));
  }

  /** An apply of `keys` distinct keys handed to the store at `startedMs` committed at `doneMs` (performance.now()). */
  record(keys: number, startedMs: number, doneMs: number): void {
    const busy = doneMs - Math.max(startedMs, this.#lastDone);
    this.#lastDone = doneMs;
    // Tiny batches (light traffic) say little about the rate: their cost is the fsync.
    if (keys < MIN_PACED_KEYS / 4 || busy <= 0) return;
    const rate = (keys * 1000) / busy;
    this.#rate = 0.7 * this.#rate + 0.3 * rate;
  }

  get rate(): number {
    return this.#rate;
  }
}

/**
 * V8's heap is over half its limit. The store child's heap is capped
 * (memory-budget.ts: --max-old-space-size); a batch holds at most
 * maxBatchKeys plus one log's keys (the summing thread defers the logs past
 * that), and under pressure batches stay smaller still, so two overlapped
 * applies keep clear of the cap. Garbage counts as used too: this errs
 * toward small batches.
 */
export function heapUnderPressure(): boolean {
  const heap = getHeapStatistics();
  return heap.used_heap_size > heap.heap_size_limit / 2;
}
