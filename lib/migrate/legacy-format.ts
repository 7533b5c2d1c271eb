// Constants and names of the original countd's flat-file storage
// (spec with byte grammar: docs/legacy-format.md).
//
//   <legacy-dir>/0000000003            commit log: raw 520-byte write frames; mode 0400 dirty, 0200 clean
//   <legacy-dir>/lock-0000000003       hard link to log 3: a process of the original owns it
//   <legacy-dir>/<keyspace>/keyspace   keyspace file: 264-byte records (count i64 LE, key 256 bytes NUL-padded)

import type { FieldSizes } from '../protocol/fields.js';

/** The original's field sizes: KS = K = 256. Legacy files are always read with these. */
export const LEGACY_SIZES: FieldSizes = Object.freeze({ keyspaceSize: 256, keySize: 256 });

/** Bytes of a keyspace-file record: count (8) + key field (256). */
export const KEYSPACE_RECORD_SIZE = 8 + LEGACY_SIZES.keySize;

/** Bytes of a legacy commit-log frame: increment (8) + keyspace (256) + key (256). */
export const LEGACY_FRAME_SIZE = 8 + LEGACY_SIZES.keyspaceSize + LEGACY_SIZES.keySize;

/** Size the original preallocated each log to: 2 MiB rounded down to whole frames (2,096,640 bytes, 4,032 frames). */
export const LEGACY_LOG_SIZE = Math.floor((2 * 1024 * 1024) / LEGACY_FRAME_SIZE) * LEGACY_FRAME_SIZE;

/** Permission bits of a log that a worker must apply (owner read-only). */
export const MODE_DIRTY = 0o400;
/** Permission bits of a log that a writer may fill (owner write-only). */
export const MODE_CLEAN = 0o200;

/** Name of the file inside each keyspace directory. */
export const KEYSPACE_FILE = 'keyspace';

export const LEGACY_LOG_RE = /^\d{10}$/;
export const LEGACY_LOCK_RE = /^lock-(\d{10})$/;
