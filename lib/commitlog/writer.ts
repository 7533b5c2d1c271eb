// The write side of the commit-log pool: makes batches of entries durable,
// one record per batch, one pwritev + one fdatasync per append
// (docs/commit-log-format.md, "Writing a log").
//
// A writer process is one stream: its frames are numbered from 0 across all
// the logs it fills. It fills one log at a time and claims the next one
// ("spare") once the current one is half full or half-way to its hand-over
// by time, so that moving to a new log costs an append nothing:
// the new use's header goes out with its first record, under the same
// fdatasync. It stops using a log when the next batch does not fit, when the
// log has held records for `handoverMs`, and at close(); the hand-over (SEAL,
// chmod 0400, fsync, unlock) then runs in the background (handover.ts),
// retried while it fails. A log without records is released clean instead.
//
// Fail-stop: when a write or fdatasync fails, the log is retired and the
// failed record is cut off (handover.ts cutFailedRecord) BEFORE the append
// rejects: the caller may then answer ERR, "nothing of it is applied". When
// even the cut fails, the append rejects with `outcomeUnknown` set: the
// record may be applied, and the caller must not answer ERR. The next append
// claims a fresh log.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { CountdError, ErrorCodes, invalidArgument, translateFsError } from '../errors.js';
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
  SEAL_RECORD_SIZE,
  countRecordEntries,
  encodeHeader,
  encodeSealRecord,
  maxEntrySize,
  TIMED_RECORD_HEADER_SIZE,
  WRITTEN_AT_SIZE,
  writeTimedRecordHeader,
} from './format.js';
import { HandOvers, cutFailedRecord } from './handover.js';
import { unlock } from './locks.js';
import { CommitLogPool, MODE_CLEAN } from './pool.js';

export const DEFAULT_HANDOVER_MS = 1000;
/**
 * Default idleHandoverMs, as a fraction of handoverMs (100 ms at the default
 * 1 s): a log with records is handed over once no append came for this
 * long. Under light traffic a write is then readable a little after it, not
 * up to handoverMs later; under load appends never pause that long, and logs
 * turn over at most 1000 / idleHandoverMs times a second.
 */
export const IDLE_HANDOVER_FRACTION = 10;
/** Give up claiming/creating a log after this many lost races in a row. */
const MAX_ACQUIRE_ATTEMPTS = 64;

/** An append failed and its record could not be cut off: it may be applied (see the header of this file). */
export interface AppendFailure extends CountdError {
  outcomeUnknown?: boolean;
}

export interface CommitLogWriterOptions {
  /** The pool directory, <data-dir>/commitlog. */
  dir: string;
  sizes: FieldSizes;
  /** Size of logs this writer creates; default 2 MiB. */
  logSize?: number;
  /** Hand a log with records over after this long; default 1000. */
  handoverMs?: number;
  /** Hand a log with records over once no append came for this long; default handoverMs / 10 (off when not below handoverMs). */
  idleHandoverMs?: number;
  fileOps?: FileOps;
  logger?: Logger;
  /** Flow control (lib/roles/write/flow.ts): admits each new log, may forbid claiming ahead. */
  gate?: LogGate;
  /** The clock each record's writtenAt is read from (ms since the epoch); Date.now by default. Tests pass their own to place writes in chosen periods. */
  now?: () => number;
  /**
   * Sequence number of this stream's first frame (default 0). countd-write
   * starts above every earlier stream's (lib/roles/write/producer-load.ts), so
   * sequence numbers are tokens comparable across writer restarts.
   */
  firstSeq?: bigint;
  /**
   * How an append becomes durable (docs/commit-log-format.md, "Writing a
   * log"): 'dsync' (default), one pwritev on a log opened with O_DSYNC,
   * which returns once the bytes are durable; 'fdatasync', a plain pwritev
   * followed by fdatasync (two calls, two threadpool round trips).
   */
  durability?: Durability;
}

export type Durability = 'dsync' | 'fdatasync';
export const DURABILITY_MODES: readonly Durability[] = ['dsync', 'fdatasync'];

/** What the writer asks flow control before it grows the backlog. */
export interface LogGate {
  /** Resolves once a new log of `size` bytes may be started (it waits, it never refuses). */
  admit(size: number): Promise<void>;
  /** False: claim no log ahead now. */
  mayClaimAhead(): boolean;
}

/** A log claimed for this writer (locked, its lock link durable, a placeholder header durable, open), before its use starts. */
interface ClaimedLog {
  index: number;
  path: string;
  fd: number;
  /** Capacity: the file's size. */
  size: number;
  /** Opened with O_DSYNC (durability dsync). */
  dsync: boolean;
}

interface CurrentLog extends ClaimedLog {
  generation: bigint;
  /** This use's header, until it is durable (it goes out with the first record). */
  header: Buffer | null;
  /** Where the next record goes. */
  offset: number;
  records: number;
  frames: number;
  /** performance.now() of its first record, and whether a prompt hand-over is asked (handOverSoon). */
  firstAt: number;
  prompted: boolean;
}

/** A log is handed over promptly (handOverSoon) no sooner than this after its first record. */
const PROMPT_MIN_AGE_MS = 20;


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
  private readonly idleHandoverMs: number;
  private readonly handOvers: HandOvers;
  private readonly gate: LogGate | undefined;
  /** Logs are opened with O_DSYNC: an append's pwritev is durable when it returns, no fdatasync follows. */
  private readonly dsync: boolean;
  /** Reused for every record (header and writtenAt): appends are serialized. */
  private readonly recordHeader = Buffer.alloc(TIMED_RECORD_HEADER_SIZE);
  private readonly now: () => number;
  private current: CurrentLog | null = null;
  /** The next log, claimed ahead (or being claimed). */
  private spare: Promise<ClaimedLog | null> | null = null;
  /** Sequence number of the next frame of this stream. */
  private nextSeq = 0n;
  private tail: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  /** Hands the current log over once appends pause for idleHandoverMs (armIdle). */
  private idleTimer: NodeJS.Timeout | null = null;
  /** performance.now() of the last append to the current log. */
  private lastAppendAt = 0;
  private spareTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Claims under way. */
  private claiming = 0;

  private constructor(pool: CommitLogPool, options: Required<Pick<CommitLogWriterOptions, 'logSize' | 'handoverMs'>> & CommitLogWriterOptions) {
    this.pool = pool;
    this.ops = options.fileOps ?? realFileOps;
    this.logger = options.logger ?? silentLogger;
    this.sizes = options.sizes;
    this.logSize = options.logSize;
    this.handoverMs = options.handoverMs;
    this.idleHandoverMs = options.idleHandoverMs ?? options.handoverMs / IDLE_HANDOVER_FRACTION;
    this.handOvers = new HandOvers(this.ops, pool.dir, this.logger);
    this.gate = options.gate;
    this.now = options.now ?? Date.now;
    this.dsync = (options.durability ?? 'dsync') === 'dsync';
    this.maxBatchBytes = Math.min(MAX_RECORD_PAYLOAD - WRITTEN_AT_SIZE, options.logSize - HEADER_SIZE - TIMED_RECORD_HEADER_SIZE - SEAL_RECORD_SIZE);
    this.streamId = randomBytes(8).readBigUInt64LE(0);
    this.nextSeq = options.firstSeq ?? 0n;
  }

  /** Open a writer on the pool in options.dir: recovers stale locks, then claims (or creates) a clean log. */
  static async open(options: CommitLogWriterOptions): Promise<CommitLogWriter> {
    if (options === null || typeof options !== 'object') throw invalidArgument('writer options must be an object');
    if (options.sizes === null || typeof options.sizes !== 'object') throw invalidArgument('writer sizes must be FieldSizes');
    checkFieldSizes(options.sizes);
    const logSize = options.logSize ?? DEFAULT_LOG_SIZE;
    const minLogSize = HEADER_SIZE + TIMED_RECORD_HEADER_SIZE + maxEntrySize(options.sizes) + SEAL_RECORD_SIZE;
    if (!Number.isSafeInteger(logSize) || logSize < minLogSize) {
      throw invalidArgument(`logSize must be an integer of at least ${minLogSize} bytes (one largest frame), got ${String(logSize)}`);
    }
    if (options.durability !== undefined && !DURABILITY_MODES.includes(options.durability)) {
      throw invalidArgument(`durability must be one of ${DURABILITY_MODES.join(', ')}, got ${String(options.durability)}`);
    }
    const handoverMs = options.handoverMs ?? DEFAULT_HANDOVER_MS;
    // setTimeout clamps anything above 2^31 - 1 ms to 1 ms.
    if (!Number.isFinite(handoverMs) || handoverMs <= 0 || handoverMs > 0x7fff_ffff) {
      throw invalidArgument(`handoverMs must be a positive number of at most ${0x7fff_ffff}, got ${String(handoverMs)}`);
    }
    const idle = options.idleHandoverMs;
    if (idle !== undefined && (!Number.isFinite(idle) || idle <= 0 || idle > 0x7fff_ffff)) {
      throw invalidArgument(`idleHandoverMs must be a positive number of at most ${0x7fff_ffff}, got ${String(idle)}`);
    }
    const pool = await CommitLogPool.open({ dir: options.dir, sizes: options.sizes, fileOps: options.fileOps, logger: options.logger });
    await pool.recoverStaleLocks();
    const writer = new CommitLogWriter(pool, { ...options, logSize, handoverMs });
    // Claimed now so that a pool that cannot be used fails open(), not the first append.
    const first = await writer.claim(TIMED_RECORD_HEADER_SIZE);
    writer.spare = Promise.resolve(first);
    return writer;
  }

  /**
   * Make `count` frames durable: `entries` holds them encoded back to back
   * (format.ts writeEntryFromFrame/encodeEntry). Resolves once they are
   * written and fdatasynced; rejects with COUNTD_IO_ERROR or COUNTD_NO_SPACE
   * (nothing of the batch will be applied, unless the error has
   * `outcomeUnknown`: see AppendFailure), COUNTD_CLOSED after close().
   * `inline`: make the write and fdatasync calls on this thread, blocking
   * it for the disk's time but sparing the threadpool round trips (for a
   * caller with nothing else to do meanwhile).
   * `type` RECORD_OPS: `entries` are op entries (format.ts writeOpEntry).
   */
  append(entries: Buffer, count: number, inline = false, type: number = RECORD_BATCH): Promise<bigint> {
    if (!Buffer.isBuffer(entries)) return Promise.reject(invalidArgument('entries must be a Buffer'));
    if (!Number.isSafeInteger(count) || count < 1 || count > 0xffff_ffff) return Promise.reject(invalidArgument(`count must be a positive 32-bit integer, got ${String(count)}`));
    if (entries.length > this.maxBatchBytes) {
      return Promise.reject(invalidArgument(`batch of ${entries.length} bytes exceeds maxBatchBytes ${this.maxBatchBytes}`));
    }
    if (type !== RECORD_BATCH && type !== RECORD_OPS) return Promise.reject(invalidArgument(`record type must be RECORD_BATCH or RECORD_OPS, got ${String(type)}`));
    if (countRecordEntries(type, entries, this.sizes) !== count) return Promise.reject(invalidArgument(`entries do not hold exactly ${count} well-formed entries`));
    if (this.closed) return Promise.reject(new CountdError(ErrorCodes.CLOSED, 'commit-log writer is closed'));
    return this.enqueue(() => this.appendNow(entries, count, inline === true, type));
  }

  /** What this writer does in the background now: 1 a hand-over or release, 2 the claim of the next log (lib/roles/write/trace.ts BACKGROUND_*). */
  backgroundWork(): number {
    return (this.handOvers.busy ? 1 : 0) | (this.claiming > 0 ? 2 : 0);
  }

  /** Bytes of this writer's logs being handed over dirty, except those a scan saw dirty (`seen`: index -> bytes). */
  handingOverBytes(seen?: ReadonlyMap<number, number>): number {
    return this.handOvers.handingOver(seen);
  }

  /** Bytes of the logs this writer has made dirty so far (cumulative: flow control's drain rate). */
  get handedOverBytes(): number {
    return this.handOvers.dirtiedBytes;
  }

  /** Seal and hand over the current log (or release it clean if empty) and the spare; later appends reject with COUNTD_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return this.tail.then(() => {});
    this.closed = true;
    await this.enqueue(async () => {
      this.clearTimer();
      if (this.current) this.retire(this.current, 'close');
      const spare = await this.takeSpare();
      if (spare) this.release(spare, 'close');
      await this.handOvers.settle();
    });
  }

  // ---- internals (run one at a time, in the queue) ---------------------------------

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task);
    this.tail = run.catch(() => {});
    return run;
  }

  /** Resolves to the sequence number of the batch's last frame (its token: docs/write-protocol-extensions.md). */
  private async appendNow(entries: Buffer, count: number, inline: boolean, type: number): Promise<bigint> {
    const recordSize = TIMED_RECORD_HEADER_SIZE + entries.length;
    let log = this.current;
    if (log && log.offset + recordSize + SEAL_RECORD_SIZE > log.size) {
      this.retire(log, 'full');
      log = null;
    }
    log ??= await this.startUse(recordSize);
    // Every record says when it was written: it places windowed writes in their period (lib/store/windows.ts).
    writeTimedRecordHeader(this.recordHeader, type, log.generation, this.nextSeq, count, entries, this.now());
    try {
      // The first record of a use follows its header (offset 4096): both go in one write.
      if (log.header !== null) await pwriteAll(this.ops, log.fd, [log.header, this.recordHeader, entries], 0, inline);
      else await pwriteAll(this.ops, log.fd, [this.recordHeader, entries], log.offset, inline);
      // O_DSYNC: the pwritev returned once its bytes were durable.
      if (!this.dsync) await this.ops.fdatasync(log.fd, inline);
    } catch (err) {
      throw await this.failed(log, err);
    }
    log.header = null;
    log.offset += recordSize;
    log.records++;
    log.frames += count;
    this.nextSeq += BigInt(count);
    this.lastAppendAt = performance.now();
    if (log.records === 1) {
      log.firstAt = this.lastAppendAt;
      this.armTimer(log);
    }
    // Half full: claim the next log now, so that it is ready when this one is.
    if ((log.offset - HEADER_SIZE) * 2 >= log.size - HEADER_SIZE) this.refillSpare();
    return this.nextSeq - 1n;
  }

  /**
   * Hand the current log over soon rather than at handoverMs (a write asked
   * to be readable soon): once its first record is PROMPT_MIN_AGE_MS old, so
   * that a flood of such writes turns logs over at most that often.
   */
  handOverSoon(): void {
    const log = this.current;
    if (log === null || log.records === 0 || this.closed || log.prompted) return;
    log.prompted = true;
    const wait = Math.max(0, PROMPT_MIN_AGE_MS - (performance.now() - log.firstAt));
    const retire = (): void => {
      void this.enqueue(async () => {
        if (this.current === log && !this.closed) this.retire(log, 'time');
      });
    };
    if (wait === 0) retire();
    else setTimeout(retire, wait).unref();
  }

  /** The append to `log` failed: cut its record off, retire the log, and say what the caller may answer. */
  private async failed(log: CurrentLog, err: unknown): Promise<AppendFailure> {
    const error: AppendFailure = translateFsError(err, `append to commit log ${log.path}`);
    this.logger.error('commit-log append failed; retiring the log', { index: log.index, error: error.message });
    this.current = null;
    this.clearTimer();
    const seal = encodeSealRecord(log.generation, this.nextSeq, log.frames, log.records);
    const cut = await cutFailedRecord(this.ops, log, seal, this.logger);
    if (!cut) {
      error.outcomeUnknown = true;
      this.logger.error('could not cut the failed record off the commit log: its frames may be applied; their clients get no answer', { index: log.index });
    }
    // Cut: nothing after the acknowledged records is readable. Not cut: the
    // worker applies what it finds, the failed record perhaps, at most once.
    this.handOvers.start({ ...log, dirty: log.records > 0 || !cut, seal: null, sealAt: 0, reason: 'error' });
    return error;
  }

  /** Start a new use: of the spare if it is large enough, else of a log claimed now. */
  private async startUse(recordSize: number): Promise<CurrentLog> {
    let claimed = await this.takeSpare();
    // Every log this use fills will be dirty: flow control admits it first.
    if (this.gate !== undefined) await this.gate.admit(claimed?.size ?? Math.max(this.logSize, HEADER_SIZE + recordSize + SEAL_RECORD_SIZE));
    if (claimed && claimed.size < HEADER_SIZE + recordSize + SEAL_RECORD_SIZE) {
      this.release(claimed, 'full');
      claimed = null;
    }
    claimed ??= await this.claim(recordSize);
    const generation = randomBytes(8).readBigUInt64LE(0);
    const header = encodeHeader({
      version: LOG_FORMAT_VERSION,
      keyspaceSize: this.sizes.keyspaceSize,
      keySize: this.sizes.keySize,
      generation,
      streamId: this.streamId,
      firstSeq: this.nextSeq,
      openedAt: Date.now(),
    });
    this.current = { ...claimed, generation, header, offset: HEADER_SIZE, records: 0, frames: 0, firstAt: 0, prompted: false };
    return this.current;
  }

  /** The spare log, waiting for its claim if one is under way (null if that failed). */
  private async takeSpare(): Promise<ClaimedLog | null> {
    const spare = this.spare;
    this.spare = null;
    return spare === null ? null : spare;
  }

  /** Claim the next log in the background, so that the next new use finds it ready. */
  private refillSpare(): void {
    if (this.spare !== null || this.closed || this.gate?.mayClaimAhead() === false) return;
    this.spare = this.claim(TIMED_RECORD_HEADER_SIZE).catch((err: unknown) => {
      this.logger.warn('could not claim the next commit log ahead; the next log change will claim one', { error: (err as Error).message });
      return null;
    });
  }

  /** Claim a clean log with room for a record of `recordSize` bytes (creating one if none); its lock link is made durable. */
  private async claim(recordSize: number): Promise<ClaimedLog> {
    this.claiming++;
    try {
      return await this.claimNow(recordSize);
    } finally {
      this.claiming--;
    }
  }

  private async claimNow(recordSize: number): Promise<ClaimedLog> {
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
      fd = await this.ops.open(claimed.path, fs.constants.O_RDWR | (this.dsync ? fs.constants.O_DSYNC : 0));
      // Make the lock link durable before any record: after a power cut, a
      // clean (0200) log without its lock looks free and would be refilled,
      // losing acknowledged frames (test/crash/power-loss.test.ts).
      await this.ops.fsyncDir(this.pool.dir);
      // A header of its own, with no record, before the use that will write
      // its real header with its first record: until then the log holds
      // nothing readable (the earlier use's records are of another
      // generation), and a first record that reaches the disk without its
      // header is never read against a zero header (which the worker would
      // take for damage and quarantine; docs/commit-log-format.md 6a).
      const placeholder = encodeHeader({
        version: LOG_FORMAT_VERSION,
        keyspaceSize: this.sizes.keyspaceSize,
        keySize: this.sizes.keySize,
        generation: randomBytes(8).readBigUInt64LE(0),
        streamId: 0n,
        firstSeq: 0n,
        openedAt: Date.now(),
      });
      await pwriteAll(this.ops, fd, [placeholder], 0);
      if (!this.dsync) await this.ops.fdatasync(fd);
      this.logger.debug('claimed commit log', { index: claimed.index });
      return { ...claimed, fd, dsync: this.dsync };
    } catch (err) {
      // It holds no record of ours: give it back clean, best effort.
      if (fd >= 0) await this.ops.close(fd).catch(() => {});
      await this.ops.chmod(claimed.path, MODE_CLEAN).then(() => unlock(this.ops, this.pool.dir, claimed.index)).catch(() => {});
      throw translateFsError(err, `start commit log ${claimed.path}`);
    }
  }

  /** Stop using `log`: hand it over in the background (SEAL first) if it holds records, else release it clean. */
  private retire(log: CurrentLog, reason: 'full' | 'time' | 'idle' | 'close'): void {
    if (this.current === log) this.current = null;
    this.clearTimer();
    if (log.records === 0) {
      this.release(log, reason);
      return;
    }
    const seal = encodeSealRecord(log.generation, this.nextSeq, log.frames, log.records);
    this.handOvers.start({ ...log, dirty: true, seal, sealAt: log.offset, reason });
  }

  /** Give a log that holds no record of this writer's back clean, in the background. */
  private release(log: ClaimedLog, reason: 'full' | 'time' | 'idle' | 'close'): void {
    this.handOvers.start({ ...log, dirty: false, seal: null, sealAt: 0, reason, frames: 0 });
  }

  private armTimer(log: CurrentLog): void {
    this.clearTimer();
    // Half-way to the hand-over by time: claim the next log.
    this.spareTimer = setTimeout(() => this.refillSpare(), this.handoverMs / 2);
    this.spareTimer.unref();
    this.timer = setTimeout(() => {
      this.timer = null;
      // Through the queue, so never while an append is in flight.
      void this.enqueue(async () => {
        if (this.current !== log || this.closed) return;
        this.retire(log, 'time');
      });
    }, this.handoverMs);
    this.timer.unref();
    if (this.idleHandoverMs < this.handoverMs) this.armIdle(log, this.idleHandoverMs);
  }

  /**
   * Hand `log` over once no append came for idleHandoverMs. One timer per
   * pause, not per append: when it fires early (appends came meanwhile) it
   * waits out the rest of the pause since the last one. The next log is
   * claimed at once, so that the next write does not wait for its claim.
   */
  private armIdle(log: CurrentLog, ms: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.current !== log || this.closed) return;
      const quiet = performance.now() - this.lastAppendAt;
      if (quiet < this.idleHandoverMs) {
        this.armIdle(log, this.idleHandoverMs - quiet);
        return;
      }
      void this.enqueue(async () => {
        if (this.current !== log || this.closed) return;
        if (performance.now() - this.lastAppendAt < this.idleHandoverMs) {
          this.armIdle(log, this.idleHandoverMs);
          return;
        }
        this.retire(log, 'idle');
        this.refillSpare();
      });
    }, Math.max(1, ms));
    this.idleTimer.unref();
  }

  private clearTimer(): void {
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    if (this.spareTimer) {
      clearTimeout(this.spareTimer);
      this.spareTimer = null;
    }
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
