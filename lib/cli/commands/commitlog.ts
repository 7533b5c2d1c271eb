// countd commitlog <index>: print the valid records of one commit log and
// report damage with byte offsets (docs/commit-log-format.md, "Reading a
// log"). Exit 1 when the log is damaged. For a log whose header cannot be
// verified, the records printed are those a salvage applies ("Salvaging");
// `--release` gives a quarantined log back to the pool ("Quarantine").

import type { Argv } from 'yargs';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { logName } from '../../commitlog/filenames.js';
import { forEachEntry } from '../../commitlog/format.js';
import { CommitLogPool, MODE_CLEAN, MODE_DIRTY, MODE_QUARANTINED } from '../../commitlog/pool.js';
import { LogContents, LogRecord, headerUnverified, readLogFile } from '../../commitlog/reader.js';
import { openDataDir } from '../../datadir/meta.js';
import { CountdError, ErrorCodes, errnoCode } from '../../errors.js';
import { Flags, commonOptions, dataDirOf, jsonOption, logIndexPositional, withOptions } from '../options.js';
import { Output, formatLine } from '../output.js';

export const command = 'commitlog <index>';
export const describe = 'print the records of one commit log (seq<TAB>keyspace<TAB>key<TAB>increment); exit 1 if damaged';

export function builder(y: Argv): Argv {
  return withOptions(y.positional('index', logIndexPositional), commonOptions, jsonOption, {
    release: {
      type: 'boolean',
      default: false,
      describe: 'give a quarantined log (header not verifiable, records already salvaged) back to the pool for reuse',
    },
  });
}

export async function handler(argv: Flags): Promise<void> {
  const dir = await openDataDir(dataDirOf(argv), { create: false });
  const index = argv.index as number;
  const file = path.join(dir.paths.commitlog, logName(index));
  let mode: number;
  try {
    mode = (await fsp.stat(file)).mode & 0o7777;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new CountdError(ErrorCodes.INVALID_ARGUMENT, `commit log ${file} does not exist`);
    throw err;
  }
  if (argv.release === true) return release(dir.paths.commitlog, dir.sizes, index, mode, file);
  const log = await readLogFile(file, dir.sizes);
  const salvaging = headerUnverified(log);
  const problems = [...log.problems, ...(salvaging ? (log.salvage?.problems ?? []) : [])];
  await printRecords(salvaging ? (log.salvage?.records ?? []) : log.records, argv.json === true, problems);
  const state = mode === MODE_CLEAN ? 'clean' : mode === MODE_DIRTY ? 'dirty' : mode === MODE_QUARANTINED ? 'quarantined' : `mode ${mode.toString(8)}`;
  process.stderr.write(`countd: log ${logName(index)} (${state}): ${summary(log, problems.length)}\n`);
  if (salvaging) process.stderr.write(`countd: ${salvageNote(log, mode)}\n`);
  for (const p of problems) {
    process.stderr.write(`countd: damage at byte offset ${p.offset}: ${p.reason} (${p.bytesDropped} bytes dropped)\n`);
  }
  if (problems.length > 0) {
    process.stderr.write(`countd: commit log ${file} is damaged: ${problems.length} problem(s)\n`);
    process.exitCode = 1;
  }
}

/** Print every entry of `records` on stdout; a payload that does not decode becomes a problem. */
async function printRecords(records: LogRecord[], json: boolean, problems: LogContents['problems']): Promise<void> {
  const out = new Output();
  const lines: string[] = [];
  for (const record of records) {
    let seq = record.seq;
    try {
      forEachEntry(record.payload, (increment, keyspace, key) => {
        // Lines are queued synchronously; Output flushes them below.
        lines.push(
          formatLine(
            [
              { name: 'seq', value: seq++ },
              { name: 'keyspace', value: keyspace },
              { name: 'key', value: key },
              { name: 'increment', value: increment },
            ],
            json,
          ),
        );
      });
    } catch (err) {
      problems.push({ offset: record.offset, bytesDropped: 0, reason: `record payload: ${(err as Error).message}` });
    }
    for (const line of lines.splice(0)) await out.write(line);
    if (out.closed) break;
  }
  await out.flush();
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

async function release(poolDir: string, sizes: Parameters<typeof readLogFile>[1], index: number, mode: number, file: string): Promise<void> {
  if (mode !== MODE_QUARANTINED) {
    throw new CountdError(ErrorCodes.INVALID_ARGUMENT, `commit log ${file} is not quarantined (mode ${mode.toString(8).padStart(4, '0')}); only a quarantined log (mode 0000) can be released`);
  }
  const pool = await CommitLogPool.open({ dir: poolDir, sizes });
  if (!(await pool.releaseQuarantined(index))) {
    throw new CountdError(ErrorCodes.INVALID_ARGUMENT, `commit log ${file} is locked by another process or no longer quarantined; nothing changed`);
  }
  process.stderr.write(`countd: commit log ${logName(index)} released: clean (mode 0200), a writer may reuse it\n`);
}
