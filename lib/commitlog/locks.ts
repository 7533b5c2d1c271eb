// Ownership of commit logs between processes (docs/legacy-format.md,
// docs/commit-log-format.md "Ownership"): a process owns log <i> while the
// hard link lock-<i> it created exists; link(2) failing with EEXIST means
// someone else owns it. The owner names itself in owner-<i>, so that a lock
// left by a dead process can be told from a live one and recovered. The
// owner file is written (as owner-<i>.tmp-<pid>) BEFORE linking and renamed
// into place after; giving a log up renames it back before unlinking the
// lock. So at every moment a live claimer or releaser has a file naming it,
// however long it stalls in between: a recoverer never takes its lock for a
// dead one (the grace period alone would, past the grace).
//
// Recovery runs under a pool-wide mutex: a Linux abstract-namespace Unix
// socket named after the pool directory. Binding it is atomic, and the
// kernel frees it when its process dies, even under SIGKILL, so a crashed
// recoverer never leaves the mutex held.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { errnoCode } from '../errors.js';
import { ProcessIdentity, isAlive, selfIdentity } from '../util/proc.js';
import { FileOps, pwriteAll } from './fileops.js';
import { lockName, logName, ownerName, ownerTempName, parsePoolName } from './filenames.js';

/** What owner-<i> holds (JSON). `boot` tells identities from before a reboot, whose PIDs mean nothing now. */
export interface OwnerRecord extends ProcessIdentity {
  boot: string;
}

let bootId: string | undefined;

export function currentBootId(): string {
  if (bootId === undefined) {
    try {
      bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
    } catch {
      bootId = '';
    }
  }
  return bootId;
}

export function selfOwner(): OwnerRecord {
  return { ...selfIdentity(), boot: currentBootId() };
}

/** True when the owner record names a process that still runs. */
export function ownerAlive(owner: OwnerRecord): boolean {
  if (owner.boot !== '' && currentBootId() !== '' && owner.boot !== currentBootId()) return false;
  return isAlive(owner);
}

/**
 * Try to take log <index>: write our owner record as owner-<index>.tmp-<pid>,
 * link lock-<index> to the log, then rename the record to owner-<index>.
 * Returns false when someone else holds the lock (EEXIST) or the log is gone.
 */
export function tryLock(ops: FileOps, dir: string, index: number): Promise<boolean> {
  return inFlight(dir, index, () => lockNow(ops, dir, index));
}

async function lockNow(ops: FileOps, dir: string, index: number): Promise<boolean> {
  const lock = path.join(dir, lockName(index));
  const tmp = path.join(dir, ownerTempName(index, process.pid));
  await writeFileAll(ops, tmp, Buffer.from(JSON.stringify(selfOwner())));
  try {
    await ops.link(path.join(dir, logName(index)), lock);
  } catch (err) {
    await unlinkIfExists(ops, tmp);
    const code = errnoCode(err);
    if (code === 'EEXIST' || code === 'ENOENT') return false;
    throw err;
  }
  try {
    await ops.rename(tmp, path.join(dir, ownerName(index)));
  } catch (err) {
    await ops.unlink(lock).catch(() => {});
    await unlinkIfExists(ops, tmp).catch(() => {});
    throw err;
  }
  return true;
}

/**
 * Give up log <index>: owner-<index> back to owner-<index>.tmp-<pid>, then
 * the lock, then that file. A crash in between leaves a lock without owner
 * (recovered as stale once the grace has passed: the temp file names a dead
 * process), never an owner file of ours next to someone else's new lock; and
 * a stall in between leaves the temp file naming a live process, so nobody
 * recovers the lock while we are about to unlink it ourselves.
 */
export function unlock(ops: FileOps, dir: string, index: number): Promise<void> {
  return inFlight(dir, index, () => unlockNow(ops, dir, index));
}

async function unlockNow(ops: FileOps, dir: string, index: number): Promise<void> {
  const tmp = path.join(dir, ownerTempName(index, process.pid));
  try {
    await ops.rename(path.join(dir, ownerName(index)), tmp);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  await unlinkIfExists(ops, path.join(dir, lockName(index)));
  await unlinkIfExists(ops, tmp);
}

export async function unlinkIfExists(ops: FileOps, file: string): Promise<void> {
  try {
    await ops.unlink(file);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}

async function writeFileAll(ops: FileOps, file: string, data: Buffer): Promise<void> {
  // Not fsynced: ownership only matters among running processes, and after
  // a crash a missing or torn owner file reads as "dead owner" anyway.
  const fd = await ops.open(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o644);
  try {
    await pwriteAll(ops, fd, [data], 0);
  } finally {
    await ops.close(fd);
  }
}

/** This process's claims and releases under way ("dir\0index"): what a temp record naming our own PID means. */
const ourInFlight = new Set<string>();

async function inFlight<T>(dir: string, index: number, fn: () => Promise<T>): Promise<T> {
  const key = `${dir}\0${index}`;
  ourInFlight.add(key);
  try {
    return await fn();
  } finally {
    ourInFlight.delete(key);
  }
}

/**
 * Is a live process taking or giving up log <index> (owner-<index>.tmp-<pid>
 * naming it)? A record that does not parse is not one: it is complete
 * before the link and after the rename back, so a torn one is a claim that
 * has not linked yet, or one cut by a crash. A record naming this process
 * is judged by what this process has under way (a leftover of an earlier
 * pool of the same process is not).
 */
async function claimInFlight(ops: FileOps, dir: string, index: number): Promise<boolean> {
  const prefix = ownerName(index) + '.tmp-';
  for (const name of await ops.readdir(dir)) {
    if (!name.startsWith(prefix)) continue;
    const p = parsePoolName(name);
    if (p.kind !== 'temp') continue;
    // Gone meanwhile, torn or unreadable: not a claim under way.
    const o = await readOwnerFile(ops, path.join(dir, name)).catch(() => null);
    if (o === null || o.pid !== p.pid || !ownerAlive(o)) continue;
    if (p.pid !== process.pid || ourInFlight.has(`${dir}\0${index}`)) return true;
  }
  return false;
}

/** The owner named by owner-<index>, or null when it is missing or unreadable. */
export function readOwner(ops: FileOps, dir: string, index: number): Promise<OwnerRecord | null> {
  return readOwnerFile(ops, path.join(dir, ownerName(index)));
}

/** An owner record (owner-<i> or owner-<i>.tmp-<pid>), or null when the file is missing or does not parse. */
async function readOwnerFile(ops: FileOps, file: string): Promise<OwnerRecord | null> {
  let text: string;
  try {
    text = (await ops.readFile(file)).toString('utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw err;
  }
  try {
    const o = JSON.parse(text) as Partial<OwnerRecord>;
    if (typeof o.pid !== 'number' || typeof o.start !== 'string') return null;
    return { pid: o.pid, start: o.start, boot: typeof o.boot === 'string' ? o.boot : '' };
  } catch {
    return null;
  }
}

export type LockState = 'live' | 'grace' | 'stale' | 'gone';

/**
 * Is lock-<index> stale? Stale = its owner file is missing, unreadable or
 * names a dead process, no owner-<index>.tmp-<pid> names a live one (a
 * claim or a release under way: claimInFlight), AND the locked inode's ctime is older than
 * `graceMs`. The lock is a hard link to the log, so that ctime moves on
 * link(2), every write and every chmod; the grace is a second line of
 * defence (owner files of an older countd, written after the link).
 */
export async function lockState(ops: FileOps, dir: string, index: number, graceMs: number, now = Date.now()): Promise<LockState> {
  const owner = await readOwner(ops, dir, index);
  if (owner && ownerAlive(owner)) return 'live';
  if (await claimInFlight(ops, dir, index)) return 'live';
  // Renamed into place between the two looks above: live after all.
  const again = await readOwner(ops, dir, index);
  if (again && ownerAlive(again)) return 'live';
  let ctimeMs: number;
  try {
    ctimeMs = (await ops.stat(path.join(dir, lockName(index)))).ctimeMs;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'gone';
    throw err;
  }
  return now - ctimeMs >= graceMs ? 'stale' : 'grace';
}

/** A held pool mutex; release() frees it. */
export interface PoolMutex {
  release(): Promise<void>;
}

/** The abstract socket name of the pool mutex: derived from the pool directory's real path. */
export function poolMutexName(realDir: string): string {
  return '\0countd-pool-' + createHash('sha256').update(realDir).digest('hex').slice(0, 32);
}

/** Take the pool-wide mutex, or return null if another process (or caller) holds it. */
export function tryPoolMutex(realDir: string): Promise<PoolMutex | null> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err) => {
      if (errnoCode(err) === 'EADDRINUSE') resolve(null);
      else reject(err);
    });
    server.listen({ path: poolMutexName(realDir) }, () => {
      server.unref();
      resolve({ release: () => new Promise<void>((done) => server.close(() => done())) });
    });
  });
}
