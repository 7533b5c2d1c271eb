// Ownership of commit logs between processes (docs/legacy-format.md,
// docs/commit-log-format.md "Ownership"): a process owns log <i> while the
// hard link lock-<i> it created exists; link(2) failing with EEXIST means
// someone else owns it. Right after linking, the owner writes owner-<i>
// (temp + rename) naming itself, so that a lock left by a dead process can
// be told from a live one and recovered.
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
import { lockName, logName, ownerName, ownerTempName } from './filenames.js';

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
 * Try to take log <index>: link lock-<index> to it, then write owner-<index>.
 * Returns false when someone else holds the lock (EEXIST) or the log is gone.
 */
export async function tryLock(ops: FileOps, dir: string, index: number): Promise<boolean> {
  const lock = path.join(dir, lockName(index));
  try {
    await ops.link(path.join(dir, logName(index)), lock);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST' || code === 'ENOENT') return false;
    throw err;
  }
  try {
    await writeOwner(ops, dir, index, selfOwner());
  } catch (err) {
    await ops.unlink(lock).catch(() => {});
    throw err;
  }
  return true;
}

/**
 * Give up log <index>: owner file first, then the lock. In this order a
 * crash in between leaves a lock without owner (recovered as stale), never
 * an owner file of ours next to someone else's new lock. The caller has just
 * chmod-ed the log, which refreshes its ctime, so a recoverer never sees the
 * ownerless lock as stale during the microseconds in between.
 */
export async function unlock(ops: FileOps, dir: string, index: number): Promise<void> {
  await unlinkIfExists(ops, path.join(dir, ownerName(index)));
  await unlinkIfExists(ops, path.join(dir, lockName(index)));
}

export async function unlinkIfExists(ops: FileOps, file: string): Promise<void> {
  try {
    await ops.unlink(file);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}

async function writeOwner(ops: FileOps, dir: string, index: number, owner: OwnerRecord): Promise<void> {
  // Not fsynced: ownership only matters among running processes, and after
  // a crash a missing owner file reads as "dead owner" anyway.
  const tmp = path.join(dir, ownerTempName(index, process.pid));
  const fd = await ops.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o644);
  try {
    await pwriteAll(ops, fd, [Buffer.from(JSON.stringify(owner))], 0);
  } finally {
    await ops.close(fd);
  }
  await ops.rename(tmp, path.join(dir, ownerName(index)));
}

/** The owner named by owner-<index>, or null when it is missing or unreadable. */
export async function readOwner(ops: FileOps, dir: string, index: number): Promise<OwnerRecord | null> {
  let text: string;
  try {
    text = (await ops.readFile(path.join(dir, ownerName(index)))).toString('utf8');
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
 * names a dead process, AND the locked inode's ctime is older than
 * `graceMs`. The lock is a hard link to the log, so that ctime moves on
 * link(2), every write and every chmod: a live owner keeps it fresh, and the
 * grace covers the moment between link(2) and writing owner-<index>.
 */
export async function lockState(ops: FileOps, dir: string, index: number, graceMs: number, now = Date.now()): Promise<LockState> {
  const owner = await readOwner(ops, dir, index);
  if (owner && ownerAlive(owner)) return 'live';
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
