// <data-dir>/daemon.json: written by `countd start` once its servers listen,
// removed on clean shutdown. Other commands read it to find a running daemon
// and its ports. A record whose process is gone (kill -9) is stale and ignored.

import { promises as fsp } from 'node:fs';
import { CountdError, ErrorCodes, errnoCode, translateFsError } from '../errors.js';
import { writeFileAtomic } from '../util/fsync.js';
import { ProcessIdentity, isAlive } from '../util/proc.js';
import { DataDirPaths } from './layout.js';

export interface DaemonRecord extends ProcessIdentity {
  listen: string;
  writePort: number;
  readPort: number;
  metricsPort?: number;
  /** The console, JSON API and /metrics (countd start --http-port). */
  httpPort?: number;
  /** Cluster mode: the NATS servers it joined (`countd status` shows the cluster through them). */
  nats?: string[];
  startedAt: string;
}

export async function writeDaemonRecord(paths: DataDirPaths, record: DaemonRecord): Promise<void> {
  await writeFileAtomic(paths.daemonRecord, JSON.stringify(record, null, 2) + '\n');
}

/** The record of a live daemon, or undefined if none runs (no record, or a stale one). */
export async function readLiveDaemonRecord(paths: DataDirPaths): Promise<DaemonRecord | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(paths.daemonRecord, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw translateFsError(err, `read ${paths.daemonRecord}`);
  }
  let record: DaemonRecord;
  try {
    record = JSON.parse(text) as DaemonRecord;
  } catch (err) {
    throw new CountdError(ErrorCodes.CORRUPTION, `${paths.daemonRecord} is not valid JSON`, { cause: err });
  }
  return isAlive(record) ? record : undefined;
}

/** Remove the record if it is ours (by PID), so a racing successor's record survives. */
export async function removeDaemonRecord(paths: DataDirPaths, pid = process.pid): Promise<void> {
  try {
    const record = JSON.parse(await fsp.readFile(paths.daemonRecord, 'utf8')) as DaemonRecord;
    if (record.pid !== pid) return;
    await fsp.unlink(paths.daemonRecord);
  } catch {
    // nothing to remove
  }
}
