// Whether the worker's applies succeed, for `countd status` (the read port's
// health op), metrics and logs; and the wait for disk space that keeps a
// full disk from being filled again by retries.
//
// Why wait for space instead of retrying on a timer: each failed LevelDB
// write appends part of its batch to LevelDB's own log, and a compaction that
// failed for want of space leaves an error LevelDB repeats until it is
// reopened. Retrying every few seconds on a full disk ate each byte freed
// as soon as it was freed. So after ENOSPC the worker writes nothing, polls
// statfs(2) until the database's file system has `need` bytes free, reopens
// the database, and only then retries; `need` doubles after each retry that
// ran out of space again (up to half the file system), so retries stay few.

import { promises as fsp } from 'node:fs';
import { CountdError, ErrorCodes } from '../../errors.js';
import { metrics } from '../../metrics.js';
import type { HealthReport, HealthState } from '../../protocol/read-response.js';
import type { Store } from '../../store/store.js';
import type { Logger } from '../../util/log.js';

/** Free bytes asked for before the first retry after ENOSPC. */
export const MIN_FREE_BYTES = 4 * 1024 * 1024;
/** How often statfs is polled while stalled. */
export const SPACE_POLL_MS = 250;
/** Consecutive database failures after which the database is reopened before the next retry (LevelDB keeps some errors until then). */
export const REOPEN_AFTER_FAILURES = 3;
/** Wait between reopen attempts that failed for another reason than space. */
const REOPEN_RETRY_MS = 5000;

/** The error is a full disk (COUNTD_NO_SPACE). */
export function isNoSpace(err: unknown): boolean {
  return err instanceof CountdError && err.code === ErrorCodes.NO_SPACE;
}

/**
 * The database's disk is full: COUNTD_NO_SPACE wrapping a LevelDB error
 * (lib/store/errors.ts). A full commit-log disk is not waited for here: the
 * database's statfs could not tell when it has room.
 */
export function isDatabaseFull(err: unknown): boolean {
  if (!isNoSpace(err)) return false;
  let cur: unknown = (err as CountdError).cause;
  for (let depth = 0; cur && depth < 8; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('LEVEL_')) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
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
    const stalled = isDatabaseFull(err);
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

/** What the worker lends afterFailedApply. */
export interface Recovery {
  health: ApplyHealth;
  store: Pick<Store, 'location' | 'reopen'>;
  logger: Logger;
  /** The worker's sleep, cut short when it stops. */
  sleep(ms: number): Promise<void>;
  stopping(): boolean;
}

/**
 * An apply failed (the `failures`-th in a row): record and log it, and do
 * what must come before the next attempt. On a full disk that is the whole
 * stall (wait for space, reopen): the next attempt may follow at once (0 is
 * returned). After REOPEN_AFTER_FAILURES other database errors in a row the
 * database is reopened. Returns the delay before the next attempt (`backoff`
 * unless the disk was full).
 */
export async function afterFailedApply(err: unknown, failures: number, backoff: number, r: Recovery): Promise<number> {
  r.health.failed(err);
  const full = isDatabaseFull(err);
  r.logger.error(full ? 'apply failed: database disk full; stalled until space is free' : 'apply failed; retrying', {
    error: err instanceof Error ? err.message : String(err),
    code: err instanceof CountdError ? err.code : undefined,
    attempt: failures,
    retryInMs: full ? undefined : backoff,
  });
  if (full) {
    await untilRoomThenReopen(r);
    return 0;
  }
  if (isDatabaseError(err) && failures % REOPEN_AFTER_FAILURES === 0) await reopen(r);
  return backoff;
}

/** Write nothing (no claim, no apply) until the disk has room, then reopen the database. */
async function untilRoomThenReopen(r: Recovery): Promise<void> {
  while (!r.stopping()) {
    await waitForSpace(r.store.location, r.health.need, r.sleep, r.stopping);
    if (r.stopping()) return;
    r.health.retrying();
    if (await reopen(r)) {
      r.logger.info('database disk has room again; retrying', { freeBytesAsked: r.health.need });
      return;
    }
    if (r.health.state !== 'stalled') await r.sleep(REOPEN_RETRY_MS);
  }
}

/** Reopen the database; false (failure recorded and logged) if that failed. */
async function reopen(r: Recovery): Promise<boolean> {
  try {
    await r.store.reopen();
    return true;
  } catch (err) {
    r.health.failed(err);
    r.logger.error('cannot reopen the database', { error: err instanceof Error ? err.message : String(err), code: err instanceof CountdError ? err.code : undefined });
    return false;
  }
}
