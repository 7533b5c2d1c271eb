// Reader of the original countd's commit logs (docs/legacy-format.md,
// "Commit logs"): raw 520-byte write frames, no header.
// A frame whose increment is 0 is padding (the original preallocated its logs
// with zeros) and is skipped silently; an invalid frame and a trailing partial
// frame are reported. A log is small (2 MiB), so its sums per (keyspace, key)
// are kept in memory until the keyspaces they belong to are imported.

import type { FieldSizes } from '../protocol/fields.js';
import { validateFrame } from '../protocol/write-frame.js';
import { fingerprintHash } from './fingerprint.js';
import { LEGACY_FRAME_SIZE, LEGACY_SIZES } from './legacy-format.js';
import type { ProblemLog } from './problems.js';
import { readChunks } from './read-chunks.js';
import type { LegacyLog } from './scan.js';

export interface KeyDelta {
  key: Buffer;
  delta: bigint;
}

/** What one log adds to one keyspace. */
export interface LogContribution {
  keyspace: Buffer;
  /** latin1 of the key bytes -> summed delta. */
  deltas: Map<string, KeyDelta>;
  /** Frames of this log applied to this keyspace. */
  frames: number;
}

export interface LegacyLogContents {
  log: LegacyLog;
  fingerprint: string;
  /** Frames with a non-zero increment that will be replayed. */
  frames: number;
  /** Frames with increment 0 (padding, or a zero increment: both change nothing). */
  padding: number;
  /** Invalid frames and frames whose names do not fit the target's field sizes. */
  skipped: number;
  /** latin1 keyspace name -> contribution. */
  keyspaces: Map<string, LogContribution>;
}

const FRAMES_PER_CHUNK = 4032;

/**
 * Read and check one log to replay; names must fit `target` sizes to be
 * replayed. `limit` replays only the log's first `limit` frames (the writer's
 * log in progress, or a rule of --legacy-log): the fingerprint then covers
 * exactly those bytes, so a log whose replayed part changes is a new source.
 */
export async function readLegacyLog(log: LegacyLog, target: FieldSizes, problems: ProblemLog, limit?: number): Promise<LegacyLogContents> {
  const bytes = limit === undefined ? log.size : Math.min(log.size, limit * LEGACY_FRAME_SIZE);
  const hash = fingerprintHash(Buffer.from(log.name, 'latin1'), bytes);
  const out: LegacyLogContents = { log, fingerprint: '', frames: 0, padding: 0, skipped: 0, keyspaces: new Map() };
  const lengths = new Int32Array(2);
  let offset = 0;
  for await (const whole of readChunks(log.path, FRAMES_PER_CHUNK * LEGACY_FRAME_SIZE, log.path)) {
    if (offset >= bytes) break;
    const chunk = offset + whole.length > bytes ? whole.subarray(0, bytes - offset) : whole;
    hash.update(chunk);
    let pos = 0;
    for (; pos + LEGACY_FRAME_SIZE <= chunk.length; pos += LEGACY_FRAME_SIZE) {
      const at = offset + pos;
      const increment = chunk.readBigInt64LE(pos);
      if (increment === 0n) {
        out.padding++;
        continue;
      }
      if (!validateFrame(chunk, pos, LEGACY_SIZES, lengths)) {
        out.skipped++;
        problems.add({ kind: 'invalid-frame', source: log.name, offset: at, detail: 'empty name or bytes after the NUL padding; frame skipped' });
        continue;
      }
      const ksLen = lengths[0]!;
      const keyLen = lengths[1]!;
      if (ksLen > target.keyspaceSize) {
        out.skipped++;
        problems.add({ kind: 'keyspace-too-long', source: log.name, offset: at, detail: `keyspace of ${ksLen} bytes does not fit the target's ${target.keyspaceSize}; frame skipped` });
        continue;
      }
      if (keyLen > target.keySize) {
        out.skipped++;
        problems.add({ kind: 'key-too-long', source: log.name, offset: at, detail: `key of ${keyLen} bytes does not fit the target's ${target.keySize}; frame skipped` });
        continue;
      }
      const ksStart = pos + 8;
      const keyStart = ksStart + LEGACY_SIZES.keyspaceSize;
      const ksId = chunk.toString('latin1', ksStart, ksStart + ksLen);
      let c = out.keyspaces.get(ksId);
      if (c === undefined) {
        c = { keyspace: Buffer.from(chunk.subarray(ksStart, ksStart + ksLen)), deltas: new Map(), frames: 0 };
        out.keyspaces.set(ksId, c);
      }
      const keyId = chunk.toString('latin1', keyStart, keyStart + keyLen);
      const d = c.deltas.get(keyId);
      if (d === undefined) c.deltas.set(keyId, { key: Buffer.from(chunk.subarray(keyStart, keyStart + keyLen)), delta: increment });
      else d.delta += increment;
      c.frames++;
      out.frames++;
    }
    if (pos < chunk.length) {
      // Only the last chunk can end short; chunks are whole frames otherwise.
      problems.add({ kind: 'partial-frame', source: log.name, offset: offset + pos, detail: `trailing partial frame of ${chunk.length - pos} bytes ignored` });
    }
    offset += chunk.length;
  }
  out.fingerprint = hash.digest('hex');
  return out;
}
