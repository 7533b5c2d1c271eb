// What the worker (lib/roles/worker.ts) holds for one batch between claiming
// its logs and applying them, and how each log's outcome from the summing
// thread decides its fate: applied with its mark, released clean (already
// applied, or all zero), quarantined after a salvage, or back to dirty
// (unreadable, or deferred: the batch was full). The exactly-once argument
// is worker.ts's header; the salvage's is docs/commit-log-format.md,
// "Salvaging".

import type { CommitLogPool } from '../../commitlog/pool.js';
import { appliedMarkName, encodeAppliedMark } from '../../store/marks.js';
import type { IncrementBatch } from '../../store/increment-batch.js';
import type { Logger } from '../../util/log.js';
import type { LogOutcome } from './summer-protocol.js';

export type ClaimedLog = Awaited<ReturnType<CommitLogPool['claimDirty']>>[number];

/** Claimed logs read and summed, ready for one store.apply(). */
export interface Prepared {
  started: bigint;
  /** The claimed logs that could be read: released clean after the apply. */
  claimed: ClaimedLog[];
  /** Set once every log is summed (LogSummer#finish). */
  batch: IncrementBatch | undefined;
  /** Distinct keys summed so far. */
  keys: number;
  marks: Array<{ name: string; value: Buffer }>;
  toApply: ClaimedLog[];
  /** Already applied (mark = generation): released clean (or quarantined), nothing applied. */
  alreadyApplied: ClaimedLog[];
  /** Indexes of the logs whose header cannot be verified: released quarantined, not clean. */
  quarantine: Set<number>;
  /** Frames of `frames` salvaged from such logs. */
  salvagedFrames: number;
  /** Logs that could not be read (already released dirty). */
  unreadable: number;
  /** Logs claimed but not summed: the batch was full (released dirty for the next one). */
  deferred: number;
  frames: number;
}
export function emptyPrepared(): Prepared {
  return {
    started: process.hrtime.bigint(),
    claimed: [],
    batch: undefined,
    keys: 0,
    marks: [],
    toApply: [],
    alreadyApplied: [],
    quarantine: new Set(),
    salvagedFrames: 0,
    unreadable: 0,
    deferred: 0,
    frames: 0,
  };
}

/**
 * Sort the summing thread's outcomes for `claimed` into `p`; the logs to
 * release dirty (unreadable, deferred) go to `back`, for the caller.
 */
export function takeOutcomes(p: Prepared, claimed: ClaimedLog[], outcomes: LogOutcome[], logger: Logger, back: { unreadable: ClaimedLog[]; deferred: ClaimedLog[] }): void {
  const byIndex = new Map(claimed.map((log) => [log.index, log]));
  for (const outcome of outcomes) {
    const log = byIndex.get(outcome.index)!;
    if (outcome.status === 'deferred') {
      // The batch is full: back to dirty, for the next batch.
      back.deferred.push(log);
      continue;
    }
    if (outcome.status === 'unreadable') {
      logger.error('cannot read commit log; will retry', { log: log.index, error: outcome.error });
      back.unreadable.push(log);
      continue;
    }
    p.claimed.push(log);
    for (const problem of outcome.problems) {
      logger.warn('commit log damaged; dropping bytes', { log: log.index, offset: problem.offset, bytesDropped: problem.bytesDropped, reason: problem.reason });
    }
    if (outcome.status === 'quarantine') {
      salvage(p, log, outcome, logger);
    } else if (outcome.status === 'empty') {
      logger.warn('dirty commit log is all zero: nothing to apply; releasing it clean', { log: log.index });
      p.alreadyApplied.push(log);
    } else if (outcome.status === 'already-applied') {
      // Case 3 of worker.ts's header: applied, then killed before release.
      logger.info('commit log already applied; releasing it', { log: log.index, generation: outcome.generation });
      p.alreadyApplied.push(log);
    } else {
      if (!outcome.sealed) logger.debug('applying an unsealed commit log', { log: log.index });
      p.frames += outcome.frames;
      p.marks.push({ name: appliedMarkName(log.index), value: encodeAppliedMark(BigInt(outcome.generation!)) });
      p.toApply.push(log);
    }
  }
}

/** A log whose header cannot be verified: to be quarantined after the apply, its salvaged records (if any) applied with it. */
function salvage(p: Prepared, log: ClaimedLog, outcome: LogOutcome, logger: Logger): void {
  p.quarantine.add(log.index);
  logger.error('commit log header cannot be verified; salvaging its records and quarantining it', {
    log: log.index,
    salvage: outcome.salvage,
    generation: outcome.generation ?? undefined,
    from: outcome.salvageFrom,
    records: outcome.records,
    frames: outcome.frames,
  });
  if (outcome.salvage !== 'apply') {
    p.alreadyApplied.push(log);
    return;
  }
  p.frames += outcome.frames;
  p.salvagedFrames += outcome.frames;
  p.marks.push({ name: appliedMarkName(log.index), value: encodeAppliedMark(BigInt(outcome.generation!)) });
  p.toApply.push(log);
}
