// The worker's summing thread: reads and verifies claimed commit logs and
// sums their entries per (keyspace, key), off the thread that runs the store.
// Summing is per frame (hundreds of thousands a second) and was a quarter of
// the worker's main-thread time (bench:worker); here it runs on the other core
// while the store applies the previous batch. Protocol: summer-protocol.ts.
// It decides nothing about exactly-once: it reports per log what it did, and
// the worker marks and releases logs from those reports.

import { parentPort } from 'node:worker_threads';
import { RECORD_OPS } from '../../commitlog/format.js';
import { headerUnverified, readLogFile, type LogRecord } from '../../commitlog/reader.js';
import type { FieldSizes } from '../../protocol/fields.js';
import { PairSums } from './pair-sums.js';
import { describeRecords } from './producer-marks.js';
import { encodeAppliedMark } from '../../store/marks.js';
import { type LogOutcome, type LogToSum, type SummerReply, type SummerRequest } from './summer-protocol.js';

const port = parentPort;
if (port === null) throw new Error('summer-thread.js runs as a worker thread');

let session = -1;
let sizes: FieldSizes | undefined;
let batch = new PairSums();

/**
 * `openedAt`: the use's start, the time of a record written before records
 * said when (0.5.0); none of those can be windowed (lib/store/windows.ts).
 */
function addRecord(record: LogRecord, openedAt: number): void {
  const writtenAt = record.writtenAt ?? openedAt;
  if (record.type === RECORD_OPS) batch.addOps(record.payload, writtenAt);
  else batch.addPayload(record.payload, writtenAt);
}

async function sumLog(log: LogToSum, sizes: FieldSizes): Promise<LogOutcome> {
  let contents: Awaited<ReturnType<typeof readLogFile>>;
  try {
    contents = await readLogFile(log.path, sizes);
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    return { index: log.index, status: 'unreadable', error, problems: [], generation: null, sealed: false, frames: 0, records: 0 };
  }
  if (headerUnverified(contents)) return salvageLog(log, contents);
  const base = { index: log.index, problems: contents.problems, sealed: contents.sealed, records: contents.records.length };
  if (contents.header === null || contents.generation === null) return { ...base, status: 'empty', generation: null, frames: 0 };
  const generation = contents.generation.toString();
  if (log.mark !== null && encodeAppliedMark(contents.generation).equals(log.mark)) return { ...base, status: 'already-applied', generation, frames: 0 };
  for (const record of contents.records) addRecord(record, contents.header.openedAt);
  return { ...base, status: 'apply', generation, frames: contents.frames, description: describeRecords(contents.records) };
}

/**
 * A log whose header cannot be verified: sum the records attributed to its
 * last use unless the mark says that use was applied (then a kill after the
 * salvage's apply, before the quarantine, is not counted twice).
 */
function salvageLog(log: LogToSum, contents: Awaited<ReturnType<typeof readLogFile>>): LogOutcome {
  const s = contents.salvage;
  const problems = [...contents.problems, ...(s?.problems ?? [])];
  const base = { index: log.index, status: 'quarantine' as const, problems, sealed: s?.sealed ?? false, records: s?.records.length ?? 0 };
  if (s === null) return { ...base, salvage: 'none', generation: null, frames: 0 };
  const generation = s.generation.toString();
  if (log.mark !== null && encodeAppliedMark(s.generation).equals(log.mark)) {
    return { ...base, salvage: 'already-applied', salvageFrom: s.from, generation, frames: 0 };
  }
  for (const record of s.records) addRecord(record, 0);
  return { ...base, salvage: 'apply', salvageFrom: s.from, generation, frames: s.frames, description: describeRecords(s.records) };
}

async function handle(req: SummerRequest): Promise<{ reply: SummerReply; transfer: ArrayBuffer[] }> {
  if (req.op === 'begin') {
    session = req.session;
    sizes = req.sizes;
    batch = new PairSums(new Map(req.declared), new Map(req.windows));
    return { reply: { id: req.id, ok: true, session, op: 'begin' }, transfer: [] };
  }
  if (req.session !== session || sizes === undefined) throw new Error(`session ${req.session} is not the thread's (${session})`);
  if (req.op === 'add') {
    const logs: LogOutcome[] = [];
    for (const log of req.logs) {
      // The first log of a batch is always summed (count 0), so every batch takes at least one.
      if (batch.count >= req.maxKeys) logs.push({ index: log.index, status: 'deferred', problems: [], generation: null, sealed: false, frames: 0, records: 0 });
      else logs.push(await sumLog(log, sizes));
    }
    return { reply: { id: req.id, ok: true, session, op: 'add', logs, keys: batch.count }, transfer: [] };
  }
  const summed = batch.toSummed();
  batch = new PairSums();
  session = -1;
  const transfer = [summed.pairBytes.buffer, summed.keyBytes.buffer, summed.keyStarts.buffer, summed.deltas.buffer, summed.modes.buffer] as ArrayBuffer[];
  return { reply: { id: req.id, ok: true, session: req.session, op: 'finish', batch: summed }, transfer };
}

// One request at a time, in order (the worker awaits each, but be safe).
let queue: Promise<void> = Promise.resolve();
port.on('message', (req: SummerRequest) => {
  queue = queue.then(async () => {
    try {
      const { reply, transfer } = await handle(req);
      port.postMessage(reply, transfer);
    } catch (err) {
      port.postMessage({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies SummerReply);
    }
  });
});
