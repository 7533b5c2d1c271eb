// The unapplied backlog of the commit-log pool, as flow control sees it
// (lib/roles/write/flow.ts): the bytes of every dirty log (mode 0400:
// waiting for a worker, or being applied by one), whoever wrote it. Several
// writer processes may share one pool, so the truth is on disk: one
// readdir and one stat per log, nothing read (docs/commit-log-format.md,
// "States and transitions").
//
// A dirty log counts at its file size, the disk it holds: a log handed over
// part full (by time) counts whole, which errs on the side of the bound.
// Quarantined logs (0000) do not count: no worker will ever apply them, and
// counting them would stop the writers for good.

import path from 'node:path';
import { errnoCode, translateFsError } from '../errors.js';
import { type FileOps, realFileOps } from './fileops.js';
import { logName, parsePoolName } from './filenames.js';
import { MODE_DIRTY } from './pool.js';

export interface Backlog {
  /** Bytes of the dirty logs (file sizes). */
  bytes: number;
  /** Dirty logs. */
  logs: number;
  /** Each dirty log's bytes, by index (how fast they leave: roles/write/flow-drain.ts). */
  dirty: Map<number, number>;
  /**
   * The same by use, `index@mtime`: each use of a log writes it (header,
   * records, SEAL) and nothing else does (chmod, lock links and unlocks
   * change its ctime, not its mtime), so a log applied and made dirty
   * again between two scans is another use.
   */
  uses: Map<string, number>;
}

/** Scan the pool in `dir` for its dirty logs; a missing directory is an empty pool. */
export async function scanBacklog(dir: string, ops: FileOps = realFileOps): Promise<Backlog> {
  const backlog: Backlog = { bytes: 0, logs: 0, dirty: new Map(), uses: new Map() };
  let names: string[];
  try {
    names = await ops.readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return backlog;
    throw translateFsError(err, `scan commit-log pool ${dir}`);
  }
  for (const name of names) {
    const p = parsePoolName(name);
    if (p.kind !== 'log') continue;
    try {
      const st = await ops.stat(path.join(dir, logName(p.index)));
      if ((st.mode & 0o7777) !== MODE_DIRTY) continue;
      backlog.bytes += st.size;
      backlog.logs++;
      backlog.dirty.set(p.index, st.size);
      backlog.uses.set(`${p.index}@${st.mtimeMs}`, st.size);
    } catch (err) {
      // Gone since the readdir: nothing to count.
      if (errnoCode(err) !== 'ENOENT') throw translateFsError(err, `scan commit-log pool ${dir}`);
    }
  }
  return backlog;
}
