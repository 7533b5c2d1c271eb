// countd commitlog <index>: print the valid records of one commit log and
// report damage with byte offsets (docs/commit-log-format.md, "Reading a
// log"). Exit 1 when the log is damaged.

import type { Argv } from 'yargs';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { logName } from '../../commitlog/filenames.js';
import { forEachEntry } from '../../commitlog/format.js';
import { readLogFile } from '../../commitlog/reader.js';
import { openDataDir } from '../../datadir/meta.js';
import { CountdError, ErrorCodes, errnoCode } from '../../errors.js';
import { CommonArgs, JsonArgs, commonOptions, dataDirOf, jsonOption, logIndexPositional, withOptions } from '../options.js';
import { Output, formatLine } from '../output.js';

export const command = 'commitlog <index>';
export const describe = 'print the records of one commit log (seq<TAB>keyspace<TAB>key<TAB>increment); exit 1 if damaged';

export function builder(y: Argv): Argv {
  return withOptions(y.positional('index', logIndexPositional), commonOptions, jsonOption);
}

export async function handler(argv: CommonArgs & JsonArgs & { index: number }): Promise<void> {
  const dir = await openDataDir(dataDirOf(argv), { create: false });
  const file = path.join(dir.paths.commitlog, logName(argv.index));
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
  const problems = [...log.problems];
  const lines: string[] = [];
  for (const record of log.records) {
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
  const state = mode === 0o200 ? 'clean' : mode === 0o400 ? 'dirty' : `mode ${mode.toString(8)}`;
  const summary =
    `log ${logName(argv.index)} (${state}): ` +
    (log.header === null && problems.length === 0
      ? 'never used (all zero)'
      : `generation ${log.generation ?? '?'}, ${log.records.length} records, ${log.frames} frames, ${log.sealed ? 'sealed' : 'not sealed'}, valid bytes end at ${log.end}`);
  process.stderr.write(`countd: ${summary}\n`);
  for (const p of problems) {
    process.stderr.write(`countd: damage at byte offset ${p.offset}: ${p.reason} (${p.bytesDropped} bytes dropped)\n`);
  }
  if (problems.length > 0) {
    process.stderr.write(`countd: commit log ${file} is damaged: ${problems.length} problem(s)\n`);
    process.exitCode = 1;
  }
}
