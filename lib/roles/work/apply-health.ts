// Whether the worker's applies succeed, for `countd status` (the read port's
// health op), metrics and logs; and the wait for disk space that keeps a
// full disk from being filled again by retries.
//
// Why wait for space instead of retrying on a timer: each failed LevelDB
// write appends part of its batch to LevelDB's own log, and a compaction that
// failed for want of space leaves an error LevelDB repeats until it is
// reopened. Retrying every few seconds on a full disk ate each byte freed
// (issue 15, item 4). So after ENOSPC the worker writes nothing, polls
// statfs(2) until the database's file system has `need` bytes free, reopens
// the database, and only then retries; `need` doubles after each retry that
// ran out of space again (up to half the file system), so retries stay few.

import { promises as fsp } from 'node:fs';
import { CountdError, ErrorCodes } from '../../errors.js';
import { metrics } from '../../metrics.js';
import type { HealthReport, HealthState } from '../../protocol/read-response.js';

/** Free bytes asked for before the first retry after ENOSPC. */
export const MIN_FREE_BYTES = 4 * 1024 * 1024;
/** How often statfs is polled while stalled. */
export const SPACE_POLL_MS = 250;

/** The error is a full disk (COUNTD_NO_SPACE: LevelDB's ENOSPC/EDQUOT, see lib/store/errors.ts). */
export function isNoSpace(err: unknown): boolean {
  return err instanceof CountdError && err.code === ErrorCodes.NO_SPACE;
}

/** The error came from the database (an error LevelDB may keep until reopened). */
export function isDatabaseError(err: unknown): boolean {
  return err instanceof CountdError && (err.code === ErrorCodes.DATABASE || err.code === ErrorCodes.NO_SPACE || err.code === ErrorCodes.CLOSED);
}

/** Free bytes (for an unprivileged user) and size of the file system holding `dir`. */
export async function freeSpace(dir: string): Promise<{ free: number; size: number }> {
  const s = await fsp.statfs(dir);
  return { free: s.bavail * s.bsize, size: s.blocks * s.bsize };
}

export class ApplyHealth {
  #state: HealthState = 'applying';
  #since = 0;
  #failures = 0;
  #code = '';
  #message = '';
  /** The wait for space is over and the retry after it has not failed yet. */
  #retried = false;
  /** Free bytes to wait for before the next retry after ENOSPC. */
  need = MIN_FREE_BYTES;

  constructor() {
    this.#publish();
  }

  report(): HealthReport {
    return { state: this.#state, since: this.#since, failures: this.#failures, code: this.#code, message: this.#message };
  }

  get state(): HealthState {
    return this.#state;
  }

  /** An apply (or the reopen before one) failed. */
  failed(err: unknown): void {
    const code = err instanceof CountdError ? err.code : ErrorCodes.IO_ERROR;
    const stalled = isNoSpace(err);
    if (this.#state === 'applying') this.#since = Date.now();
    // A retry after the wait for space that ran out of space again: wait for more next time.
    if (stalled && this.#state === 'stalled' && this.#retried) this.need *= 2;
    this.#retried = false;
    this.#state = stalled ? 'stalled' : 'failing';
    this.#failures++;
    this.#code = code;
    this.#message = err instanceof Error ? err.message : String(err);
    metrics.applyFailures.inc({ code });
    this.#publish();
  }

  /** The stall's wait is over: the next apply is a retry. */
  retrying(): void {
    this.#retried = true;
  }

  /** An apply committed, or nothing was left to apply. */
  succeeded(): void {
    if (this.#state === 'applying') return;
    this.#state = 'applying';
    this.#since = 0;
    this.#failures = 0;
    this.#code = '';
    this.#message = '';
    this.#retried = false;
    this.need = MIN_FREE_BYTES;
    this.#publish();
  }

  #publish(): void {
    for (const s of ['applying', 'failing', 'stalled'] as const) metrics.workerState.set({ state: s }, s === this.#state ? 1 : 0);
    metrics.workerFailingSince.set(this.#since / 1000);
  }
}

/**
 * Resolve once the file system holding `dir` has `need` bytes free (capped
 * at half its size, so the wait can end), or `stopping()` is true. Writes
 * nothing. `sleep` is the worker's wakeable sleep.
 */
export async function waitForSpace(dir: string, need: number, sleep: (ms: number) => Promise<void>, stopping: () => boolean): Promise<void> {
  while (!stopping()) {
    const { free, size } = await freeSpace(dir);
    if (free >= Math.min(need, size / 2)) return;
    await sleep(SPACE_POLL_MS);
  }
}
