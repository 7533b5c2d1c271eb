// countd commitlog <index>: print the valid records of one commit log and
// report damage with byte offsets (docs/commit-log-format.md, "Reading a
// log"). Exit 1 when the log is damaged. For a log whose header cannot be
// verified, the records printed are those a salvage applies ("Salvaging");
// `--release` gives a quarantined log back to the pool ("Quarantine").

import type { Argv } from 'yargs';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { logName } from '../../commitlog/filenames.js';
import { OP_DELETE_KEY, OP_DELETE_KEYSPACE, OP_INCREMENT, OP_SET } from '../../commitlog/format.js';
import { LogReading, reportLines, reportedRecords, walkEntries } from '../../commitlog/inspect.js';
import { CommitLogPool, MODE_QUARANTINED } from '../../commitlog/pool.js';
import { readLogFile } from '../../commitlog/reader.js';
import { openDataDir } from '../../datadir/meta.js';
import { CountdError, ErrorCodes, errnoCode } from '../../errors.js';
import { CommonArgs, JsonArgs, commonOptions, dataDirOf, jsonOption, logIndexPositional, withOptions } from '../options.js';
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

export async function handler(argv: CommonArgs & JsonArgs & { index: number; release?: boolean }): Promise<void> {
  const dir = await openDataDir(dataDirOf(argv), { create: false });
  const index = argv.index;
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
  const reading = reportedRecords(log);
  await printEntries(reading, argv.json === true);
  for (const line of reportLines(index, mode, file, log, reading)) process.stderr.write(`countd: ${line}\n`);
  if (reading.problems.length > 0) process.exitCode = 1;
}

/** Print every entry reported on stdout (a payload that does not decode becomes a problem of `reading`). */
const OP_NAMES: Record<number, string> = { [OP_SET]: 'set', [OP_DELETE_KEY]: 'delete-key', [OP_DELETE_KEYSPACE]: 'delete-keyspace' };

async function printEntries(reading: LogReading, json: boolean): Promise<void> {
  const lines: string[] = [];
  walkEntries(reading, (e) => {
    lines.push(
      formatLine(
        [
          { name: 'seq', value: e.seq },
          { name: 'keyspace', value: e.keyspace },
          { name: 'key', value: e.key },
          { name: 'increment', value: e.increment },
          // An op entry (set, delete) prints its op; a plain increment's line is unchanged.
          ...(e.op === undefined || e.op === OP_INCREMENT ? [] : [{ name: 'op', value: OP_NAMES[e.op] ?? String(e.op) }]),
        ],
        json,
      ),
    );
  });
  const out = new Output();
  for (const line of lines) {
    await out.write(line);
    if (out.closed) break;
  }
  await out.flush();
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
