// <data-dir>/daemon.lock: one daemon per data directory. `countd start`
// creates it with O_EXCL before it starts anything and removes it last; it
// holds the identity (pid + process start time) of the daemon that owns it,
// so a lock left by a daemon that is gone (kill -9) is recognised and
// replaced. Two starters racing over a stale lock could both win here; the
// database lock (held by the store child, started first) is the backstop
// that stops the second.

import { promises as fsp } from 'node:fs';
import { readLiveDaemonRecord } from '../datadir/daemon-record.js';
import type { DataDirPaths } from '../datadir/layout.js';
import { CountdError, ErrorCodes, errnoCode, translateFsError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { ProcessIdentity, isAlive, selfIdentity } from '../util/proc.js';

/** A lock file without an identity younger than this belongs to a starter still writing it. */
const FRESH_LOCK_MS = 10_000;

/** Create daemon.lock for this process; COUNTD_ALREADY_RUNNING if a live daemon holds it. */
export async function acquireDaemonLock(paths: DataDirPaths, logger: Logger): Promise<void> {
  const file = paths.daemonLock;
  const live = await readLiveDaemonRecord(paths);
  if (live) throw alreadyRunning(paths.root, live.pid);
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await fsp.open(file, 'wx', 0o644);
      try {
        await fh.writeFile(JSON.stringify(selfIdentity()) + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
      return;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw translateFsError(err, `create ${file}`);
    }
    const owner = await readLockOwner(file);
    if (owner && isAlive(owner)) throw alreadyRunning(paths.root, owner.pid);
    // No identity yet: another starter has just created the file and is writing it.
    if (!owner && (await ageMs(file)) < FRESH_LOCK_MS) throw alreadyRunning(paths.root, undefined);
    if (attempt > 0) throw alreadyRunning(paths.root, owner?.pid);
    logger.warn('removing the lock of a daemon that is gone', { file, pid: owner?.pid });
    await fsp.unlink(file).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') throw translateFsError(err, `remove stale ${file}`);
    });
  }
}

/** Remove daemon.lock if this process owns it. */
export async function releaseDaemonLock(paths: DataDirPaths): Promise<void> {
  const file = paths.daemonLock;
  const owner = await readLockOwner(file);
  if (owner?.pid === process.pid) await fsp.unlink(file).catch(() => {});
}

async function readLockOwner(file: string): Promise<ProcessIdentity | undefined> {
  try {
    const parsed = JSON.parse(await fsp.readFile(file, 'utf8')) as ProcessIdentity;
    return typeof parsed?.pid === 'number' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

async function ageMs(file: string): Promise<number> {
  try {
    return Date.now() - (await fsp.stat(file)).mtimeMs;
  } catch {
    return Infinity;
  }
}

function alreadyRunning(root: string, pid: number | undefined): CountdError {
  return new CountdError(
    ErrorCodes.ALREADY_RUNNING,
    pid === undefined
      ? `a countd daemon is already starting or running on ${root}`
      : `a countd daemon is already running on ${root} (pid ${pid})`,
  );
}
