// What `countd commitlog <index>` and the console's commit-log view report
// about one log (docs/commit-log-format.md, "Reading a log" and
// "Salvaging"): its state by mode, the records shown (for a log whose header
// cannot be verified, those a salvage applies), every valid entry, and the
// report lines: a summary, the salvage note, the damage found with the
// bytes dropped. One module, so that the CLI and the HTTP API say the same
// thing about the same file.

import { logName } from './filenames.js';
import { RECORD_OPS, decodeOps, forEachEntry } from './format.js';
import { MODE_CLEAN, MODE_DIRTY, MODE_QUARANTINED } from './pool.js';
import { LogContents, LogProblem, LogRecord, headerUnverified } from './reader.js';

/** `clean` (0200), `dirty` (0400), `quarantined` (0000), or `mode NNN` for any other permission bits. */
export function logStateOfMode(mode: number): string {
  const bits = mode & 0o7777;
  if (bits === MODE_CLEAN) return 'clean';
  if (bits === MODE_DIRTY) return 'dirty';
  if (bits === MODE_QUARANTINED) return 'quarantined';
  return `mode ${bits.toString(8)}`;
}

export interface LogReading {
  /** The records reported: the log's own, or for a header that cannot be verified, those a salvage applies. */
  records: LogRecord[];
  /** Every problem: the reader's, the salvage's, and (after walkEntries) payloads that do not decode. */
  problems: LogProblem[];
  salvaging: boolean;
}

export function reportedRecords(log: LogContents): LogReading {
  const salvaging = headerUnverified(log);
  return {
    records: salvaging ? (log.salvage?.records ?? []) : log.records,
    problems: [...log.problems, ...(salvaging ? (log.salvage?.problems ?? []) : [])],
    salvaging,
  };
}

export interface LogEntry {
  seq: bigint;
  keyspace: Buffer;
  key: Buffer;
  increment: bigint;
  /** For an entry of an OPS record: its op (format.ts OP_*; `increment` holds its value). */
  op?: number;
}

/**
 * Visit the entries of the records reported, in file order. A record whose
 * payload does not decode is added to `reading.problems` (bytes dropped 0:
 * its CRC matched, so the record stays where it is).
 */
export function walkEntries(reading: LogReading, visit: (entry: LogEntry) => void): void {
  for (const record of reading.records) {
    let seq = record.seq;
    try {
      if (record.type === RECORD_OPS) for (const o of decodeOps(record.payload)) visit({ seq: seq++, keyspace: o.keyspace, key: o.key, increment: o.value, op: o.op });
      else forEachEntry(record.payload, (increment, keyspace, key) => visit({ seq: seq++, keyspace, key, increment }));
    } catch (err) {
      reading.problems.push({ offset: record.offset, bytesDropped: 0, reason: `record payload: ${(err as Error).message}` });
    }
  }
}

/** The lines `countd commitlog` writes on stderr (without `countd: `), once the entries were walked. */
export function reportLines(index: number, mode: number, file: string, log: LogContents, reading: LogReading): string[] {
  const problems = reading.problems;
  const lines = [`log ${logName(index)} (${logStateOfMode(mode)}): ${summary(log, problems.length)}`];
  if (reading.salvaging) lines.push(salvageNote(log, mode));
  for (const p of problems) lines.push(`damage at byte offset ${p.offset}: ${p.reason} (${p.bytesDropped} bytes dropped)`);
  if (problems.length > 0) lines.push(`commit log ${file} is damaged: ${problems.length} problem(s)`);
  return lines;
}

function summary(log: LogContents, problems: number): string {
  if (log.headerState === 'empty' && problems === 0) return 'never used (all zero)';
  if (headerUnverified(log)) return 'header cannot be verified';
  return `generation ${log.generation ?? '?'}, ${log.records.length} records, ${log.frames} frames, ${log.sealed ? 'sealed' : 'not sealed'}, valid bytes end at ${log.end}`;
}

/** What a salvage of this log applies (docs/commit-log-format.md, "Salvaging"), and where the log stands. */
function salvageNote(log: LogContents, mode: number): string {
  const s = log.salvage;
  const what =
    s === null
      ? 'salvage: no record can be attributed to the last use of the file; nothing is applied (the records printed: none)'
      : `salvage: generation ${s.generation} (found by the ${s.from === 'header-field' ? "header's generation field" : 'record at offset 4096'}), ` +
        `${s.records.length} records, ${s.frames} frames (printed above), ${s.sealed ? 'sealed' : 'not sealed'}`;
  if (mode === MODE_QUARANTINED) {
    return `${what}; quarantined: the worker applied these frames once before it quarantined the log (unless its applied mark already named this generation). ` +
      'Keep a copy if you want to investigate, then release it with: countd commitlog <index> --release';
  }
  return `${what}; the worker applies these frames once (unless its applied mark already names this generation), then quarantines the log`;
}
