// Messages between the worker (lib/roles/worker.ts, through log-summer.ts)
// and its summing thread (summer-thread.ts). One session sums one batch:
// begin, then add logs chunk by chunk, then finish, which hands the summed
// batch over as transferable arrays (summed-batch.ts).

import type { LogProblem } from '../../commitlog/reader.js';
import type { FieldSizes } from '../../protocol/fields.js';
import type { WindowSettings } from '../../store/windows.js';
import type { SummedBatch } from './summed-batch.js';

export interface LogToSum {
  index: number;
  path: string;
  /** The store's applied mark of this index (8 bytes), if any: a log whose generation equals it is not summed. */
  mark: Uint8Array | null;
}

export type LogStatus =
  /** Summed into the session's batch. */
  | 'apply'
  /** Its generation equals the mark: applied before, not summed. */
  | 'already-applied'
  /** All zero: never used, nothing to apply (only a hand-made pool has such a dirty log). */
  | 'empty'
  /**
   * The header cannot be verified: the log is to be quarantined. Its
   * records of the last use were summed if `salvage` is 'apply'
   * (docs/commit-log-format.md, "Salvaging").
   */
  | 'quarantine'
  /** Could not be read (I/O error): nothing summed. */
  | 'unreadable'
  /** Not read: the batch already held maxKeys pairs (the log waits for the next batch). */
  | 'deferred';

/** One producer's frames in a log: [id, epoch, first, last] (decimal strings: messages are structured clones). */
export type LogProducer = [string, number, string, string];

/** What a summed log holds for idempotent producers and tokens (producer-marks.ts). */
export interface LogDescription {
  /** The sequence number of the log's last frame, decimal; null when it has no record. */
  lastToken: string | null;
  producers: LogProducer[];
}

export interface LogOutcome {
  index: number;
  status: LogStatus;
  /** For 'unreadable': why. */
  error?: string;
  problems: LogProblem[];
  /** The log's generation (decimal), when its header is readable; for 'quarantine', the salvaged use's, if one was found. */
  generation: string | null;
  /**
   * For 'quarantine': 'apply' (records of an unapplied use summed),
   * 'already-applied' (that use's generation equals the mark), 'none' (no
   * record can be attributed to the last use).
   */
  salvage?: 'apply' | 'already-applied' | 'none';
  /** For 'quarantine': how the generation was found (LogSalvage.from). */
  salvageFrom?: 'header-field' | 'first-record';
  sealed: boolean;
  frames: number;
  records: number;
  /** For a log summed: its last token and its producers' frames (producer-marks.ts). */
  description?: LogDescription;
}

export type SummerRequest =
  /** `declared`: the store's declared keyspaces and their operators (latin1 name, lib/store/combine.ts Operator) as the batch begins. */
  /** `windows`: the store's windowed keyspaces (latin1 name, lib/store/windows.ts). */
  | { op: 'begin'; id: number; session: number; sizes: FieldSizes; declared: Array<[string, number]>; windows: Array<[string, WindowSettings]> }
  /** Logs are summed in order until the batch holds maxKeys pairs; the rest are 'deferred'. */
  | { op: 'add'; id: number; session: number; logs: LogToSum[]; maxKeys: number }
  | { op: 'finish'; id: number; session: number };

export type SummerReply =
  | { id: number; ok: false; error: string }
  | { id: number; ok: true; session: number; op: 'begin' }
  | { id: number; ok: true; session: number; op: 'add'; logs: LogOutcome[]; keys: number }
  | { id: number; ok: true; session: number; op: 'finish'; batch: SummedBatch };
