// The runs of idempotent producers in commit-log records
// (docs/commit-log-format.md section 3c): per producer id, the newest epoch
// seen and the lowest and highest sequence of that epoch, with the token (the
// sequence number of the last frame) of the newest record holding it. Read
// by the summing thread (what an apply records in the database) and by a
// writer that starts (the producers of the logs not yet applied).

import { RECORD_OPS, forEachOpAt, producerOfRun } from './format.js';
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
    // A run of the record (a trailer and the continuations after it, section 3c) is added once, when it ends:
    // one BigInt addition per run, not per entry, on the summing thread's path.
    let trailer = -1;
    let continued = 0;
    forEachOpAt(payload, (_p, _op, _ksLen, _keyLen, t, k) => {
      if (t === trailer) {
        continued = k;
        return;
      }
      if (trailer >= 0) addRun(runs, payload, trailer, continued, token);
      trailer = t;
      continued = k;
    });
    if (trailer >= 0) addRun(runs, payload, trailer, continued, token);
  }
  return lastToken;
}

/** Add the sequences trailer … trailer + continued of the producer whose trailer is at payload[trailer] to `runs`. */
function addRun(runs: Map<bigint, ProducerRun>, payload: Buffer, trailer: number, continued: number, token: bigint): void {
  const { producer, epoch, sequence: first } = producerOfRun(payload, trailer, 0);
  const last = continued === 0 ? first : first + BigInt(continued);
  const run = runs.get(producer);
  if (run === undefined || epoch > run.epoch) {
    runs.set(producer, { epoch, first, last, token });
  } else if (epoch === run.epoch) {
    if (first < run.first) run.first = first;
    if (last > run.last) run.last = last;
    if (token > run.token) run.token = token;
  }
}
