// The commit-log pool as the console shows it: one stat(2) per log for its
// state (the permission bits, as CommitLogPool.status() reads them) and
// whether a lock link owns it, and on demand what `countd commitlog`
// reports about one log (lib/commitlog/inspect.ts). Read-only: nothing here
// claims, locks or changes a file.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { logName, parsePoolName } from '../commitlog/filenames.js';
import { logStateOfMode, reportLines, reportedRecords, walkEntries } from '../commitlog/inspect.js';
import { LogProblem, readLogFile } from '../commitlog/reader.js';
import { errnoCode, translateFsError } from '../errors.js';
import type { FieldSizes } from '../protocol/fields.js';
import { escapeName } from '../util/escape.js';
import { notFound } from './reply.js';

export interface LogFileInfo {
  index: number;
  name: string;
  /** `clean`, `dirty`, `quarantined`, or `mode NNN` (as `countd commitlog` names it). */
  state: string;
  mode: string;
  locked: boolean;
  sizeBytes: number;
  /** Last write (ms since the epoch): for a dirty log, when the writer handed it over. */
  modifiedAt: number;
}

/** Every log of the pool, by index. Logs removed while scanning are left out. */
export async function scanPool(dir: string): Promise<LogFileInfo[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw translateFsError(err, `list commit-log pool ${dir}`);
  }
  const locks = new Set<number>();
  const indexes: number[] = [];
  for (const name of names) {
    const p = parsePoolName(name);
    if (p.kind === 'log') indexes.push(p.index);
    else if (p.kind === 'lock') locks.add(p.index);
  }
  indexes.sort((a, b) => a - b);
  const out: LogFileInfo[] = [];
  for (const index of indexes) {
    let st;
    try {
      st = await fsp.stat(path.join(dir, logName(index)));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue;
      throw translateFsError(err, `stat commit log ${index}`);
    }
    out.push({
      index,
      name: logName(index),
      state: logStateOfMode(st.mode),
      mode: (st.mode & 0o7777).toString(8).padStart(4, '0'),
      locked: locks.has(index),
      sizeBytes: st.size,
      modifiedAt: Math.round(st.mtimeMs),
    });
  }
  return out;
}

export interface LogReport {
  index: number;
  name: string;
  state: string;
  mode: string;
  locked: boolean;
  /** The lines `countd commitlog` writes on stderr, without `countd: `: summary, salvage note, damage. */
  report: string[];
  generation: string | null;
  /** The header cannot be verified: the entries are those a salvage applies. */
  salvaging: boolean;
  frames: number;
  sealed: boolean;
  validEnd: number;
  damaged: boolean;
  problems: LogProblem[];
  /** The first `limit` entries reported (keyspace and key in the CLI's escaped form). */
  entries: Array<{ seq: bigint; keyspace: string; key: string; increment: bigint }>;
  entriesShown: number;
  entriesTotal: number;
}

/** What `countd commitlog <index>` reports about one log, with its first `limit` entries. */
export async function reportLog(dir: string, sizes: FieldSizes, index: number, limit: number): Promise<LogReport> {
  const info = (await scanPool(dir)).find((l) => l.index === index);
  if (info === undefined) throw notFound(`commit log ${logName(index)} does not exist`);
  const file = path.join(dir, info.name);
  const log = await readLogFile(file, sizes);
  const reading = reportedRecords(log);
  const entries: LogReport['entries'] = [];
  let total = 0;
  walkEntries(reading, (e) => {
    total++;
    if (entries.length < limit) entries.push({ seq: e.seq, keyspace: escapeName(e.keyspace), key: escapeName(e.key), increment: e.increment });
  });
  return {
    index,
    name: info.name,
    state: info.state,
    mode: info.mode,
    locked: info.locked,
    report: reportLines(index, parseInt(info.mode, 8), file, log, reading),
    generation: log.generation === null ? null : log.generation.toString(),
    salvaging: reading.salvaging,
    frames: log.frames,
    sealed: log.sealed,
    validEnd: log.end,
    damaged: reading.problems.length > 0,
    problems: reading.problems,
    entries,
    entriesShown: entries.length,
    entriesTotal: total,
  };
}

/**
 * The pool with, for each log that waits (dirty), is quarantined or that
 * nobody claims (any other mode), its increments (for a header that cannot
 * be verified, those a salvage applies) and the problems found: those are
 * the logs an operator must look at. Clean logs are free or being filled,
 * and are not read.
 */
export async function listPool(dir: string, sizes: FieldSizes): Promise<Array<LogFileInfo & { frames?: number; problems?: number }>> {
  const logs = await scanPool(dir);
  const out: Array<LogFileInfo & { frames?: number; problems?: number }> = [];
  for (const info of logs) {
    if (info.state === 'clean') {
      out.push(info);
      continue;
    }
    try {
      const reading = reportedRecords(await readLogFile(path.join(dir, info.name), sizes));
      let frames = 0;
      walkEntries(reading, () => void frames++);
      out.push({ ...info, frames, problems: reading.problems.length });
    } catch (err) {
      if (errnoCode((err as Error).cause) === 'ENOENT') continue; // applied and reused meanwhile
      throw err;
    }
  }
  return out;
}
