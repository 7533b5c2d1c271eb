// The runs of idempotent producers in commit-log records
// (docs/commit-log-format.md section 3c): per producer id, the newest epoch
// seen and the lowest and highest sequence of that epoch, with the token (the
// sequence number of the last frame) of the newest record holding it. Read
// by the summing thread (what an apply records in the database) and by a
// writer that starts (the producers of the logs not yet applied).

import { RECORD_OPS, forEachOpAt, producerTrailerAt } from './format.js';
import type { LogRecord } from './reader.js';

export interface ProducerRun {
  epoch: number;
  first: bigint;
  last: bigint;
  /** The highest token of the records that hold the run's frames. */
  token: bigint;
}

/**
 * Add the producer frames of `records` (one log use, in order) to `runs`;
 * returns the sequence number of the last frame of the records (-1 when none).
 */
export function collectProducerRuns(records: readonly LogRecord[], runs: Map<bigint, ProducerRun>): bigint {
  let lastToken = -1n;
  for (const record of records) {
    const token = record.seq + BigInt(record.count) - 1n;
    if (token > lastToken) lastToken = token;
    if (record.type !== RECORD_OPS) continue;
    const payload = record.payload;
    forEachOpAt(payload, (p, _op, ksLen, keyLen) => {
      const t = producerTrailerAt(payload, p, ksLen, keyLen);
      if (t === null) return;
      const run = runs.get(t.producer);
      if (run === undefined || t.epoch > run.epoch) {
        runs.set(t.producer, { epoch: t.epoch, first: t.sequence, last: t.sequence, token });
      } else if (t.epoch === run.epoch) {
        if (t.sequence < run.first) run.first = t.sequence;
        if (t.sequence > run.last) run.last = t.sequence;
        if (token > run.token) run.token = token;
      }
    });
  }
  return lastToken;
}
