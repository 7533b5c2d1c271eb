// The commit-log pool <data-dir>/commitlog/ (docs/commit-log-format.md,
// "Files of the pool" and "States and transitions"). Several processes may
// share it: ownership is by lock links (locks.ts), state by permission bits,
// read with stat(2) because as root the bits do not stop open(2):
//
//   0200  clean: a writer may claim and fill it
//   0400  dirty: a worker must apply it
//   other not claimable by anyone; reported by status()
//
// The worker uses claimDirty/release; the writer (writer.ts) uses
// claimClean/grow; both call recoverStaleLocks.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CountdError, ErrorCodes, errnoCode, invalidArgument, translateFsError } from '../errors.js';
import { FieldSizes, checkFieldSizes } from '../protocol/fields.js';
import { Logger, silentLogger } from '../util/log.js';
import { mkdirDurable } from '../util/fsync.js';
import { isAlive } from '../util/proc.js';
import { FileOps, pwriteAll, realFileOps } from './fileops.js';
import { MAX_LOG_INDEX, logName, newLogTempName, ownerName, parsePoolName } from './filenames.js';
import { HEADER_SIZE, decodeHeader, LogHeader } from './format.js';
import { lockState, ownerAlive, readOwner, tryLock, tryPoolMutex, unlinkIfExists, unlock } from './locks.js';
import { requireModeOverride } from './privilege.js';
import { headerUnverified, readLogFile } from './reader.js';

export const MODE_CLEAN = 0o200;
export const MODE_DIRTY = 0o400;
/**
 * A log whose header cannot be verified: no writer (0200 only) and no worker
 * (0400 only) ever claims it, whatever its version; only an operator
 * releases it (docs/commit-log-format.md, "Quarantine").
 */
export const MODE_QUARANTINED = 0o000;
export const DEFAULT_STALE_LOCK_GRACE_MS = 2000;

export interface ClaimedLog {
  index: number;
  path: string;
}

/** Logs of the pool by state: a readdir and one stat per log, nothing read. */
export interface PoolCounts {
  /** Log files in the pool. */
  logs: number;
  /** Logs in mode 0200 (free, or being filled by a writer). */
  clean: number;
  /** Logs in mode 0400 (waiting for, or being applied by, a worker). */
  dirty: number;
  /** Logs with a lock link (owned by a writer or a worker, or stale). */
  locked: number;
  /** Logs in mode 0000: header not verifiable, records salvaged, kept for the operator. */
  quarantined: number;
  /** Their indexes, ascending. */
  quarantinedLogs: number[];
  /** Logs in any other mode: nobody claims them; an operator must look. */
  other: number;
}

export interface PoolStatus extends PoolCounts {
  /** Frames held by dirty logs (for a dirty log whose header cannot be verified: the frames a salvage would apply, at most). */
  backlogFrames: number;
  /** Bytes of the dirty logs (file sizes): the backlog flow control bounds (backlog.ts). */
  backlogBytes: number;
}

export interface CommitLogPoolOptions {
  dir: string;
  sizes: FieldSizes;
  fileOps?: FileOps;
  logger?: Logger;
  /** A lock whose owner is dead is left alone until its log's ctime is this old. Default 2000. */
  staleLockGraceMs?: number;
}

interface Scan {
  logs: number[];
  locks: Set<number>;
  owners: number[];
  temps: Array<{ name: string; pid: number }>;
}

const ZERO_CHUNK = Buffer.alloc(1024 * 1024);

export class CommitLogPool {
  readonly dir: string;
  readonly sizes: FieldSizes;
  private readonly ops: FileOps;
  private readonly logger: Logger;
  private readonly graceMs: number;
  private readonly realDir: string;
  /** The counts seen by the last claimDirty() scan (the worker's backlog gauge: fresh at every claim, at no extra cost). */
  lastCounts: PoolCounts | undefined;
  /** Logs this process holds through claimDirty (released by release()). */
  private readonly held = new Set<number>();

  private constructor(dir: string, realDir: string, sizes: FieldSizes, ops: FileOps, logger: Logger, graceMs: number) {
    this.dir = dir;
    this.realDir = realDir;
    this.sizes = sizes;
    this.ops = ops;
    this.logger = logger;
    this.graceMs = graceMs;
  }

  /** Open (creating the directory if needed) the pool in `dir`. */
  static async open(o: CommitLogPoolOptions): Promise<CommitLogPool> {
    if (o === null || typeof o !== 'object') throw invalidArgument('pool options must be an object');
    if (typeof o.dir !== 'string' || o.dir === '') throw invalidArgument('pool dir must be a non-empty string');
    if (o.sizes === null || typeof o.sizes !== 'object') throw invalidArgument('pool sizes must be FieldSizes');
    checkFieldSizes(o.sizes);
    const graceMs = o.staleLockGraceMs ?? DEFAULT_STALE_LOCK_GRACE_MS;
    if (!Number.isFinite(graceMs) || graceMs < 0) throw invalidArgument(`staleLockGraceMs must be a non-negative number, got ${String(graceMs)}`);
    const ops = o.fileOps ?? realFileOps;
    const dir = path.resolve(o.dir);
    requireModeOverride(dir);
    let realDir: string;
    try {
      await mkdirDurable(dir, ops);
      realDir = await ops.realpath(dir);
    } catch (err) {
      throw translateFsError(err, `open commit-log pool ${dir}`);
    }
    return new CommitLogPool(dir, realDir, o.sizes, ops, o.logger ?? silentLogger, graceMs);
  }

  logPath(index: number): string {
    return path.join(this.dir, logName(index));
  }

  /**
   * Recover locks left by dead processes: for each stale lock (see
   * locks.ts lockState), mark its log dirty if it holds at least one valid
   * record of its current generation (the worker applies it; its (index,
   * generation) markers make that exactly-once), else leave the mode as it
   * is; then remove owner file and lock. Also removes owner files and temp
   * files of dead processes. Runs under the pool mutex; returns 0 at once if
   * another process is recovering. Returns the number of locks recovered.
   */
  async recoverStaleLocks(): Promise<number> {
    try {
      return await this.recoverNow();
    } catch (err) {
      throw translateFsError(err, `recover stale locks in ${this.dir}`);
    }
  }

  private async recoverNow(): Promise<number> {
    const first = await this.scan();
    const now = Date.now();
    let work = first.temps.some((t) => !isAlive({ pid: t.pid, start: '' })) || first.owners.some((i) => !first.locks.has(i));
    for (const index of first.locks) {
      if (!work && (await lockState(this.ops, this.dir, index, this.graceMs, now)) === 'stale') work = true;
    }
    if (!work) return 0;
    const mutex = await tryPoolMutex(this.realDir);
    if (!mutex) return 0;
    try {
      // Re-scan and re-check under the mutex: the first look raced with everyone.
      const scan = await this.scan();
      let recovered = 0;
      for (const index of [...scan.locks].sort((a, b) => a - b)) {
        if ((await lockState(this.ops, this.dir, index, this.graceMs)) !== 'stale') continue;
        if (await this.recoverLock(index)) recovered++;
      }
      for (const index of scan.owners) {
        if (scan.locks.has(index)) continue;
        const owner = await readOwner(this.ops, this.dir, index);
        if (owner && ownerAlive(owner)) continue;
        await unlinkIfExists(this.ops, path.join(this.dir, ownerName(index)));
      }
      for (const t of scan.temps) {
        if (!isAlive({ pid: t.pid, start: '' })) await unlinkIfExists(this.ops, path.join(this.dir, t.name));
      }
      return recovered;
    } finally {
      await mutex.release();
    }
  }

  private async recoverLock(index: number): Promise<boolean> {
    const file = this.logPath(index);
    let mode: number;
    try {
      mode = (await this.ops.stat(file)).mode & 0o7777;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      this.logger.warn('stale lock names a missing commit log; left alone', { index });
      return false;
    }
    if (mode === MODE_CLEAN) {
      const contents = await readLogFile(file, this.sizes, this.ops);
      if (contents.records.length > 0) {
        await this.setMode(file, MODE_DIRTY);
        this.logger.warn('recovered commit log of a dead writer as dirty', { index, frames: contents.frames });
      } else if (headerUnverified(contents)) {
        // Its acknowledged frames may be in it: the worker salvages what verifies, then quarantines it.
        await this.setMode(file, MODE_DIRTY);
        this.logger.error('commit log of a dead owner has a header that cannot be verified; marked dirty for salvage', {
          index,
          reason: contents.problems[0]?.reason,
          salvageFrames: contents.salvage?.frames ?? 0,
        });
      }
    } else if (mode !== MODE_DIRTY && mode !== MODE_QUARANTINED) {
      this.logger.warn('commit log has an unexpected mode; lock released, log left alone', { index, mode: mode.toString(8) });
    }
    await unlock(this.ops, this.dir, index);
    this.logger.info('recovered stale commit-log lock', { index });
    return true;
  }

  /**
   * Claim up to `max` dirty logs for applying: oldest first (by when their
   * writer opened them, then stream and sequence). The caller must
   * release() each one.
   */
  async claimDirty(max: number): Promise<ClaimedLog[]> {
    if (!Number.isSafeInteger(max) || max < 0) throw invalidArgument(`max must be a non-negative integer, got ${String(max)}`);
    try {
      return await this.claimDirtyNow(max);
    } catch (err) {
      throw translateFsError(err, `claim dirty commit logs in ${this.dir}`);
    }
  }

  /**
   * Dirty logs oldest first, except that a log is not claimed while an older
   * dirty log of the same stream (writer process) is held by someone else
   * (another worker, or a dead one whose lock is not recovered yet): a
   * stream's logs apply in their order, which sets and deletes need
   * (docs/commit-log-format.md section 3a).
   */
  private async claimDirtyNow(max: number): Promise<ClaimedLog[]> {
    if (max === 0) return [];
    const scan = await this.scan();
    const candidates: Array<{ index: number; header: LogHeader | null }> = [];
    const heldElsewhere: Array<{ index: number; header: LogHeader | null }> = [];
    const counts = emptyCounts(scan.logs.length);
    for (const index of scan.logs) {
      const mode = await this.modeOf(index);
      countMode(counts, index, mode, scan.locks.has(index));
      if (mode !== MODE_DIRTY) continue;
      if (!scan.locks.has(index)) candidates.push({ index, header: await this.readHeader(index) });
      else if (!this.held.has(index)) heldElsewhere.push({ index, header: await this.readHeader(index) });
    }
    this.lastCounts = counts;
    candidates.sort(oldestFirst);
    /** Per stream, the first sequence number held by someone else: logs of that stream from there on wait. */
    const blocked = new Map<bigint, bigint>();
    const waits = (h: LogHeader | null): boolean => {
      const first = h === null ? undefined : blocked.get(h.streamId);
      return first !== undefined && first <= h!.firstSeq;
    };
    const block = (h: LogHeader | null): void => {
      if (h !== null && !waits(h)) blocked.set(h.streamId, h.firstSeq);
    };
    for (const c of heldElsewhere) block(c.header);
    const claimed: ClaimedLog[] = [];
    for (const c of candidates) {
      if (claimed.length >= max) break;
      if (waits(c.header)) continue;
      if (!(await tryLock(this.ops, this.dir, c.index))) {
        block(c.header);
        continue;
      }
      // Between our stat and our link its owner may have released it in another state.
      if ((await this.modeOf(c.index)) !== MODE_DIRTY) {
        await unlock(this.ops, this.dir, c.index);
        continue;
      }
      this.held.add(c.index);
      claimed.push({ index: c.index, path: this.logPath(c.index) });
    }
    return claimed;
  }

  /**
   * Release a claimed log as clean (applied), dirty (to retry) or
   * quarantined (header not verifiable, salvaged): chmod, fsync, then remove
   * owner file and lock.
   */
  async release(log: ClaimedLog, state: ReleaseState): Promise<void> {
    if (log === null || typeof log !== 'object' || !Number.isSafeInteger(log.index)) throw invalidArgument('release needs a ClaimedLog');
    if (!(state in RELEASE_MODES)) throw invalidArgument(`state must be 'clean', 'dirty' or 'quarantined', got ${String(state)}`);
    const file = this.logPath(log.index);
    try {
      await this.setMode(file, RELEASE_MODES[state]);
      await unlock(this.ops, this.dir, log.index);
      this.held.delete(log.index);
    } catch (err) {
      throw translateFsError(err, `release commit log ${file}`);
    }
  }

  /** Counts of the pool's logs by state, and the frames waiting in dirty logs (reads each dirty log). */
  async status(): Promise<PoolStatus> {
    return poolStatus({ dir: this.dir, sizes: this.sizes, fileOps: this.ops, logger: this.logger });
  }

  /** Counts of the pool's logs by state without reading any log (a readdir and a stat per log). */
  async counts(): Promise<PoolCounts> {
    try {
      const scan = await this.scan();
      const counts = emptyCounts(scan.logs.length);
      for (const index of scan.logs) countMode(counts, index, await this.modeOf(index), scan.locks.has(index));
      return counts;
    } catch (err) {
      throw translateFsError(err, `status of commit-log pool ${this.dir}`);
    }
  }

  /**
   * The operator's release of a quarantined log (`countd commitlog <index>
   * --release`): lock it, check it is still quarantined, make it clean
   * (chmod 0200, fsync), unlock. Its records were salvaged when it was
   * quarantined; a writer will overwrite it. Returns false, changing
   * nothing, when the log is locked by someone or not quarantined.
   */
  async releaseQuarantined(index: number): Promise<boolean> {
    if (!Number.isSafeInteger(index) || index < 0 || index > MAX_LOG_INDEX) throw invalidArgument(`log index out of range: ${String(index)}`);
    try {
      if ((await this.modeOf(index)) !== MODE_QUARANTINED) return false;
      if (!(await tryLock(this.ops, this.dir, index))) return false;
      try {
        if ((await this.modeOf(index)) !== MODE_QUARANTINED) return false;
        await this.setMode(this.logPath(index), MODE_CLEAN);
        this.logger.warn('quarantined commit log released by the operator', { index });
        return true;
      } finally {
        await unlock(this.ops, this.dir, index);
      }
    } catch (err) {
      throw translateFsError(err, `release quarantined commit log ${this.logPath(index)}`);
    }
  }

  // ---- for the writer (writer.ts) ---------------------------------------------

  /**
   * Claim a clean, unlocked log of at least `minSize` bytes (lowest index
   * first, keeping the pool compact). `prefer` is tried first (a log just
   * created by grow()). Returns null when there is none. Raw fs errors.
   */
  async claimClean(minSize: number, prefer?: number): Promise<{ index: number; path: string; size: number } | null> {
    const scan = await this.scan();
    const order = scan.logs.filter((i) => !scan.locks.has(i) && i !== prefer);
    if (prefer !== undefined) order.unshift(prefer);
    for (const index of order) {
      const st = await this.statOf(index);
      if (!st || (st.mode & 0o7777) !== MODE_CLEAN) continue;
      if (st.size < minSize) continue;
      if (!(await tryLock(this.ops, this.dir, index))) continue;
      const again = await this.statOf(index);
      if (!again || (again.mode & 0o7777) !== MODE_CLEAN) {
        await unlock(this.ops, this.dir, index);
        continue;
      }
      return { index, path: this.logPath(index), size: again.size };
    }
    return null;
  }

  /**
   * Add a clean log of `size` zero bytes at the next free index and return
   * that index (not locked: claim it with claimClean). Race-free between
   * processes: the log is built under a private temp name, made durable and
   * clean, and only then linked to its index name; EEXIST means another
   * process took that index, so try the next.
   */
  async grow(size: number): Promise<number> {
    const tmp = path.join(this.dir, newLogTempName(process.pid, randomBytes(6).toString('hex')));
    try {
      const fd = await this.ops.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      try {
        for (let pos = 0; pos < size; pos += ZERO_CHUNK.length) {
          await pwriteAll(this.ops, fd, [ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, size - pos))], pos);
        }
        await this.ops.chmod(tmp, MODE_CLEAN);
        await this.ops.fsync(fd); // the zeros, the size and the mode
      } finally {
        await this.ops.close(fd);
      }
      const scan = await this.scan();
      let index = scan.logs.length === 0 ? 0 : scan.logs[scan.logs.length - 1]! + 1;
      for (;;) {
        if (index > MAX_LOG_INDEX) throw new CountdError(ErrorCodes.NO_SPACE, `commit-log pool ${this.dir} has no free index`);
        try {
          await this.ops.link(tmp, this.logPath(index));
          break;
        } catch (err) {
          if (errnoCode(err) !== 'EEXIST') throw err;
          index++;
        }
      }
      await this.ops.fsyncDir(this.dir);
      this.logger.info('commit-log pool grew', { index, size });
      return index;
    } finally {
      await unlinkIfExists(this.ops, tmp).catch(() => {});
    }
  }

  /** Set a log's mode and make it durable (chmod, then fsync the file). Raw fs errors. */
  async setMode(file: string, mode: number): Promise<void> {
    await this.ops.chmod(file, mode);
    const fd = await this.ops.open(file, fs.constants.O_RDONLY);
    try {
      await this.ops.fsync(fd);
    } finally {
      await this.ops.close(fd);
    }
  }

  // ---- internals ----------------------------------------------------------------

  private async scan(): Promise<Scan> {
    const scan: Scan = { logs: [], locks: new Set(), owners: [], temps: [] };
    for (const name of await this.ops.readdir(this.dir)) {
      const p = parsePoolName(name);
      if (p.kind === 'log') scan.logs.push(p.index);
      else if (p.kind === 'lock') scan.locks.add(p.index);
      else if (p.kind === 'owner') scan.owners.push(p.index);
      else if (p.kind === 'temp') scan.temps.push({ name, pid: p.pid });
    }
    scan.logs.sort((a, b) => a - b);
    return scan;
  }

  private async statOf(index: number): Promise<{ mode: number; size: number } | null> {
    try {
      return await this.ops.stat(this.logPath(index));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw err;
    }
  }

  private async modeOf(index: number): Promise<number | null> {
    const st = await this.statOf(index);
    return st ? st.mode & 0o7777 : null;
  }

  private async readHeader(index: number): Promise<LogHeader | null> {
    const buf = Buffer.alloc(HEADER_SIZE);
    const fd = await this.ops.open(this.logPath(index), fs.constants.O_RDONLY);
    try {
      await this.ops.pread(fd, buf, 0, HEADER_SIZE, 0);
    } finally {
      await this.ops.close(fd);
    }
    const h = decodeHeader(buf);
    return h.kind === 'ok' ? h.header : null;
  }
}

export type ReleaseState = 'clean' | 'dirty' | 'quarantined';

const RELEASE_MODES: Record<ReleaseState, number> = { clean: MODE_CLEAN, dirty: MODE_DIRTY, quarantined: MODE_QUARANTINED };

function emptyCounts(logs: number): PoolCounts {
  return { logs, clean: 0, dirty: 0, locked: 0, quarantined: 0, quarantinedLogs: [], other: 0 };
}

/** Count one log of mode `mode` (null: it vanished since the readdir). */
function countMode(c: PoolCounts, index: number, mode: number | null, locked: boolean): void {
  if (mode === null) {
    c.logs--;
    return;
  }
  if (locked) c.locked++;
  if (mode === MODE_CLEAN) c.clean++;
  else if (mode === MODE_DIRTY) c.dirty++;
  else if (mode === MODE_QUARANTINED) {
    c.quarantined++;
    c.quarantinedLogs.push(index);
  } else c.other++;
}

export interface PoolStatusOptions {
  dir: string;
  sizes: FieldSizes;
  fileOps?: FileOps;
  logger?: Logger;
}

/**
 * The state of the pool in `dir` (`countd status`, the console, the
 * worker's drain check): counts by state and the frames waiting in dirty
 * logs. Creates nothing: a missing directory is an empty pool.
 */
export async function poolStatus(o: PoolStatusOptions): Promise<PoolStatus> {
  if (o === null || typeof o !== 'object' || typeof o.dir !== 'string' || o.dir === '') throw invalidArgument('poolStatus needs a pool dir');
  checkFieldSizes(o.sizes);
  const ops = o.fileOps ?? realFileOps;
  const logger = o.logger ?? silentLogger;
  try {
    let names: string[];
    try {
      names = await ops.readdir(o.dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return { ...emptyCounts(0), backlogFrames: 0, backlogBytes: 0 };
      throw err;
    }
    const logs: number[] = [];
    const locks = new Set<number>();
    for (const name of names) {
      const p = parsePoolName(name);
      if (p.kind === 'log') logs.push(p.index);
      else if (p.kind === 'lock') locks.add(p.index);
    }
    logs.sort((a, b) => a - b);
    const s: PoolStatus = { ...emptyCounts(logs.length), backlogFrames: 0, backlogBytes: 0 };
    for (const index of logs) {
      const file = path.join(o.dir, logName(index));
      let mode: number | null = null;
      let size = 0;
      try {
        const st = await ops.stat(file);
        mode = st.mode & 0o7777;
        size = st.size;
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
      countMode(s, index, mode, locks.has(index));
      if (mode === MODE_DIRTY) {
        s.backlogBytes += size;
        const c = await readLogFile(file, o.sizes, ops);
        s.backlogFrames += c.frames + (c.headerState === 'ok' ? 0 : (c.salvage?.frames ?? 0));
      } else if (mode !== null && mode !== MODE_CLEAN && mode !== MODE_QUARANTINED) {
        logger.warn('commit log in an unexpected mode', { index, mode: mode.toString(8) });
      }
    }
    return s;
  } catch (err) {
    throw translateFsError(err, `status of commit-log pool ${o.dir}`);
  }
}

function oldestFirst(a: { index: number; header: LogHeader | null }, b: { index: number; header: LogHeader | null }): number {
  const ha = a.header;
  const hb = b.header;
  if (!ha || !hb) return ha ? 1 : hb ? -1 : a.index - b.index;
  if (ha.openedAt !== hb.openedAt) return ha.openedAt - hb.openedAt;
  if (ha.streamId !== hb.streamId) return ha.streamId < hb.streamId ? -1 : 1;
  if (ha.firstSeq !== hb.firstSeq) return ha.firstSeq < hb.firstSeq ? -1 : 1;
  return a.index - b.index;
}
