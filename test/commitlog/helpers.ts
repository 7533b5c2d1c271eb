// Shared helpers of the commit-log tests: temp directories, batches of
// entries, and logs built byte by byte for the reader tests.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  HEADER_SIZE,
  LOG_FORMAT_VERSION,
  RECORD_BATCH,
  RECORD_HEADER_SIZE,
  encodeEntry,
  encodeHeader,
  encodeSealRecord,
  entrySize,
  forEachEntry,
  writeRecordHeader,
} from '../../lib/commitlog/format.js';
import { FieldSizes } from '../../lib/protocol/fields.js';

export const sizes: FieldSizes = { keyspaceSize: 16, keySize: 16 };

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'countd-test-commitlog-'));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export interface TestEntry {
  increment: bigint;
  keyspace: string;
  key: string;
}

/** Encode entries into one batch buffer. */
export function batch(entries: TestEntry[]): Buffer {
  let n = 0;
  for (const e of entries) n += entrySize(Buffer.byteLength(e.keyspace), Buffer.byteLength(e.key));
  const buf = Buffer.alloc(n);
  let off = 0;
  for (const e of entries) off = encodeEntry(buf, off, e.increment, Buffer.from(e.keyspace), Buffer.from(e.key));
  return buf;
}

/** `count` entries named after `tag`: keyspace "ks", keys "<tag>-<i>", increments i + 1. */
export function taggedBatch(tag: string, count: number): Buffer {
  return batch(Array.from({ length: count }, (_, i) => ({ increment: BigInt(i + 1), keyspace: 'ks', key: `${tag}-${i}` })));
}

export function decode(payload: Buffer): TestEntry[] {
  const out: TestEntry[] = [];
  forEachEntry(payload, (increment, ks, key) => out.push({ increment, keyspace: ks.toString(), key: key.toString() }));
  return out;
}

/** Invert one byte of a file in place (damage, as a failing disk would). */
export function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, offset);
    b[0] = b[0]! ^ 0xff;
    fs.writeSync(fd, b, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

export function modeOf(file: string): number {
  return fs.statSync(file).mode & 0o7777;
}

export interface BuiltRecord {
  offset: number;
  size: number;
  payload: Buffer;
  seq: bigint;
  count: number;
}

export interface BuiltLog {
  buf: Buffer;
  records: BuiltRecord[];
  /** Offset of the SEAL record, or -1. */
  sealOffset: number;
  end: number;
}

/**
 * A log built the way the writer builds one: header then BATCH records of
 * `counts[i]` entries each (tag `${tag}${i}`), then a SEAL if asked.
 * `seqs` overrides each record's seq (to build holes).
 */
export function buildLog(options: {
  size?: number;
  generation?: bigint;
  streamId?: bigint;
  firstSeq?: bigint;
  counts: number[];
  seal?: boolean;
  tag?: string;
  seqs?: bigint[];
  into?: Buffer;
}): BuiltLog {
  const buf = options.into ?? Buffer.alloc(options.size ?? 16384);
  const generation = options.generation ?? 0x1122334455667788n;
  const firstSeq = options.firstSeq ?? 0n;
  encodeHeader(
    { version: LOG_FORMAT_VERSION, keyspaceSize: sizes.keyspaceSize, keySize: sizes.keySize, generation, streamId: options.streamId ?? 7n, firstSeq, openedAt: 1_700_000_000_000 },
    buf,
  );
  let off = HEADER_SIZE;
  let seq = firstSeq;
  const records: BuiltRecord[] = [];
  let frames = 0;
  options.counts.forEach((count, i) => {
    const payload = taggedBatch(`${options.tag ?? 'r'}${i}`, count);
    const recSeq = options.seqs?.[i] ?? seq;
    const header = Buffer.alloc(RECORD_HEADER_SIZE);
    writeRecordHeader(header, RECORD_BATCH, generation, recSeq, count, payload);
    header.copy(buf, off);
    payload.copy(buf, off + RECORD_HEADER_SIZE);
    records.push({ offset: off, size: RECORD_HEADER_SIZE + payload.length, payload, seq: recSeq, count });
    off += RECORD_HEADER_SIZE + payload.length;
    seq = recSeq + BigInt(count);
    frames += count;
  });
  let sealOffset = -1;
  if (options.seal) {
    sealOffset = off;
    off += encodeSealRecord(generation, seq, frames, records.length).copy(buf, off);
  }
  return { buf, records, sealOffset, end: off };
}
