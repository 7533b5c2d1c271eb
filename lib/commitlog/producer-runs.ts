// The runs of idempotent producers in commit-log records
// (docs/commit-log-format.md section 3c): per producer id, the newest epoch
// seen and the lowest and highest sequence of that epoch, with the token (the
// sequence number of the last frame) of the newest record holding it. Read
// by the summing thread (what an apply records in the database) and by a
// writer that starts (the producers of the logs not yet applied).

import { OP_ENTRY_FIXED_SIZE, OP_PRODUCER_BIT, RECORD_OPS, forEachOpAt } from './format.js';
import { readU64LE } from '../util/int64.js';
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
      // The trailer read in place (producerTrailerAt without its object): this runs for every entry the worker applies.
      if ((payload[p]! & OP_PRODUCER_BIT) === 0) return;
      const t = p + OP_ENTRY_FIXED_SIZE + ksLen + keyLen;
      const producer = readU64LE(payload, t);
      const epoch = payload.readUInt32LE(t + 8);
      const sequence = readU64LE(payload, t + 12);
      const run = runs.get(producer);
      if (run === undefined || epoch > run.epoch) {
        runs.set(producer, { epoch, first: sequence, last: sequence, token });
      } else if (epoch === run.epoch) {
        if (sequence < run.first) run.first = sequence;
        if (sequence > run.last) run.last = sequence;
        if (token > run.token) run.token = token;
      }
    });
  }
  return lastToken;
}
