// What `countd commitlog <index>` and the console's commit-log view report
// about one log (docs/commit-log-format.md, "Reading a log"): its state by
// mode, a one-line summary, every valid entry, and the damage found, with
// the bytes dropped. One module, so that the CLI and the HTTP API say the
// same thing about the same file.

import { logName } from './filenames.js';
import { forEachEntry } from './format.js';
import { MODE_CLEAN, MODE_DIRTY } from './pool.js';
import { LogContents, LogProblem } from './reader.js';

/** `clean` (0200), `dirty` (0400), or `mode NNN` for any other permission bits. */
export function logStateOfMode(mode: number): string {
  const bits = mode & 0o7777;
  return bits === MODE_CLEAN ? 'clean' : bits === MODE_DIRTY ? 'dirty' : `mode ${bits.toString(8)}`;
}

export interface LogEntry {
  seq: bigint;
  keyspace: Buffer;
  key: Buffer;
  increment: bigint;
}

/**
 * Visit the valid entries of a parsed log in file order; a record whose
 * payload does not decode is reported as a problem (bytes dropped 0: its
 * CRC matched, so the record stays where it is). Returns every problem:
 * the reader's and the payloads'. `visit` returning false stops the walk
 * (later payload problems are then not reported).
 */
export function walkLogEntries(log: LogContents, visit: (entry: LogEntry) => boolean | void): LogProblem[] {
  const problems = [...log.problems];
  for (const record of log.records) {
    let seq = record.seq;
    let stop = false;
    try {
      forEachEntry(record.payload, (increment, keyspace, key) => {
        if (stop) return;
        if (visit({ seq: seq++, keyspace, key, increment }) === false) stop = true;
      });
    } catch (err) {
      problems.push({ offset: record.offset, bytesDropped: 0, reason: `record payload: ${(err as Error).message}` });
    }
    if (stop) break;
  }
  return problems;
}

/** The summary line of `countd commitlog`, without the `countd: ` prefix. */
export function logSummary(index: number, state: string, log: LogContents, problems: LogProblem[]): string {
  return (
    `log ${logName(index)} (${state}): ` +
    (log.header === null && problems.length === 0
      ? 'never used (all zero)'
      : `generation ${log.generation ?? '?'}, ${log.records.length} records, ${log.frames} frames, ${log.sealed ? 'sealed' : 'not sealed'}, valid bytes end at ${log.end}`)
  );
}

/** One damage line of `countd commitlog`, without the `countd: ` prefix. */
export function problemLine(p: LogProblem): string {
  return `damage at byte offset ${p.offset}: ${p.reason} (${p.bytesDropped} bytes dropped)`;
}
