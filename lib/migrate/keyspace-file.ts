// Reader of the original countd's keyspace files (docs/legacy-format.md,
// "Keyspace files"): 264-byte records, count (signed
// 64-bit LE) then the key (256 bytes, NUL-padded), no header.
//
// Damage is reported to the ProblemLog and skipped: a trailing partial record,
// an invalid key field (empty, or bytes after the NUL padding), a key longer
// than the target's key field, and every record of a key after its FIRST one
// in file order. Records out of order (the original kept them sorted by count
// descending) lose nothing and are a notice.
//
// Finding duplicates needs every key seen so far: the one per-file memory
// cost of the migration (a Set of the keys as latin1 strings, about 50 bytes
// plus the key length per key).

import { fieldNameLength, type FieldSizes } from '../protocol/fields.js';
import { fingerprintHash } from './fingerprint.js';
import { KEYSPACE_RECORD_SIZE, LEGACY_SIZES } from './legacy-format.js';
import type { ProblemLog } from './problems.js';
import { CHUNK_RECORDS, readChunks } from './read-chunks.js';
import type { LegacyKeyspaceFile } from './scan.js';

/** Node's Buffer#latin1Slice: toString('latin1') without its argument handling (as increment-batch.ts; once per record). */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

export interface KeyspaceRecord {
  /** Record number in the file (0-based): batches and resume points are counted in these. */
  index: number;
  count: bigint;
  /** The key's bytes: a view into the read buffer, valid until the next chunk is asked for (unless read `fresh`). */
  key: Buffer;
}

export interface KeyspaceFileTotals {
  /** Whole records in the file. */
  records: number;
  /** Records yielded: valid, fitting, first of their key. */
  keys: number;
  /** Sum of the yielded records' counts (exact). */
  sum: bigint;
  /**
   * latin1 strings of the yielded keys -> their ordinal among the yielded
   * records (for duplicate detection, and the importer's log overlap).
   */
  seen: Map<string, number>;
  /** Set when the reader finished: sha256 fingerprint of name, size and the content read. */
  fingerprint?: string;
}

/** Relative path of a keyspace file as bytes: `<name>/keyspace`, the fingerprint's name part. */
export function keyspaceFileRelativePath(file: LegacyKeyspaceFile): Buffer {
  return Buffer.concat([file.name, Buffer.from('/keyspace')]);
}

/**
 * Read `file` and yield its importable records, one array per chunk of about
 * 1 MiB. `totals` is filled in as the file is read. `fresh`: every chunk is
 * a new Buffer, so the records' keys stay valid (the bulk import keeps them).
 */
export async function* readKeyspaceFile(
  file: LegacyKeyspaceFile,
  target: FieldSizes,
  problems: ProblemLog,
  totals: KeyspaceFileTotals,
  fresh = false,
): AsyncGenerator<KeyspaceRecord[]> {
  const hash = fingerprintHash(keyspaceFileRelativePath(file), file.size);
  if (file.size === 0) problems.add({ kind: 'empty-file', source: file.label, detail: 'empty keyspace file; nothing to import' });
  const keyField = LEGACY_SIZES.keySize;
  let offset = 0;
  let index = 0;
  let previous: bigint | undefined;
  let outOfOrder = 0;
  let firstOutOfOrder = 0;
  // Whole records a read, no bigger than the file needs: a buffer of ~1 MiB per small file (and
  // two such files per keyspace imported with `fresh` chunks) made thousands of small keyspaces
  // spend a third of their time collecting garbage.
  const chunkRecords = Math.max(1, Math.min(CHUNK_RECORDS, Math.ceil(file.size / KEYSPACE_RECORD_SIZE)));
  for await (const chunk of readChunks(file.path, chunkRecords * KEYSPACE_RECORD_SIZE, file.label, fresh)) {
    hash.update(chunk);
    const records: KeyspaceRecord[] = [];
    let pos = 0;
    for (; pos + KEYSPACE_RECORD_SIZE <= chunk.length; pos += KEYSPACE_RECORD_SIZE, index++) {
      const count = chunk.readBigInt64LE(pos);
      const keyLen = fieldNameLength(chunk, pos + 8, keyField);
      if (keyLen < 0) {
        problems.add({ kind: 'invalid-key', source: file.label, offset: offset + pos, detail: `record ${index}: empty key or bytes after the NUL padding; skipped` });
        continue;
      }
      if (keyLen > target.keySize) {
        problems.add({ kind: 'key-too-long', source: file.label, offset: offset + pos, detail: `record ${index}: key of ${keyLen} bytes does not fit the target's ${target.keySize}; skipped` });
        continue;
      }
      const id = (chunk as Latin1Buffer).latin1Slice(pos + 8, pos + 8 + keyLen);
      if (totals.seen.has(id)) {
        problems.add({ kind: 'duplicate-key', source: file.label, offset: offset + pos, detail: `record ${index}: key seen before in this file; the first record is kept (count ${count} dropped)` });
        continue;
      }
      totals.seen.set(id, totals.keys);
      if (previous !== undefined && count > previous) {
        if (outOfOrder === 0) firstOutOfOrder = offset + pos;
        outOfOrder++;
      }
      previous = count;
      totals.keys++;
      totals.sum += count;
      records.push({ index, count, key: chunk.subarray(pos + 8, pos + 8 + keyLen) });
    }
    totals.records = index;
    if (pos < chunk.length) {
      problems.add({ kind: 'partial-record', source: file.label, offset: offset + pos, detail: `trailing partial record of ${chunk.length - pos} bytes ignored` });
    }
    offset += chunk.length;
    yield records;
  }
  if (outOfOrder > 0) {
    problems.add({ kind: 'out-of-order', source: file.label, offset: firstOutOfOrder, detail: `${outOfOrder} records out of count-descending order (harmless)` });
  }
  totals.fingerprint = hash.digest('hex');
}

export function newTotals(): KeyspaceFileTotals {
  return { records: 0, keys: 0, sum: 0n, seen: new Map() };
}
