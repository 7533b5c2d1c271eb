// The bytes of a partition snapshot in the JetStream Object Store, specified
// in docs/cluster-snapshot-format.md (byte grammar, constants, worked
// example): a header with the partition's applied stream position, then
// records (a keyspace, its entries, the writers' dedupe watermarks), then an
// end record with the totals and a CRC-32 of every byte before it. The
// encoder takes a Store#exportKeyspaces stream (one LevelDB snapshot); the
// decoder reports a damaged snapshot with what it found, and drops it whole.

import { crc32 } from 'node:zlib';
import { CountdError, ErrorCodes } from '../errors.js';
import type { ExportItem } from '../store/store.js';

export const MAGIC = Buffer.from('CDSNAP', 'latin1');
export const VERSION = 1;
export const HEADER_SIZE = 40;
export const RECORD_HEADER_SIZE = 5;
export const KIND_KEYSPACE = 1;
export const KIND_ENTRIES = 2;
export const KIND_WRITER = 3;
export const KIND_END = 0xff;
export const END_BODY_SIZE = 20;
export const SETTINGS_SIZE = 16;
/** Encoded output is cut into pieces of about this size (an ENTRIES record holds at most this much). */
const CHUNK_BYTES = 64 * 1024;

export interface SnapshotHeader {
  partition: number;
  /** Stream sequence the snapshot's state is applied up to (inclusive). */
  position: number;
  /** Lease epoch (KV revision) under which it was applied. */
  epoch: number;
  /** ms since the epoch, when it was taken. */
  takenAt: number;
}

export interface SnapshotKeyspace {
  name: Buffer;
  settings: Buffer | undefined;
  keys: Buffer[];
  counts: bigint[];
}

export interface Snapshot extends SnapshotHeader {
  keyspaces: SnapshotKeyspace[];
  writers: Array<{ writer: string; seq: number }>;
}

function corrupt(what: string, bytes: number): CountdError {
  return new CountdError(ErrorCodes.CORRUPTION, `partition snapshot: ${what}; the whole snapshot (${bytes} bytes) is dropped`);
}

export function encodeHeader(h: SnapshotHeader): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(b, 0);
  b[6] = VERSION;
  b.writeUInt16LE(h.partition, 8);
  b.writeBigUInt64LE(BigInt(h.position), 16);
  b.writeBigUInt64LE(BigInt(h.epoch), 24);
  b.writeBigUInt64LE(BigInt(h.takenAt), 32);
  return b;
}

function record(kind: number, body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(RECORD_HEADER_SIZE + body.length);
  b[0] = kind;
  b.writeUInt32LE(body.length, 1);
  body.copy(b, RECORD_HEADER_SIZE);
  return b;
}

export function keyspaceRecord(name: Buffer, settings: Buffer | undefined): Buffer {
  const s = settings ?? Buffer.alloc(0);
  return record(KIND_KEYSPACE, Buffer.concat([Buffer.from([name.length]), name, Buffer.from([s.length]), s]));
}

export function entryBytes(key: Buffer, count: bigint): Buffer {
  const b = Buffer.allocUnsafe(1 + key.length + 8);
  b[0] = key.length;
  key.copy(b, 1);
  b.writeBigInt64LE(count, 1 + key.length);
  return b;
}

export function writerRecord(writer: string, seq: number): Buffer {
  const id = Buffer.from(writer, 'latin1');
  const b = Buffer.allocUnsafe(8 + id.length);
  b.writeBigUInt64LE(BigInt(seq), 0);
  id.copy(b, 8);
  return record(KIND_WRITER, b);
}

/**
 * The snapshot's bytes, in pieces: `header` (position and epoch, read from
 * the same export), the writers, then each keyspace and its entries, then
 * the end record.
 */
export async function* encodeSnapshot(header: SnapshotHeader, writers: Array<{ writer: string; seq: number }>, items: AsyncIterable<ExportItem>): AsyncGenerator<Buffer> {
  let crc = 0;
  let keyspaces = 0;
  let entries = 0;
  const out = (b: Buffer): Buffer => ((crc = crc32(b, crc)), b);
  yield out(encodeHeader(header));
  for (const w of writers) yield out(writerRecord(w.writer, w.seq));
  for await (const item of items) {
    if (item.type === 'keyspace') {
      keyspaces++;
      yield out(keyspaceRecord(item.name, item.settings));
    } else if (item.type === 'entries') {
      let parts: Buffer[] = [];
      let size = 0;
      for (let i = 0; i < item.keys.length; i++) {
        const e = entryBytes(item.keys[i]!, item.counts[i]!);
        parts.push(e);
        size += e.length;
        entries++;
        if (size >= CHUNK_BYTES) {
          yield out(record(KIND_ENTRIES, Buffer.concat(parts, size)));
          parts = [];
          size = 0;
        }
      }
      if (size > 0) yield out(record(KIND_ENTRIES, Buffer.concat(parts, size)));
    }
  }
  const end = Buffer.allocUnsafe(END_BODY_SIZE);
  end.writeUInt32LE(keyspaces, 0);
  end.writeBigUInt64LE(BigInt(entries), 4);
  end.writeUInt32LE(writers.length, 12);
  const head = Buffer.allocUnsafe(RECORD_HEADER_SIZE);
  head[0] = KIND_END;
  head.writeUInt32LE(END_BODY_SIZE, 1);
  crc = crc32(head, crc);
  crc = crc32(end.subarray(0, 16), crc);
  end.writeUInt32LE(crc, 16);
  yield Buffer.concat([head, end]);
}

/** Decode a whole snapshot (the restore needs it all for its one atomic apply). */
export function decodeSnapshot(bytes: Buffer): Snapshot {
  const total = bytes.length;
  if (total < HEADER_SIZE) throw corrupt(`${total} bytes, shorter than the ${HEADER_SIZE}-byte header`, total);
  if (!bytes.subarray(0, 6).equals(MAGIC)) throw corrupt('bad magic (not a countd partition snapshot)', total);
  if (bytes[6] !== VERSION) throw corrupt(`version ${bytes[6]}, this countd reads version ${VERSION}`, total);
  const snap: Snapshot = {
    partition: bytes.readUInt16LE(8),
    position: Number(bytes.readBigUInt64LE(16)),
    epoch: Number(bytes.readBigUInt64LE(24)),
    takenAt: Number(bytes.readBigUInt64LE(32)),
    keyspaces: [],
    writers: [],
  };
  let off = HEADER_SIZE;
  let entries = 0;
  for (;;) {
    if (off + RECORD_HEADER_SIZE > total) throw corrupt(`truncated at byte ${off}: no end record`, total);
    const kind = bytes[off]!;
    const len = bytes.readUInt32LE(off + 1);
    const body = off + RECORD_HEADER_SIZE;
    if (body + len > total) throw corrupt(`record at byte ${off} runs past the end (length ${len})`, total);
    if (kind === KIND_END) {
      if (len !== END_BODY_SIZE || body + len !== total) throw corrupt(`end record at byte ${off} of length ${len}, or bytes after it`, total);
      const crc = crc32(bytes.subarray(0, body + 16));
      if (crc !== bytes.readUInt32LE(body + 16)) throw corrupt('CRC-32 mismatch', total);
      const counted = { keyspaces: bytes.readUInt32LE(body), entries: Number(bytes.readBigUInt64LE(body + 4)), writers: bytes.readUInt32LE(body + 12) };
      if (counted.keyspaces !== snap.keyspaces.length || counted.entries !== entries || counted.writers !== snap.writers.length) {
        throw corrupt(`totals ${JSON.stringify(counted)} differ from the records read`, total);
      }
      return snap;
    }
    entries += decodeRecord(snap, kind, bytes.subarray(body, body + len), off, total);
    off = body + len;
  }
}

/** Decode one record into `snap`; returns the entries it held. */
function decodeRecord(snap: Snapshot, kind: number, body: Buffer, at: number, total: number): number {
  if (kind === KIND_WRITER) {
    if (body.length < 9) throw corrupt(`writer record at byte ${at} of ${body.length} bytes`, total);
    snap.writers.push({ seq: Number(body.readBigUInt64LE(0)), writer: body.subarray(8).toString('latin1') });
    return 0;
  }
  if (kind === KIND_KEYSPACE) {
    const n = body[0] ?? 0;
    const s = body[1 + n];
    if (n === 0 || (s !== 0 && s !== SETTINGS_SIZE) || body.length !== 2 + n + (s ?? 0)) throw corrupt(`keyspace record at byte ${at} malformed`, total);
    snap.keyspaces.push({ name: Buffer.from(body.subarray(1, 1 + n)), settings: s === 0 ? undefined : Buffer.from(body.subarray(2 + n)), keys: [], counts: [] });
    return 0;
  }
  if (kind === KIND_ENTRIES) {
    const ks = snap.keyspaces.at(-1);
    if (!ks) throw corrupt(`entries record at byte ${at} before any keyspace record`, total);
    let n = 0;
    for (let o = 0; o < body.length; ) {
      const kl = body[o]!;
      if (kl === 0 || o + 1 + kl + 8 > body.length) throw corrupt(`entry at byte ${at + RECORD_HEADER_SIZE + o} malformed`, total);
      ks.keys.push(Buffer.from(body.subarray(o + 1, o + 1 + kl)));
      ks.counts.push(body.readBigInt64LE(o + 1 + kl));
      o += 1 + kl + 8;
      n++;
    }
    return n;
  }
  throw corrupt(`unknown record kind ${kind} at byte ${at}`, total);
}
