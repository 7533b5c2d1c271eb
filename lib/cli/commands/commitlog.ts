// countd commitlog <index>: print the valid records of one commit log and
// report damage with byte offsets (docs/commit-log-format.md, "Reading a
// log"). Exit 1 when the log is damaged.

import type { Argv } from 'yargs';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { logName } from '../../commitlog/filenames.js';
import { logStateOfMode, logSummary, problemLine, walkLogEntries } from '../../commitlog/inspect.js';
import { readLogFile } from '../../commitlog/reader.js';
import { openDataDir } from '../../datadir/meta.js';
import { CountdError, ErrorCodes, errnoCode } from '../../errors.js';
import { Flags, commonOptions, dataDirOf, jsonOption, logIndexPositional, withOptions } from '../options.js';
import { Output, formatLine } from '../output.js';

export const command = 'commitlog <index>';
export const describe = 'print the records of one commit log (seq<TAB>keyspace<TAB>key<TAB>increment); exit 1 if damaged';

export function builder(y: Argv): Argv {
  return withOptions(y.positional('index', logIndexPositional), commonOptions, jsonOption);
}

export async function handler(argv: Flags): Promise<void> {
  const dir = await openDataDir(dataDirOf(argv), { create: false });
  const file = path.join(dir.paths.commitlog, logName(argv.index as number));
  let mode: number;
  try {
    mode = (await fsp.stat(file)).mode & 0o7777;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new CountdError(ErrorCodes.INVALID_ARGUMENT, `commit log ${file} does not exist`);
    throw err;
  }
  const log = await readLogFile(file, dir.sizes);
  const json = argv.json === true;
  const out = new Output();
  const lines: string[] = [];
  const problems = walkLogEntries(log, (e) => {
    lines.push(
      formatLine(
        [
          { name: 'seq', value: e.seq },
          { name: 'keyspace', value: e.keyspace },
          { name: 'key', value: e.key },
          { name: 'increment', value: e.increment },
        ],
        json,
      ),
    );
  });
  for (const line of lines) {
    await out.write(line);
    if (out.closed) break;
  }
  await out.flush();
  process.stderr.write(`countd: ${logSummary(argv.index as number, logStateOfMode(mode), log, problems)}\n`);
  for (const p of problems) process.stderr.write(`countd: ${problemLine(p)}\n`);
  if (problems.length > 0) {
    process.stderr.write(`countd: commit log ${file} is damaged: ${problems.length} problem(s)\n`);
    process.exitCode = 1;
  }
}
