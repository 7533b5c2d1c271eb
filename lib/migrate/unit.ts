// One legacy keyspace as `countd migrate` imports it (a "unit": its
// keyspace file and the frames of every replayed log that name it), and the
// small pieces of its import that need nothing of the Migration
// (importer.ts): its fingerprint, its first mark, how a legacy count enters
// a batch.

import { CountdError, ErrorCodes } from '../errors.js';
import type { IncrementBatch } from '../store/increment-batch.js';
import { MARK_VERSION, type ImportMode, type KeyspaceMark } from '../store/marks.js';
import { combineFingerprints } from './fingerprint.js';
import type { LegacyLogContents, LogContribution } from './legacy-log.js';
import type { LegacyKeyspaceFile } from './scan.js';
import type { ConflictReason, KeyspaceReport } from './summary.js';

/** One legacy keyspace: its file and the log frames for it. */
export interface Unit {
  name: Buffer;
  label: string;
  file: LegacyKeyspaceFile | undefined;
  fileFingerprint: string | null;
  logs: Array<{ contents: LegacyLogContents; contribution: LogContribution }>;
  unit: string;
  action: KeyspaceReport['action'];
  mark: KeyspaceMark | undefined;
  mode: ImportMode;
  conflict?: ConflictReason;
  /** The keyspace held keys in the database when the run started. */
  exists: boolean;
}

/** The mark of a unit imported afresh (not resumed): nothing of it is in the database yet. */
export function newMark(u: Unit): KeyspaceMark {
  return {
    v: MARK_VERSION,
    keyspace: u.label,
    unit: u.unit,
    file: u.fileFingerprint,
    logs: u.logs.map((l) => l.contents.fingerprint),
    mode: u.mode,
    base: null,
    next: 0,
    done: false,
    expect: null,
    saturated: false,
    at: new Date().toISOString(),
  };
}

/** A unit's fingerprint: of its file's and its dirty logs' fingerprints (docs/legacy-format.md, Plan). */
export function unitFingerprint(u: Unit): string {
  return combineFingerprints([...(u.fileFingerprint ? [`file:${u.fileFingerprint}`] : []), ...u.logs.map((l) => `log:${l.contents.fingerprint}`)]);
}

export function changedWhileRead(file: LegacyKeyspaceFile): CountdError {
  return new CountdError(ErrorCodes.MIGRATE, `${file.label} changed while it was being imported (is the original countd still running?); rerun once it is stopped`);
}

/**
 * Add one legacy count. A count of 0 must still create the key (the original
 * kept it; countd's apply creates a key touched by a non-zero delta even when
 * the deltas sum to 0), so it is added as +1 and -1.
 */
export function addRecord(batch: IncrementBatch, keyspace: Buffer, key: Buffer, count: bigint): void {
  if (count !== 0n) {
    batch.add(keyspace, key, count);
    return;
  }
  batch.add(keyspace, key, 1n);
  batch.add(keyspace, key, -1n);
}
