// How a writer stops using a commit log (docs/commit-log-format.md, "Writing
// a log"), apart from the append path so that appends never wait for it:
//
//   hand-over  the log holds acknowledged records: SEAL (into the page
//              cache), chmod 0400, fsync (SEAL and mode durable with one
//              flush), close, unlock;
//   release    it holds none: chmod 0200, close, unlock;
//   cut        after a failed append: make the failed record unreadable for
//              good BEFORE anyone is told ERR (cutFailedRecord).
//
// Both hand-over and release run in the background and are retried with an
// exponential backoff while they fail (a full log whose chmod or fsync fails
// would otherwise stay locked, its acknowledged frames invisible, until the
// writer exits). Each failure is logged and counted
// (countd_write_handover_failures_total); logs waiting for a retry are the
// gauge countd_write_handovers_pending.

import fs from 'node:fs';
import { translateFsError } from '../errors.js';
import { metrics } from '../metrics.js';
import type { Logger } from '../util/log.js';
import { type FileOps, pwriteAll } from './fileops.js';
import { unlock } from './locks.js';
import { MODE_CLEAN, MODE_DIRTY } from './pool.js';

/** First retry of a failed hand-over after this long, doubling up to HANDOVER_RETRY_MAX_MS. */
export const HANDOVER_RETRY_MS = 100;
export const HANDOVER_RETRY_MAX_MS = 5000;
/** A cut is tried this many times, after these pauses, before the outcome is declared unknown. */
const CUT_PAUSES_MS = [0, 10, 100];

/** A log being retired. */
export interface RetiringLog {
  index: number;
  path: string;
  fd: number;
  /** True: hand over (chmod 0400); false: release clean (chmod 0200). */
  dirty: boolean;
  /** The SEAL to write at `sealAt` first, or null (none, or already written by a cut). */
  seal: Buffer | null;
  sealAt: number;
  reason: 'full' | 'time' | 'idle' | 'close' | 'error';
  frames: number;
  /** The file's size (what it adds to the backlog once dirty). */
  size: number;
  /** fd was opened with O_DSYNC: a write on it is durable once it returns. */
  dsync?: boolean;
}

/** The log of a failed append, as cutFailedRecord needs it. */
export interface FailedLog {
  index: number;
  fd: number;
  /** Where the failed record starts. */
  offset: number;
  /** The header of this use, when it was to be written with the failed record (else null: it is durable). */
  header: Buffer | null;
}

/**
 * Make the record of a failed append unreadable, durably: write a SEAL of
 * this generation over the failed record's offset (with the header of this
 * use, if it was to go out with the failed record) and fdatasync; try
 * CUT_PAUSES_MS.length times. Returns true once done, false when every
 * attempt failed (then the record may be applied).
 *
 * Why that is enough (docs/commit-log-format.md, section 5): the reader
 * (reader.ts) returns a record only when its CRC matches, its generation is
 * the header's, and no SEAL of that use precedes it; the salvage of a log
 * whose header breaks later takes the use of the record at 4096 and also
 * stops at its SEAL. Once the SEAL is durable, nothing at or after the
 * failed record's offset is ever read again.
 */
export async function cutFailedRecord(ops: FileOps, log: FailedLog, seal: Buffer, logger: Logger): Promise<boolean> {
  for (const pause of CUT_PAUSES_MS) {
    if (pause > 0) await sleep(pause);
    try {
      if (log.header !== null) await pwriteAll(ops, log.fd, [log.header], 0);
      await pwriteAll(ops, log.fd, [seal], log.offset);
      await ops.fdatasync(log.fd);
      return true;
    } catch (err) {
      logger.warn('could not seal a commit log over a failed record', { index: log.index, error: translateFsError(err, 'seal').message });
    }
  }
  return false;
}

/** The background hand-overs and releases of one writer. */
export class HandOvers {
  private readonly ops: FileOps;
  private readonly dir: string;
  private readonly logger: Logger;
  private readonly running = new Set<Promise<void>>();
  private closing = false;
  private wake: Array<() => void> = [];
  /**
   * Settles once the last dirty hand-over started has made its log dirty
   * (chmod 0400) or given up. The next one's chmod waits for it: a worker
   * claims a stream's dirty log only when no older dirty log of the stream
   * is held elsewhere (pool.ts claimDirty), and a log still being handed
   * over is not dirty yet, so two hand-overs that overlapped could make the
   * later log claimable first, and apply a set, delete or create out of
   * order (idle and prompt hand-overs follow each other closely).
   */
  private lastDirty: Promise<void> = Promise.resolve();
  /**
   * The logs being handed over dirty (index -> bytes), until their
   * hand-over ends: flow control counts those its last scan did not see
   * dirty (handingOver), so each counts once, before and after its chmod.
   */
  private readonly dirtyLogs = new Map<number, number>();
  /** Bytes of the logs this writer has made dirty so far (their chmod done): how fast it adds to the backlog. */
  dirtiedBytes = 0;

  constructor(ops: FileOps, dir: string, logger: Logger) {
    this.ops = ops;
    this.dir = dir;
    this.logger = logger;
  }

  /** Retire `log` in the background; settle() waits for it. */
  start(log: RetiringLog): void {
    if (log.dirty) this.dirtyLogs.set(log.index, log.size);
    let marked = (): void => {};
    const before = this.lastDirty;
    if (log.dirty) this.lastDirty = new Promise<void>((resolve) => (marked = resolve));
    const run = this.run(log, before, marked).finally(() => {
      marked();
      if (log.dirty) this.dirtyLogs.delete(log.index);
      this.running.delete(run);
    });
    this.running.add(run);
  }

  /** A hand-over or release is under way. */
  get busy(): boolean {
    return this.running.size > 0;
  }

  /** Bytes of the logs being handed over dirty, except those in `seen` (a scan saw them dirty: counted there). */
  handingOver(seen?: ReadonlyMap<number, number>): number {
    let bytes = 0;
    for (const [index, size] of this.dirtyLogs) if (seen?.has(index) !== true) bytes += size;
    return bytes;
  }

  /** Wait for every retirement; those still failing get one more attempt, then keep their locks until the process exits. */
  async settle(): Promise<void> {
    this.closing = true;
    for (const w of this.wake.splice(0)) w();
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  /** `before`: the previous dirty hand-over is marked dirty; `marked()`: this one is (or gave up). */
  private async run(log: RetiringLog, before: Promise<void>, marked: () => void): Promise<void> {
    if (log.seal !== null) {
      try {
        await this.writeSeal(log, log.seal);
      } catch (err) {
        // Every record in it was acknowledged: unsealed, it is applied all the same.
        this.logger.error('could not seal commit log; handing it over unsealed', { index: log.index, error: translateFsError(err, 'seal').message });
      }
    }
    let closed = false;
    let failures = 0;
    for (;;) {
      try {
        if (!closed) {
          // The chmod is repeated on every attempt so that the fsync after it
          // has the mode to write even if an earlier failed fsync dropped it.
          if (log.dirty) await before;
          await this.ops.chmod(log.path, log.dirty ? MODE_DIRTY : MODE_CLEAN);
          if (log.dirty) marked();
          if (log.dirty && failures === 0) this.dirtiedBytes += log.size;
          if (log.dirty) await this.ops.fsync(log.fd);
          closed = true;
          await this.ops.close(log.fd).catch(() => {}); // Linux frees the fd even when close fails
        }
        await unlock(this.ops, this.dir, log.index);
        break;
      } catch (err) {
        metrics.handoverFailures.inc();
        if (failures++ === 0) metrics.handoversPending.inc();
        const error = translateFsError(err, log.dirty ? 'hand over' : 'release').message;
        if (this.closing && failures > 1) {
          if (!closed) await this.ops.close(log.fd).catch(() => {});
          metrics.handoversPending.dec();
          this.logger.error('could not hand over commit log; its lock stays until this process exits', { index: log.index, attempts: failures, error });
          return;
        }
        const delay = Math.min(HANDOVER_RETRY_MS * 2 ** (failures - 1), HANDOVER_RETRY_MAX_MS);
        this.logger.warn(`could not ${log.dirty ? 'hand over' : 'release'} commit log; retrying`, { index: log.index, attempt: failures, retryInMs: delay, error });
        await this.pause(delay);
      }
    }
    if (failures > 0) {
      metrics.handoversPending.dec();
      this.logger.info(`${log.dirty ? 'handed over' : 'released'} commit log after ${failures} failed attempts`, { index: log.index });
    }
    if (log.dirty) metrics.logsHandedOver.inc({ reason: log.reason });
    this.logger.debug(log.dirty ? 'handed over commit log' : 'released commit log clean', { index: log.index, reason: log.reason, frames: log.frames });
  }

  /**
   * Write the SEAL into the page cache only: the fsync after the chmod makes
   * both durable with one flush of the disk (an fsync writes back every dirty
   * page of the inode, whichever descriptor wrote it). On an O_DSYNC
   * descriptor the write would flush the disk by itself, a second flush per
   * hand-over competing with the commits, so it goes through a plain one.
   * Nobody reads the log before that fsync: the log stays locked until after
   * it (no worker claims it), and a SEAL lost to a crash before it leaves
   * every acknowledged record readable (docs/commit-log-format.md section 5).
   */
  private async writeSeal(log: RetiringLog, seal: Buffer): Promise<void> {
    if (log.dsync !== true) {
      await pwriteAll(this.ops, log.fd, [seal], log.sealAt);
      return;
    }
    let fd: number;
    try {
      fd = await this.ops.open(log.path, fs.constants.O_WRONLY);
    } catch {
      await pwriteAll(this.ops, log.fd, [seal], log.sealAt);
      return;
    }
    try {
      await pwriteAll(this.ops, fd, [seal], log.sealAt);
    } finally {
      await this.ops.close(fd).catch(() => {});
    }
  }

  /** Sleep `ms`, cut short by settle(). */
  private pause(ms: number): Promise<void> {
    if (this.closing) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(), ms);
      const done = (): void => {
        clearTimeout(timer);
        const i = this.wake.indexOf(done);
        if (i >= 0) this.wake.splice(i, 1);
        resolve();
      };
      this.wake.push(done);
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
