// Lists a legacy directory (docs/legacy-format.md):
// which entries are keyspace directories, commit logs (dirty or clean) and
// lock links, and which are strays. Only reads: stat, readdir.
//
// Directory entries are read as bytes (a keyspace directory is named by the
// keyspace's bytes, which need not be UTF-8), and paths are built as Buffers.

import { promises as fsp, type Stats } from 'node:fs';
import { CountdError, ErrorCodes, errnoCode, translateFsError } from '../errors.js';
import { escapeName } from '../util/escape.js';
import { KEYSPACE_FILE, LEGACY_LOCK_RE, LEGACY_LOG_RE, MODE_CLEAN, MODE_DIRTY } from './legacy-format.js';
import type { ProblemLog } from './problems.js';

export interface LegacyKeyspaceFile {
  /** Keyspace name: the directory name's bytes. */
  name: Buffer;
  /** Path of `<legacy>/<name>/keyspace`. */
  path: Buffer;
  /** Relative path for messages, escaped. */
  label: string;
  size: number;
}

export interface LegacyLog {
  index: number;
  /** The 10-digit file name. */
  name: string;
  path: string;
  size: number;
  mode: number;
}

export interface LegacyLayout {
  root: string;
  keyspaceFiles: LegacyKeyspaceFile[];
  dirtyLogs: LegacyLog[];
  cleanLogs: LegacyLog[];
  /** Names of `lock-<index>` links. */
  locks: string[];
}

function joinPath(...parts: Array<string | Buffer>): Buffer {
  const out: Buffer[] = [];
  parts.forEach((p, i) => {
    if (i > 0) out.push(Buffer.from('/'));
    out.push(typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
  });
  return Buffer.concat(out);
}

async function lstatOrThrow(p: Buffer | string, what: string): Promise<Stats> {
  try {
    return await fsp.lstat(p);
  } catch (err) {
    throw translateFsError(err, `stat ${what}`);
  }
}

/** Scan `root`; problems (strays, directories without a keyspace file, odd log modes) go to `problems`. */
export async function scanLegacyDir(root: string, problems: ProblemLog): Promise<LegacyLayout> {
  let entries: Buffer[];
  try {
    entries = await fsp.readdir(root, { encoding: 'buffer' });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new CountdError(ErrorCodes.INVALID_ARGUMENT, `legacy directory ${root} does not exist`);
    if (errnoCode(err) === 'ENOTDIR') throw new CountdError(ErrorCodes.INVALID_ARGUMENT, `legacy directory ${root} is not a directory`);
    throw translateFsError(err, `read legacy directory ${root}`);
  }
  entries.sort(Buffer.compare);
  const layout: LegacyLayout = { root, keyspaceFiles: [], dirtyLogs: [], cleanLogs: [], locks: [] };
  for (const entry of entries) {
    const label = escapeName(entry);
    const text = entry.toString('latin1');
    const full = joinPath(root, entry);
    const st = await lstatOrThrow(full, `${root}/${label}`);
    if (st.isFile() && LEGACY_LOCK_RE.test(text)) {
      layout.locks.push(text);
      continue;
    }
    if (st.isFile() && LEGACY_LOG_RE.test(text)) {
      const log: LegacyLog = { index: Number(text), name: text, path: `${root}/${text}`, size: st.size, mode: st.mode & 0o7777 };
      const perm = st.mode & 0o777;
      if (perm === MODE_DIRTY) layout.dirtyLogs.push(log);
      else if (perm === MODE_CLEAN) layout.cleanLogs.push(log);
      else {
        problems.add({
          kind: 'log-mode',
          source: label,
          detail: `mode ${perm.toString(8).padStart(4, '0')} is neither 0400 (dirty) nor 0200 (clean); not replayed`,
        });
      }
      continue;
    }
    if (!st.isDirectory()) {
      problems.add({ kind: 'stray-file', source: label, detail: `not a keyspace directory, commit log or lock link (${kindOf(st)})` });
      continue;
    }
    await scanKeyspaceDir(entry, full, label, layout, problems);
  }
  return layout;
}

async function scanKeyspaceDir(name: Buffer, dir: Buffer, label: string, layout: LegacyLayout, problems: ProblemLog): Promise<void> {
  let inner: Buffer[];
  try {
    inner = await fsp.readdir(dir, { encoding: 'buffer' });
  } catch (err) {
    throw translateFsError(err, `read directory ${layout.root}/${label}`);
  }
  inner.sort(Buffer.compare);
  let found = false;
  for (const e of inner) {
    const innerLabel = `${label}/${escapeName(e)}`;
    const full = joinPath(dir, e);
    const st = await lstatOrThrow(full, `${layout.root}/${innerLabel}`);
    if (e.toString('latin1') === KEYSPACE_FILE && st.isFile()) {
      found = true;
      layout.keyspaceFiles.push({ name, path: full, label: innerLabel, size: st.size });
      continue;
    }
    problems.add({ kind: 'stray-file', source: innerLabel, detail: `not a keyspace file (${kindOf(st)})` });
  }
  if (!found) problems.add({ kind: 'no-keyspace-file', source: label, detail: 'directory without a keyspace file; skipped' });
}

function kindOf(st: Stats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symbolic link';
  return 'special file';
}
