// The write side of the commit-log pool: makes batches of entries durable,
// one record per batch, one pwritev + one fdatasync per append
// (docs/commit-log-format.md, "Writing a log").
//
// A writer process is one stream: its frames are numbered from 0 across all
// the logs it fills. It holds one log at a time. It hands a log over (SEAL
// record, fsync, chmod 0400, fsync, unlock) when the next batch does not
// fit, when the log has held records for `handoverMs`, and at close(). A log
// without records is released clean instead.
//
// Fail-stop: when a write or fdatasync fails, the batch is rejected and the
// log is retired: a SEAL is written over the failed record (so that a record
// that reached the disk anyway is cut off and never applied), and the log is
// handed over (or released clean if it had no acknowledged records). The
// next append claims a fresh log.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { CountdError, ErrorCodes, invalidArgument, translateFsError } from '../errors.js';
import { metrics } from '../metrics.js';
import { FieldSizes, checkFieldSizes } from '../protocol/fields.js';
import { Logger, silentLogger } from '../util/log.js';
import { FileOps, pwriteAll, realFileOps } from './fileops.js';
import {
  DEFAULT_LOG_SIZE,
  HEADER_SIZE,
  LOG_FORMAT_VERSION,
  MAX_RECORD_PAYLOAD,
  RECORD_BATCH,
  RECORD_OPS,
  RECORD_HEADER_SIZE,
  SEAL_RECORD_SIZE,
  countRecordEntries,
  encodeHeader,
  encodeSealRecord,
  maxEntrySize,
  writeRecordHeader,
} from './format.js';
import { unlock } from './locks.js';
import { CommitLogPool, MODE_CLEAN, MODE_DIRTY } from './pool.js';

export const DEFAULT_HANDOVER_MS = 1000;
/** Give up claiming/creating a log after this many lost races in a row. */
const MAX_ACQUIRE_ATTEMPTS = 64;

export interface CommitLogWriterOptions {
  /** The pool directory, <data-dir>/commitlog. */
  dir: string;
  sizes: FieldSizes;
  /** Size of logs this writer creates; default 2 MiB. */
  logSize?: number;
  /** Hand a log with records over after this long; default 1000. */
  handoverMs?: number;
  fileOps?: FileOps;
  logger?: Logger;
}

interface CurrentLog {
  index: number;
  path: string;
  fd: number;
  /** Capacity: the file's size. */
  size: number;
  generation: bigint;
  /** Where the next record goes. */
  offset: number;
  records: number;
  frames: number;
}

export class CommitLogWriter {
  /** Most entry bytes one append may carry: what fits an empty log of `logSize` next to header and SEAL. */
  readonly maxBatchBytes: number;
  /** This writer's stream: random, in the header of every log it fills. */
  readonly streamId: bigint;

  private readonly pool: CommitLogPool;
  private readonly ops: FileOps;
  private readonly logger: Logger;
  private readonly sizes: FieldSizes;
  private readonly logSize: number;
  private readonly handoverMs: number;
  /** Reused for every record: appends are serialized. */
  private readonly recordHeader = Buffer.alloc(RECORD_HEADER_SIZE);
  private readonly headerBlock = Buffer.alloc(HEADER_SIZE);
  private current: CurrentLog | null = null;
  /** Sequence number of the next frame of this stream. */
  private nextSeq = 0n;
  private tail: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(pool: CommitLogPool, options: Required<Pick<CommitLogWriterOptions, 'logSize' | 'handoverMs'>> & CommitLogWriterOptions) {
    this.pool = pool;
    this.ops = options.fileOps ?? realFileOps;
    this.logger = options.logger ?? silentLogger;
    this.sizes = options.sizes;
    this.logSize = options.logSize;
    this.handoverMs = options.handoverMs;
    this.maxBatchBytes = Math.min(MAX_RECORD_PAYLOAD, options.logSize - HEADER_SIZE - RECORD_HEADER_SIZE - SEAL_RECORD_SIZE);
    this.streamId = randomBytes(8).readBigUInt64LE(0);
  }

  /** Open a writer on the pool in options.dir: recovers stale locks, then claims (or creates) a clean log. */
  static async open(options: CommitLogWriterOptions): Promise<CommitLogWriter> {
    if (options === null || typeof options !== 'object') throw invalidArgument('writer options must be an object');
    if (options.sizes === null || typeof options.sizes !== 'object') throw invalidArgument('writer sizes must be FieldSizes');
    checkFieldSizes(options.sizes);
    const logSize = options.logSize ?? DEFAULT_LOG_SIZE;
    const minLogSize = HEADER_SIZE + RECORD_HEADER_SIZE + maxEntrySize(options.sizes) + SEAL_RECORD_SIZE;
    if (!Number.isSafeInteger(logSize) || logSize < minLogSize) {
      throw invalidArgument(`logSize must be an integer of at least ${minLogSize} bytes (one largest frame), got ${String(logSize)}`);
    }
    const handoverMs = options.handoverMs ?? DEFAULT_HANDOVER_MS;
    // setTimeout clamps anything above 2^31 - 1 ms to 1 ms.
    if (!Number.isFinite(handoverMs) || handoverMs <= 0 || handoverMs > 0x7fff_ffff) {
      throw invalidArgument(`handoverMs must be a positive number of at most ${0x7fff_ffff}, got ${String(handoverMs)}`);
    }
    const pool = await CommitLogPool.open({ dir: options.dir, sizes: options.sizes, fileOps: options.fileOps, logger: options.logger });
    await pool.recoverStaleLocks();
    const writer = new CommitLogWriter(pool, { ...options, logSize, handoverMs });
    await writer.enqueue(() => writer.acquire(RECORD_HEADER_SIZE));
    return writer;
  }

  /**
   * Make `count` frames durable: `entries` holds them encoded back to back
   * (format.ts writeEntryFromFrame/encodeEntry). Resolves once they are
   * written and fdatasynced; rejects with COUNTD_IO_ERROR or COUNTD_NO_SPACE
   * (nothing of the batch will be applied), COUNTD_CLOSED after close().
   * `type` RECORD_OPS: `entries` are op entries (format.ts writeOpEntry).
   */
  append(entries: Buffer, count: number, type: number = RECORD_BATCH): Promise<void> {
    if (!Buffer.isBuffer(entries)) return Promise.reject(invalidArgument('entries must be a Buffer'));
    if (!Number.isSafeInteger(count) || count < 1 || count > 0xffff_ffff) return Promise.reject(invalidArgument(`count must be a positive 32-bit integer, got ${String(count)}`));
    if (entries.length > this.maxBatchBytes) {
      return Promise.reject(invalidArgument(`batch of ${entries.length} bytes exceeds maxBatchBytes ${this.maxBatchBytes}`));
    }
    if (type !== RECORD_BATCH && type !== RECORD_OPS) return Promise.reject(invalidArgument(`record type must be RECORD_BATCH or RECORD_OPS, got ${String(type)}`));
    if (countRecordEntries(type, entries, this.sizes) !== count) return Promise.reject(invalidArgument(`entries do not hold exactly ${count} well-formed entries`));
    if (this.closed) return Promise.reject(new CountdError(ErrorCodes.CLOSED, 'commit-log writer is closed'));
    return this.enqueue(() => this.appendNow(entries, count, type));
  }

  /** Seal and hand over the current log (or release it clean if empty); later appends reject with COUNTD_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return this.tail.then(() => {});
    this.closed = true;
    await this.enqueue(async () => {
      this.clearTimer();
      if (this.current) await this.retire(this.current, 'close', false);
    });
  }

  // ---- internals (run one at a time, in the queue) ---------------------------------

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task);
    this.tail = run.catch(() => {});
    return run;
  }

  private async appendNow(entries: Buffer, count: number, type: number): Promise<void> {
    const recordSize = RECORD_HEADER_SIZE + entries.length;
    let log = this.current;
    if (log && log.offset + recordSize + SEAL_RECORD_SIZE > log.size) {
      await this.retire(log, 'full', false);
      log = null;
    }
    log ??= await this.acquire(recordSize);
    writeRecordHeader(this.recordHeader, type, log.generation, this.nextSeq, count, entries);
    try {
      await pwriteAll(this.ops, log.fd, [this.recordHeader, entries], log.offset);
      await this.ops.fdatasync(log.fd);
    } catch (err) {
      const error = translateFsError(err, `append to commit log ${log.path}`);
      this.logger.error('commit-log append failed; retiring the log', { index: log.index, error: error.message });
      await this.retire(log, 'error', true);
      throw error;
    }
    log.offset += recordSize;
    log.records++;
    log.frames += count;
    this.nextSeq += BigInt(count);
    if (log.records === 1) this.armTimer(log);
  }

  /** Claim a clean log with room for a record of `recordSize` bytes (creating one if none), and start a new use of it. */
  private async acquire(recordSize: number): Promise<CurrentLog> {
    const minSize = HEADER_SIZE + recordSize + SEAL_RECORD_SIZE;
    let claimed: { index: number; path: string; size: number } | null = null;
    let created: number | undefined;
    try {
      for (let attempt = 0; !claimed; attempt++) {
        if (attempt >= MAX_ACQUIRE_ATTEMPTS) throw new CountdError(ErrorCodes.IO_ERROR, `could not claim a commit log in ${this.pool.dir} after ${attempt} attempts`);
        claimed = await this.pool.claimClean(minSize, created);
        if (!claimed) created = await this.pool.grow(Math.max(this.logSize, minSize));
      }
    } catch (err) {
      throw translateFsError(err, `claim a commit log in ${this.pool.dir}`);
    }
    let fd = -1;
    try {
      fd = await this.ops.open(claimed.path, fs.constants.O_RDWR);
      // Make the lock link durable before any record: after a power cut, a
      // clean (0200) log without its lock looks free and would be refilled,
      // losing acknowledged frames (test/crash/power-loss.test.ts).
      await this.ops.fsyncDir(this.pool.dir);
      const generation = randomBytes(8).readBigUInt64LE(0);
      encodeHeader(
        {
          version: LOG_FORMAT_VERSION,
          keyspaceSize: this.sizes.keyspaceSize,
          keySize: this.sizes.keySize,
          generation,
          streamId: this.streamId,
          firstSeq: this.nextSeq,
          openedAt: Date.now(),
        },
        this.headerBlock,
      );
      await pwriteAll(this.ops, fd, [this.headerBlock], 0);
      await this.ops.fdatasync(fd);
      this.current = { index: claimed.index, path: claimed.path, fd, size: claimed.size, generation, offset: HEADER_SIZE, records: 0, frames: 0 };
      this.logger.debug('claimed commit log', { index: claimed.index });
      return this.current;
    } catch (err) {
      // It holds no record of ours: give it back clean, best effort.
      if (fd >= 0) await this.ops.close(fd).catch(() => {});
      await this.ops.chmod(claimed.path, MODE_CLEAN).then(() => unlock(this.ops, this.pool.dir, claimed.index)).catch(() => {});
      throw translateFsError(err, `start commit log ${claimed.path}`);
    }
  }

  /**
   * Stop using `log`. With records: SEAL, fdatasync, chmod 0400, fsync,
   * unlock (hand-over). Without: chmod 0200 (refreshes its ctime), unlock.
   * `cut` (after a failed append) writes the SEAL even without records, over
   * the failed record. Never throws: a failure leaves the lock in place
   * for recovery once this process is gone.
   */
  private async retire(log: CurrentLog, reason: 'full' | 'time' | 'close' | 'error', cut: boolean): Promise<void> {
    if (this.current === log) this.current = null;
    this.clearTimer();
    if (log.records > 0 || cut) {
      try {
        await pwriteAll(this.ops, log.fd, [encodeSealRecord(log.generation, this.nextSeq, log.frames, log.records)], log.offset);
        await this.ops.fdatasync(log.fd);
      } catch (err) {
        this.logger.error('could not seal commit log; handing it over unsealed', {
          index: log.index,
          error: translateFsError(err, 'seal').message,
          note: reason === 'error' ? 'the failed batch may be applied if it reached the disk' : undefined,
        });
      }
    }
    try {
      if (log.records > 0) {
        await this.ops.chmod(log.path, MODE_DIRTY);
        await this.ops.fsync(log.fd);
      } else {
        await this.ops.chmod(log.path, MODE_CLEAN);
      }
      await this.ops.close(log.fd);
      await unlock(this.ops, this.pool.dir, log.index);
      if (log.records > 0) metrics.logsHandedOver.inc({ reason });
      this.logger.debug(log.records > 0 ? 'handed over commit log' : 'released empty commit log', { index: log.index, reason, frames: log.frames });
    } catch (err) {
      await this.ops.close(log.fd).catch(() => {});
      this.logger.error('could not hand over commit log; its lock stays until this process exits', {
        index: log.index,
        error: translateFsError(err, 'hand over').message,
      });
    }
  }

  private armTimer(log: CurrentLog): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = null;
      // Through the queue, so never while an append is in flight.
      void this.enqueue(async () => {
        if (this.current !== log || this.closed) return;
        await this.retire(log, 'time', false);
        // Have the next log ready so the next append pays for no claim.
        try {
          await this.acquire(RECORD_HEADER_SIZE);
        } catch (err) {
          this.logger.warn('could not claim the next commit log; will retry on the next append', { error: (err as Error).message });
        }
      });
    }, this.handoverMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
