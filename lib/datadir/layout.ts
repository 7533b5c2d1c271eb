// Every top-level name inside a countd data directory is built here (the
// commit-log pool builds its own names in commitlog/filenames.ts). See
// docs/architecture.md, "Files on disk".
//
//   <data-dir>/COUNTD        meta file: format version and field sizes (meta.ts)
//   <data-dir>/commitlog/    the commit-log pool
//   <data-dir>/db/           the classic-level database
//   <data-dir>/daemon.json   the running daemon's PID and ports (daemon-record.ts)
//   <data-dir>/daemon.lock   created with O_EXCL by the supervisor: one daemon per directory

import os from 'node:os';
import path from 'node:path';

export const META_FILE = 'COUNTD';
export const COMMITLOG_DIR = 'commitlog';
export const DB_DIR = 'db';
export const DAEMON_RECORD_FILE = 'daemon.json';
export const DAEMON_LOCK_FILE = 'daemon.lock';

export interface DataDirPaths {
  root: string;
  meta: string;
  commitlog: string;
  db: string;
  daemonRecord: string;
  daemonLock: string;
}

export function dataDirPaths(root: string): DataDirPaths {
  const abs = path.resolve(root);
  return {
    root: abs,
    meta: path.join(abs, META_FILE),
    commitlog: path.join(abs, COMMITLOG_DIR),
    db: path.join(abs, DB_DIR),
    daemonRecord: path.join(abs, DAEMON_RECORD_FILE),
    daemonLock: path.join(abs, DAEMON_LOCK_FILE),
  };
}

/**
 * The default data directory: $COUNTD_DATA_DIR, else $XDG_DATA_HOME/countd,
 * else ~/.local/share/countd. (Not /tmp/countd: that is where the original
 * countd kept its data, which `countd migrate` reads.)
 */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.COUNTD_DATA_DIR) return path.resolve(env.COUNTD_DATA_DIR);
  const base = env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'countd');
}
