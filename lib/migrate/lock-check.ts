// The checks before anything is read: the data directory is not inside the
// legacy directory and no countd daemon runs on it; and is the original
// countd still running on the legacy directory? (docs/legacy-format.md,
// "Lock links".) A live process refuses the migration even with --force; lock
// links that no live process explains are the original's normal leftovers,
// which --force passes over.

import path from 'node:path';
import { readLiveDaemonRecord } from '../datadir/daemon-record.js';
import type { DataDirPaths } from '../datadir/layout.js';
import { CountdError, ErrorCodes, invalidArgument } from '../errors.js';
import { findLegacyHolders, findOriginalProcesses } from './legacy-holders.js';
import type { ProblemLog } from './problems.js';

/** The original's data directory, fixed in its settings.py. */
export const ORIGINAL_DIR = '/tmp/countd';

function list(items: string[], max = 3): string {
  return items.slice(0, max).join(', ') + (items.length > max ? `, … (${items.length} in all)` : '');
}

export async function checkLegacyLocks(dir: string, locks: string[], force: boolean, problems: ProblemLog): Promise<void> {
  const holders = await findLegacyHolders(dir);
  const originals = await findOriginalProcesses();
  if (holders.length > 0) {
    const who = holders.map((h) => `pid ${h.pid} (${h.command}) has ${list(h.files)} open`);
    throw new CountdError(
      ErrorCodes.LOCKED,
      `a process is using ${dir}: ${list(who, 2)}. Stop it first (the original countd: Ctrl-C or kill; ` +
        'it leaves its lock- links behind either way, then rerun with --force); --force never imports from a directory in use',
    );
  }
  if (originals.length > 0 && path.resolve(dir) === ORIGINAL_DIR) {
    throw new CountdError(
      ErrorCodes.LOCKED,
      `the original countd is running (${list(originals.map((o) => `pid ${o.pid}: ${o.command}`), 2)}) and ${ORIGINAL_DIR} is its data directory: ` +
        'stop it first (Ctrl-C or kill), then rerun with --force; --force never imports from a directory in use',
    );
  }
  if (locks.length === 0) return;
  if (!force) {
    const running =
      originals.length > 0
        ? `; processes of the original run (${list(originals.map((o) => `pid ${o.pid}`))}) but hold nothing in it`
        : ' and no process of the original countd is running';
    throw new CountdError(
      ErrorCodes.MIGRATE,
      `${dir} has legacy lock links (${list(locks)}), but no process has a file of it open${running}: ` +
        'the links are stale, left by the original when it stopped (it leaves them on every stop). Rerun with --force to import what is on disk',
    );
  }
  for (const lock of locks) {
    problems.add({ kind: 'legacy-lock', source: lock, detail: 'stale lock link (no process has the directory open); passed over (--force)' });
  }
}

export async function checkDirectories(legacyDir: string, paths: DataDirPaths): Promise<void> {
  const rel = path.relative(legacyDir, paths.root);
  if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
    throw invalidArgument(`the data directory ${paths.root} must not be the legacy directory or inside it (the legacy directory is never modified)`);
  }
  const daemon = await readLiveDaemonRecord(paths);
  if (daemon !== undefined) {
    throw new CountdError(
      ErrorCodes.ALREADY_RUNNING,
      `a countd daemon (pid ${daemon.pid}) is running on ${paths.root}; stop it (countd stop) before migrating into it`,
    );
  }
}
