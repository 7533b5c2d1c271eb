// The meta file <data-dir>/COUNTD: a small JSON document that marks a
// directory as a countd data directory and records what it was created with.
// A data directory is opened only with the format version and field sizes it
// was created with (docs/architecture.md, "The meta file").
//
//   {"format":"countd","version":1,"keyspaceSize":256,"keySize":256,"created":"<ISO date>"}

import { promises as fsp } from 'node:fs';
import { CountdError, ErrorCodes, errnoCode, translateFsError } from '../errors.js';
import { DEFAULT_FIELD_SIZES, FieldSizes, checkFieldSizes } from '../protocol/fields.js';
import { DirOps, mkdirDurable, realDirOps, writeFileAtomic } from '../util/fsync.js';
import { DataDirPaths, META_FILE, dataDirPaths } from './layout.js';

export const FORMAT_NAME = 'countd';
export const FORMAT_VERSION = 1;

export interface DataDirMeta extends FieldSizes {
  format: typeof FORMAT_NAME;
  version: number;
  created: string;
}

export interface DataDir {
  paths: DataDirPaths;
  meta: DataDirMeta;
  sizes: FieldSizes;
}

export interface OpenDataDirOptions {
  /** Create the directory (and its meta file) when it does not exist or is empty. Default true. */
  create?: boolean;
  /** Field sizes wanted; opening a directory made with other sizes fails. Default: whatever it has (256/256 when new). */
  sizes?: Partial<FieldSizes>;
  /** How directories are created and fsynced (tests inject faults). Default: the real file system. */
  dirOps?: DirOps;
}

/** Open (and by default create) a data directory; checks its format and field sizes. */
export async function openDataDir(root: string, options: OpenDataDirOptions = {}): Promise<DataDir> {
  const paths = dataDirPaths(root);
  const create = options.create ?? true;
  const dirOps = options.dirOps ?? realDirOps;
  let meta = await readMeta(paths);
  // A meta file being written by a concurrent opener (writeFileAtomic's temp) is not content.
  let entries = meta === undefined ? (await listDir(paths.root))?.filter((e) => !e.startsWith(`${META_FILE}.tmp-`)) : [];
  if (meta === undefined && entries?.includes(META_FILE)) {
    // A concurrent opener created the directory between our two looks: it is complete now.
    meta = await readMeta(paths);
    entries = [];
  }
  if (meta === undefined) {
    if (entries === undefined && !create) {
      throw new CountdError(ErrorCodes.NO_DATA_DIR, `data directory ${paths.root} does not exist`);
    }
    if (entries !== undefined && entries.length > 0) {
      if (await looksLegacy(paths.root, entries)) {
        throw new CountdError(
          ErrorCodes.LEGACY_DATA_DIR,
          `${paths.root} holds data of the original countd; import it with: countd migrate ${paths.root} --data-dir <new-dir>`,
        );
      }
      throw new CountdError(
        ErrorCodes.NO_DATA_DIR,
        `${paths.root} is not a countd data directory (it has no ${META_FILE} file and is not empty)`,
      );
    }
    if (!create) throw new CountdError(ErrorCodes.NO_DATA_DIR, `${paths.root} is not a countd data directory (empty)`);
    const sizes = checkFieldSizes({ ...DEFAULT_FIELD_SIZES, ...definedOnly(options.sizes) });
    meta = {
      format: FORMAT_NAME,
      version: FORMAT_VERSION,
      keyspaceSize: sizes.keyspaceSize,
      keySize: sizes.keySize,
      created: new Date().toISOString(),
    };
    try {
      // The meta file comes first: a concurrent opener (countd-write and
      // countd-worker started together) then sees either an empty directory
      // or a complete data directory, never a half-made one.
      await mkdirDurable(paths.root, dirOps);
      await writeFileAtomic(paths.meta, JSON.stringify(meta) + '\n');
      await mkdirDurable(paths.commitlog, dirOps);
    } catch (err) {
      throw translateFsError(err, `create data directory ${paths.root}`);
    }
  } else {
    const wanted = definedOnly(options.sizes);
    for (const field of ['keyspaceSize', 'keySize'] as const) {
      const want = wanted[field];
      if (want !== undefined && want !== meta[field]) {
        throw new CountdError(
          ErrorCodes.DATA_DIR_MISMATCH,
          `data directory ${paths.root} was created with ${field} ${meta[field]}, not ${want}`,
        );
      }
    }
    await mkdirDurable(paths.commitlog, dirOps).catch((err: unknown) => {
      throw translateFsError(err, `create ${paths.commitlog}`);
    });
  }
  return { paths, meta, sizes: { keyspaceSize: meta.keyspaceSize, keySize: meta.keySize } };
}

/** Read and check the meta file; undefined when there is none. */
export async function readMeta(paths: DataDirPaths): Promise<DataDirMeta | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(paths.meta, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    if (errnoCode(err) === 'ENOTDIR') {
      throw new CountdError(ErrorCodes.NO_DATA_DIR, `${paths.root} is not a directory`, { cause: err });
    }
    throw translateFsError(err, `read ${paths.meta}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CountdError(ErrorCodes.CORRUPTION, `meta file ${paths.meta} is not valid JSON`, { cause: err });
  }
  const m = parsed as Partial<DataDirMeta> | null;
  if (m === null || typeof m !== 'object' || m.format !== FORMAT_NAME) {
    throw new CountdError(ErrorCodes.CORRUPTION, `meta file ${paths.meta} is not a countd meta file`);
  }
  if (m.version !== FORMAT_VERSION) {
    throw new CountdError(
      ErrorCodes.DATA_DIR_MISMATCH,
      `data directory ${paths.root} has format version ${String(m.version)}; this countd reads version ${FORMAT_VERSION}`,
    );
  }
  try {
    checkFieldSizes({ keyspaceSize: m.keyspaceSize as number, keySize: m.keySize as number });
  } catch (err) {
    throw new CountdError(ErrorCodes.CORRUPTION, `meta file ${paths.meta} has invalid field sizes`, { cause: err });
  }
  return m as DataDirMeta;
}

async function listDir(dir: string): Promise<string[] | undefined> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    if (errnoCode(err) === 'ENOTDIR') {
      throw new CountdError(ErrorCodes.NO_DATA_DIR, `${dir} is not a directory`, { cause: err });
    }
    throw translateFsError(err, `read directory ${dir}`);
  }
}

const LEGACY_LOG_NAME = /^(lock-)?\d{10}$/;

/** The original countd's layout (docs/legacy-format.md): 10-digit logs, lock- links, <keyspace>/keyspace files. */
async function looksLegacy(root: string, entries: string[]): Promise<boolean> {
  if (entries.some((e) => LEGACY_LOG_NAME.test(e))) return true;
  for (const e of entries.slice(0, 1000)) {
    try {
      const st = await fsp.stat(`${root}/${e}/keyspace`);
      if (st.isFile()) return true;
    } catch {
      // not a keyspace directory
    }
  }
  return false;
}

function definedOnly(sizes: Partial<FieldSizes> | undefined): Partial<FieldSizes> {
  const out: { keyspaceSize?: number; keySize?: number } = {};
  if (sizes?.keyspaceSize !== undefined) out.keyspaceSize = sizes.keyspaceSize;
  if (sizes?.keySize !== undefined) out.keySize = sizes.keySize;
  return out;
}
