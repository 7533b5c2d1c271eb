// The byte format of countd's commit logs: file header, records, entries.
// Specified in docs/commit-log-format.md; keep the two in step.
//
//   log    := header(4096) record* tail
//   record := crc u32 | length u32 | type u8 | 0 0 0 | generation u64 | seq u64 | count u32 | payload
//   entry  := increment i64 | pair
//   pair   := ksLen u16 | keyLen u16 | keyspace | key      (lib/protocol/pair-key.ts)
//
// All integers are little-endian. The hot paths (writeEntryFromFrame on the
// write side, forEachEntry on the worker side) allocate nothing per entry
// beyond the subarray views handed to the callback.

import { crc32 } from 'node:zlib';
import { CountdError, ErrorCodes } from '../errors.js';
import { FieldSizes } from '../protocol/fields.js';
import { createWindow } from '../protocol/window-settings.js';
import { PAIR_LENGTHS_SIZE, pairKeyLength, pairKeyspaceLength, writePairLengths } from '../protocol/pair-key.js';
import { readU64LE, writeI64LE, writeU64LE } from '../util/int64.js';

// ---- constants (docs/commit-log-format.md, "Constants") --------------------

/** "CNTDCLOG": the first 8 bytes of every used log. */
export const LOG_MAGIC = Buffer.from('CNTDCLOG', 'ascii');
export const LOG_FORMAT_VERSION = 1;
/** The header occupies the first block; records start here. */
export const HEADER_SIZE = 4096;
/** Bytes of the header covered by its CRC (the CRC itself follows them). */
export const HEADER_CRC_OFFSET = 56;
export const HEADER_USED_SIZE = 60;

export const RECORD_HEADER_SIZE = 32;
export const RECORD_BATCH = 1;
export const RECORD_SEAL = 2;
export const SEAL_PAYLOAD_SIZE = 16;
export const SEAL_RECORD_SIZE = RECORD_HEADER_SIZE + SEAL_PAYLOAD_SIZE;

/** increment (8) + the pair key's two lengths (4). */
export const ENTRY_FIXED_SIZE = 8 + PAIR_LENGTHS_SIZE;
/** The smallest entry: one-byte keyspace, one-byte key. */
export const MIN_ENTRY_SIZE = ENTRY_FIXED_SIZE + 2;
export const MAX_RECORD_PAYLOAD = 0xffff_ffff;

/** Default size of a preallocated log: 2 MiB. */
export const DEFAULT_LOG_SIZE = 2 * 1024 * 1024;

// ---- file header ------------------------------------------------------------

export interface LogHeader {
  version: number;
  keyspaceSize: number;
  keySize: number;
  /** Random, unique per use of the file: tells this use's records from an earlier use's. */
  generation: bigint;
  /** The writer process (stream) that filled this use of the file. */
  streamId: bigint;
  /** Sequence number of the first frame written in this use. */
  firstSeq: bigint;
  /** When the writer started this use (ms since the epoch); orders dirty logs oldest first. */
  openedAt: number;
}

/** Encode a header into the first HEADER_SIZE bytes of `target` (the rest of the block is zeroed). */
export function encodeHeader(header: LogHeader, target: Buffer = Buffer.alloc(HEADER_SIZE)): Buffer {
  target.fill(0, 0, HEADER_SIZE);
  LOG_MAGIC.copy(target, 0);
  target.writeUInt16LE(header.version, 8);
  target.writeUInt16LE(0, 10);
  target.writeUInt32LE(header.keyspaceSize, 12);
  target.writeUInt32LE(header.keySize, 16);
  target.writeUInt32LE(0, 20);
  target.writeBigUInt64LE(header.generation, 24);
  target.writeBigUInt64LE(header.streamId, 32);
  target.writeBigUInt64LE(header.firstSeq, 40);
  target.writeBigUInt64LE(BigInt(header.openedAt), 48);
  target.writeUInt32LE(crc32(target.subarray(0, HEADER_CRC_OFFSET)), HEADER_CRC_OFFSET);
  return target;
}

export type HeaderResult =
  | { kind: 'ok'; header: LogHeader }
  /** Never used since preallocation: the first block is all zero. */
  | { kind: 'empty' }
  | { kind: 'bad'; reason: string };

export function decodeHeader(buf: Buffer): HeaderResult {
  if (buf.length < HEADER_SIZE) return { kind: 'bad', reason: `file of ${buf.length} bytes is shorter than the ${HEADER_SIZE}-byte header` };
  if (isZero(buf, 0, HEADER_USED_SIZE)) return { kind: 'empty' };
  if (!buf.subarray(0, 8).equals(LOG_MAGIC)) return { kind: 'bad', reason: 'bad magic: not a countd commit log' };
  if (crc32(buf.subarray(0, HEADER_CRC_OFFSET)) !== buf.readUInt32LE(HEADER_CRC_OFFSET)) return { kind: 'bad', reason: 'header checksum mismatch' };
  const version = buf.readUInt16LE(8);
  if (version !== LOG_FORMAT_VERSION) return { kind: 'bad', reason: `unsupported log format version ${version}` };
  return {
    kind: 'ok',
    header: {
      version,
      keyspaceSize: buf.readUInt32LE(12),
      keySize: buf.readUInt32LE(16),
      generation: buf.readBigUInt64LE(24),
      streamId: buf.readBigUInt64LE(32),
      firstSeq: buf.readBigUInt64LE(40),
      openedAt: Number(buf.readBigUInt64LE(48)),
    },
  };
}

// ---- records ----------------------------------------------------------------

/**
 * Fill `target[0, RECORD_HEADER_SIZE)` with a record header for `payload`
 * (the CRC covers the header from byte 4 on, then the payload). The writer
 * keeps one such buffer and sends it with the payload in one pwritev.
 */
export function writeRecordHeader(target: Buffer, type: number, generation: bigint, seq: bigint, count: number, payload: Buffer): void {
  target.writeUInt32LE(payload.length, 4);
  target[8] = type;
  target[9] = 0;
  target[10] = 0;
  target[11] = 0;
  target.writeBigUInt64LE(generation, 12);
  target.writeBigUInt64LE(seq, 20);
  target.writeUInt32LE(count, 28);
  target.writeUInt32LE(crc32(payload, crc32(target.subarray(4, RECORD_HEADER_SIZE))), 0);
}

/** Record flag (byte 9): the payload starts with `writtenAt`, u64 LE, ms since the epoch (section 3b). */
export const RECORD_FLAG_WRITTEN_AT = 0x01;
export const WRITTEN_AT_SIZE = 8;
/** A record header followed by its writtenAt: what the writer puts before the caller's entries. */
export const TIMED_RECORD_HEADER_SIZE = RECORD_HEADER_SIZE + WRITTEN_AT_SIZE;

/**
 * Fill `target[0, TIMED_RECORD_HEADER_SIZE)` with a record header of flag
 * RECORD_FLAG_WRITTEN_AT and the `writtenAt` its payload starts with, for
 * `entries` (the rest of the payload): the record's length counts both.
 * The worker puts the record's windowed writes into the period holding
 * writtenAt (lib/store/windows.ts), so a replay lands where the first apply did.
 */
export function writeTimedRecordHeader(target: Buffer, type: number, generation: bigint, seq: bigint, count: number, entries: Buffer, writtenAt: number): void {
  target.writeUInt32LE(WRITTEN_AT_SIZE + entries.length, 4);
  target[8] = type;
  target[9] = RECORD_FLAG_WRITTEN_AT;
  target[10] = 0;
  target[11] = 0;
  writeU64LE(target, 12, generation);
  writeU64LE(target, 20, seq);
  target.writeUInt32LE(count, 28);
  // writtenAt is a whole number of ms below 2^53: two 32-bit halves, no BigInt.
  if (!Number.isSafeInteger(writtenAt) || writtenAt < 0) throw new RangeError(`writtenAt must be a whole number of ms since the epoch, got ${writtenAt}`);
  target.writeUInt32LE(writtenAt % 0x1_0000_0000, RECORD_HEADER_SIZE);
  target.writeUInt32LE(Math.floor(writtenAt / 0x1_0000_0000), RECORD_HEADER_SIZE + 4);
  target.writeUInt32LE(crc32(entries, crc32(target.subarray(4, TIMED_RECORD_HEADER_SIZE))), 0);
}

/** A whole SEAL record: `frames` frames in `records` BATCH records were written before it; `nextSeq` follows the last. */
export function encodeSealRecord(generation: bigint, nextSeq: bigint, frames: number, records: number): Buffer {
  const buf = Buffer.alloc(SEAL_RECORD_SIZE);
  const payload = buf.subarray(RECORD_HEADER_SIZE);
  payload.writeBigUInt64LE(BigInt(frames), 0);
  payload.writeUInt32LE(records, 8);
  writeRecordHeader(buf, RECORD_SEAL, generation, nextSeq, 0, payload);
  return buf;
}

export interface SealPayload {
  frames: number;
  records: number;
}

export function decodeSealPayload(payload: Buffer): SealPayload {
  return { frames: Number(payload.readBigUInt64LE(0)), records: payload.readUInt32LE(8) };
}

// ---- entries ----------------------------------------------------------------

/** Bytes of one encoded entry. */
export function entrySize(ksLen: number, keyLen: number): number {
  return ENTRY_FIXED_SIZE + ksLen + keyLen;
}

/** The largest entry the field sizes allow. */
export function maxEntrySize(sizes: FieldSizes): number {
  return entrySize(sizes.keyspaceSize, sizes.keySize);
}

/**
 * Copy one already-validated write frame (docs/protocol.md section 1) at
 * frame[frameOffset] into entry form at target[offset]; ksLen and keyLen are
 * the name lengths validateFrame() found. Returns the offset after the entry.
 * Allocation-free and unchecked: the server's hot path.
 */
export function writeEntryFromFrame(
  target: Buffer,
  offset: number,
  frame: Buffer,
  frameOffset: number,
  ksLen: number,
  keyLen: number,
  sizes: FieldSizes,
): number {
  const ks = frameOffset + 8;
  return writeEntryCopy(target, offset, frame, frameOffset, frame, ks, ksLen, ks + sizes.keyspaceSize, keyLen);
}

/**
 * Encode one plain entry at target[offset] from the value's 8 bytes (a
 * little-endian i64) at valueSrc[valueOff] and the names held in `src` at
 * ksOff / keyOff; returns the offset after it. Allocation-free and
 * unchecked: the server's hot path.
 */
export function writeEntryCopy(target: Buffer, offset: number, valueSrc: Buffer, valueOff: number, src: Buffer, ksOff: number, ksLen: number, keyOff: number, keyLen: number): number {
  for (let i = 0; i < 8; i++) target[offset + i] = valueSrc[valueOff + i]!;
  writePairLengths(target, offset + 8, ksLen, keyLen);
  const p = offset + ENTRY_FIXED_SIZE;
  copyName(src, ksOff, ksLen, target, p);
  copyName(src, keyOff, keyLen, target, p + ksLen);
  return p + ksLen + keyLen;
}

/** Copy the `len` bytes of a name at src[from] to target[at]: names are short as a rule, and up to 64 bytes a plain loop beats the native call of Buffer.copy. (Fixed-size fields keep their own loops of constant length, which V8 compiles tighter: measured with bench:idem.) */
function copyName(src: Buffer, from: number, len: number, target: Buffer, at: number): void {
  if (len <= 64) for (let i = 0; i < len; i++) target[at + i] = src[from + i]!;
  else src.copy(target, at, from, from + len);
}

/** Encode one entry at target[offset]; returns the offset after it. Names must be non-empty and at most 65535 bytes. */
export function encodeEntry(target: Buffer, offset: number, increment: bigint, keyspace: Buffer, key: Buffer): number {
  target.writeBigInt64LE(increment, offset);
  writePairLengths(target, offset + 8, keyspace.length, key.length);
  let p = offset + ENTRY_FIXED_SIZE;
  p += keyspace.copy(target, p);
  p += key.copy(target, p);
  return p;
}

function corruptEntry(offset: number, why: string): CountdError {
  return new CountdError(ErrorCodes.CORRUPTION, `commit log entry at payload offset ${offset}: ${why}`);
}

/**
 * Call fn for every entry of a BATCH payload, in order; returns the number of
 * entries. keyspace and key are views into `payload` (copy them to keep
 * them). Throws COUNTD_CORRUPTION if the payload is not a whole number of
 * well-formed entries (a CRC-valid record never is, unless written wrong).
 */
export function forEachEntry(payload: Buffer, fn: (increment: bigint, keyspace: Buffer, key: Buffer) => void): number {
  // DataView.getBigInt64 is about 1.5x faster than Buffer.readBigInt64LE here.
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return forEachEntryAt(payload, (p, ksLen, keyLen) => {
    const ks = p + ENTRY_FIXED_SIZE;
    fn(view.getBigInt64(p, true), payload.subarray(ks, ks + ksLen), payload.subarray(ks + ksLen, ks + ksLen + keyLen));
  });
}

/**
 * forEachEntry without decoding: fn gets each entry's offset in `payload`
 * (its increment field; the names follow the fixed part) and the two name
 * lengths, so a caller that reads the bytes in place allocates nothing per
 * entry (the summing thread: lib/roles/work/pair-sums.ts). Same checks,
 * same errors.
 */
export function forEachEntryAt(payload: Buffer, fn: (offset: number, ksLen: number, keyLen: number) => void): number {
  const end = payload.length;
  let p = 0;
  let n = 0;
  while (p < end) {
    if (end - p < ENTRY_FIXED_SIZE) throw corruptEntry(p, 'truncated entry header');
    const ksLen = pairKeyspaceLength(payload, p + 8);
    const keyLen = pairKeyLength(payload, p + 8);
    const next = p + ENTRY_FIXED_SIZE + ksLen + keyLen;
    if (ksLen === 0 || keyLen === 0) throw corruptEntry(p, 'empty name');
    if (next > end) throw corruptEntry(p, 'entry runs past the end of the record');
    fn(p, ksLen, keyLen);
    p = next;
    n++;
  }
  return n;
}

/**
 * Count the entries of a payload without decoding them, checking structure
 * and that no name exceeds the field sizes. Returns -1 if malformed.
 */
export function countEntries(payload: Buffer, sizes: FieldSizes): number {
  const end = payload.length;
  let p = 0;
  let n = 0;
  while (p < end) {
    if (end - p < ENTRY_FIXED_SIZE) return -1;
    const ksLen = pairKeyspaceLength(payload, p + 8);
    const keyLen = pairKeyLength(payload, p + 8);
    if (ksLen === 0 || keyLen === 0 || ksLen > sizes.keyspaceSize || keyLen > sizes.keySize) return -1;
    p += ENTRY_FIXED_SIZE + ksLen + keyLen;
    n++;
  }
  return p === end ? n : -1;
}

export function isZero(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

// ---- OPS records: typed operations (docs/commit-log-format.md, "OPS records") ----
//
//   opEntry := op u8 | value i64 | pair        (pair: ksLen u16 | keyLen u16 | keyspace | key)
//
// An OPS record holds the frames of a batch in which at least one frame is
// not a plain increment (set, delete); the batch's increments are op entries
// too, so the record keeps the order in which the frames were received.

export const RECORD_OPS = 3;
export const OP_INCREMENT = 1;
export const OP_SET = 2;
export const OP_DELETE_KEY = 3;
export const OP_DELETE_KEYSPACE = 4;
/** Create (or re-create) a keyspace: value = its operator (lib/store/combine.ts Operator, 1 … 4), no key. */
export const OP_CREATE_KEYSPACE = 5;
/** Most settings bytes a create entry carries as its key (settings bytes 1 … 15). */
export const CREATE_SETTINGS_SIZE = 15;
/** op (1) + value (8) + the pair key's two lengths (4). */
export const OP_ENTRY_FIXED_SIZE = 1 + 8 + PAIR_LENGTHS_SIZE;
/**
 * Op-code bit of an op entry written for an idempotent producer (issue 16,
 * docs/commit-log-format.md "Producer trailer"): the names are followed by
 * producer u64 | epoch u32 | sequence u64. The op is the code without it.
 */
export const OP_PRODUCER_BIT = 0x80;
export const PRODUCER_TRAILER_SIZE = 8 + 4 + 8;
/**
 * Op-code bit of a producer entry that continues the producer run of the
 * entry before it in the same record (docs/commit-log-format.md "Producer
 * trailer"): same producer and epoch, sequence + 1, and no trailer. Most of a
 * producer's frames sit together with consecutive sequences: their entries
 * take about a plain entry's bytes instead of 1.8 times as many.
 */
export const OP_CONTINUES_BIT = 0x40;
/** The op-code bits that are not the op. */
const OP_FLAG_BITS = OP_PRODUCER_BIT | OP_CONTINUES_BIT;

/** Ops on a whole keyspace: their entries have no key. */
export function isKeyspaceOp(op: number): boolean {
  return op === OP_DELETE_KEYSPACE || op === OP_CREATE_KEYSPACE;
}

/** Bytes of one encoded op entry (keyLen 0 for a keyspace op). */
export function opEntrySize(ksLen: number, keyLen: number): number {
  return OP_ENTRY_FIXED_SIZE + ksLen + keyLen;
}

/**
 * Encode one op entry at target[offset] from names held in `src` at
 * ksOff / keyOff (a frame, or a buffer of names); returns the offset after it.
 * Allocation-free and unchecked: the write server's path.
 */
export function writeOpEntry(target: Buffer, offset: number, op: number, value: bigint, src: Buffer, ksOff: number, ksLen: number, keyOff: number, keyLen: number): number {
  target[offset] = op;
  writeI64LE(target, offset + 1, value);
  return writeOpNames(target, offset, src, ksOff, ksLen, keyOff, keyLen);
}

/** The names' lengths and bytes of the op entry at target[offset]; returns the offset after it. */
function writeOpNames(target: Buffer, offset: number, src: Buffer, ksOff: number, ksLen: number, keyOff: number, keyLen: number): number {
  writePairLengths(target, offset + 9, ksLen, keyLen);
  const p = offset + OP_ENTRY_FIXED_SIZE;
  copyName(src, ksOff, ksLen, target, p);
  copyName(src, keyOff, keyLen, target, p + ksLen);
  return p + ksLen + keyLen;
}

/**
 * writeOpEntry with the value's 8 bytes copied from `valueSrc` at
 * `valueOff` (an op frame's little-endian i64, docs/write-protocol-extensions.md):
 * the same bytes without making a BigInt per frame.
 */
export function writeOpEntryCopy(target: Buffer, offset: number, op: number, valueSrc: Buffer, valueOff: number, src: Buffer, ksOff: number, ksLen: number, keyOff: number, keyLen: number): number {
  target[offset] = op;
  for (let i = 0; i < 8; i++) target[offset + 1 + i] = valueSrc[valueOff + i]!;
  return writeOpNames(target, offset, src, ksOff, ksLen, keyOff, keyLen);
}

/**
 * writeProducerTrailer with the fields copied from a version-2 op frame's
 * producer fields at frame[fields] (producer u64 | epoch u32 | reserved u32 |
 * sequence u64: bytes 16 … 39 of the frame): the same bytes, no BigInt.
 */
export function copyProducerTrailer(target: Buffer, entry: number, end: number, frame: Buffer, fields: number): number {
  target[entry] = target[entry]! | OP_PRODUCER_BIT;
  for (let i = 0; i < 12; i++) target[end + i] = frame[fields + i]!;
  for (let i = 0; i < 8; i++) target[end + 12 + i] = frame[fields + 16 + i]!;
  return end + PRODUCER_TRAILER_SIZE;
}

/**
 * Mark the op entry at target[entry] (written by writeOpEntry, ending at
 * `end`) as a producer's and append its trailer; returns the offset after it.
 */
export function writeProducerTrailer(target: Buffer, entry: number, end: number, producer: bigint, epoch: number, sequence: bigint): number {
  target[entry] = target[entry]! | OP_PRODUCER_BIT;
  writeU64LE(target, end, producer);
  target.writeUInt32LE(epoch, end + 8);
  writeU64LE(target, end + 12, sequence);
  return end + PRODUCER_TRAILER_SIZE;
}

/**
 * Mark the op entry at target[entry] as continuing the producer run of the
 * entry before it (OP_CONTINUES_BIT): no trailer follows its names.
 */
export function markProducerContinuation(target: Buffer, entry: number): void {
  target[entry] = target[entry]! | OP_CONTINUES_BIT;
}

/** Bytes of the op entry at payload[p] with names of ksLen and keyLen bytes: a producer trailer included. */
function opEntryLength(payload: Buffer, p: number, ksLen: number, keyLen: number): number {
  return OP_ENTRY_FIXED_SIZE + ksLen + keyLen + ((payload[p]! & OP_PRODUCER_BIT) !== 0 ? PRODUCER_TRAILER_SIZE : 0);
}

/**
 * Where a reader of op entries stands in the producer runs of one record:
 * the offset of the trailer of the run the last entry belongs to (-1 when
 * the last entry was no producer's, or there was none), and how many
 * continuations followed that trailer.
 */
interface RunState {
  trailer: number;
  continued: number;
}

/**
 * Step `run` over the op entry at payload[p] (ksLen + keyLen bytes of
 * names); false when the entry is a continuation that continues nothing:
 * first of its record, after an entry of no producer, with the producer bit
 * too, or past sequence 2^64 − 1.
 */
function stepRun(payload: Buffer, p: number, ksLen: number, keyLen: number, run: RunState): boolean {
  const flags = payload[p]! & OP_FLAG_BITS;
  if (flags === 0) {
    run.trailer = -1;
  } else if (flags === OP_PRODUCER_BIT) {
    run.trailer = p + OP_ENTRY_FIXED_SIZE + ksLen + keyLen;
    run.continued = 0;
  } else {
    if (flags !== OP_CONTINUES_BIT || run.trailer < 0) return false;
    // The run's sequence is trailer + continued; one more must stay below 2^64 (count is a u32, so the low half alone can carry).
    if (payload.readUInt32LE(run.trailer + 16) === 0xffff_ffff && payload.readUInt32LE(run.trailer + 12) + run.continued + 1 > 0xffff_ffff) return false;
    run.continued++;
  }
  return true;
}

/**
 * Whether an op entry's fields fit its op: names within the field sizes, a
 * key for every op but the keyspace ops, value 0 for deletes, an operator
 * (1 … 4) for a create, whose "key" is absent or its settings bytes 1 …
 * CREATE_SETTINGS_SIZE: the tie rule, then the window
 * (lib/protocol/window-settings.ts; docs/commit-log-format.md).
 */
function opEntryValid(payload: Buffer, p: number, ksLen: number, keyLen: number, sizes: FieldSizes | undefined): boolean {
  const op = payload[p]! & ~OP_FLAG_BITS;
  if (op < OP_INCREMENT || op > OP_CREATE_KEYSPACE) return false;
  if (op === OP_CREATE_KEYSPACE) {
    if (ksLen === 0 || keyLen > CREATE_SETTINGS_SIZE) return false;
    if (keyLen > 0 && createWindow(payload, p + OP_ENTRY_FIXED_SIZE + ksLen, keyLen) === null) return false;
  } else if (ksLen === 0 || (isKeyspaceOp(op) ? keyLen !== 0 : keyLen === 0)) return false;
  if (sizes !== undefined && (ksLen > sizes.keyspaceSize || (op !== OP_CREATE_KEYSPACE && keyLen > sizes.keySize))) return false;
  if (op < OP_DELETE_KEY) return true; // increments and sets take any value (read without a BigInt: every entry passes here)
  const lo = payload.readUInt32LE(p + 1);
  const hi = payload.readUInt32LE(p + 5);
  if (op === OP_CREATE_KEYSPACE) return hi === 0 && lo >= 1 && lo <= 4;
  return lo === 0 && hi === 0;
}

/**
 * Call fn for every op entry of an OPS payload, in order, with its offset
 * (the op byte; value at +1, pair key at +9) and name lengths; returns the
 * number of entries. A producer's entry also gets `trailer`, the offset of
 * the trailer of its run (producer u64 at +0, epoch u32 at +8, sequence u64
 * at +12), and `continued`, how far its sequence is past that one (0 for the
 * entry that carries the trailer); other entries get -1 and 0. Throws
 * COUNTD_CORRUPTION on a malformed payload.
 */
export function forEachOpAt(payload: Buffer, fn: (offset: number, op: number, ksLen: number, keyLen: number, trailer: number, continued: number) => void): number {
  const end = payload.length;
  const run: RunState = { trailer: -1, continued: 0 };
  let p = 0;
  let n = 0;
  while (p < end) {
    if (end - p < OP_ENTRY_FIXED_SIZE) throw corruptEntry(p, 'truncated op entry header');
    const ksLen = pairKeyspaceLength(payload, p + 9);
    const keyLen = pairKeyLength(payload, p + 9);
    const next = p + opEntryLength(payload, p, ksLen, keyLen);
    if (next > end) throw corruptEntry(p, 'op entry runs past the end of the record');
    if (!opEntryValid(payload, p, ksLen, keyLen, undefined)) throw corruptEntry(p, `malformed op entry (op ${payload[p]})`);
    if (!stepRun(payload, p, ksLen, keyLen, run)) throw corruptEntry(p, `producer continuation without a producer entry before it (op ${payload[p]})`);
    fn(p, payload[p]! & ~OP_FLAG_BITS, ksLen, keyLen, run.trailer, run.trailer < 0 ? 0 : run.continued);
    p = next;
    n++;
  }
  return n;
}

/** A decoded op entry (tools and tests; the worker reads them in place with forEachOpAt). */
export interface OpEntry {
  op: number;
  value: bigint;
  keyspace: Buffer;
  /** Empty for OP_DELETE_KEYSPACE. */
  key: Buffer;
  /** An idempotent producer's entry: its producer trailer. */
  producer?: { producer: bigint; epoch: number; sequence: bigint };
}

/** The producer, epoch and sequence of a producer's entry, from its run's trailer and how far it continued it (forEachOpAt). */
export function producerOfRun(payload: Buffer, trailer: number, continued: number): { producer: bigint; epoch: number; sequence: bigint } {
  return { producer: readU64LE(payload, trailer), epoch: payload.readUInt32LE(trailer + 8), sequence: readU64LE(payload, trailer + 12) + BigInt(continued) };
}

/** Every op entry of an OPS payload, decoded (names are views into `payload`). */
export function decodeOps(payload: Buffer): OpEntry[] {
  const out: OpEntry[] = [];
  forEachOpAt(payload, (p, op, ksLen, keyLen, trailer, continued) => {
    const ks = p + OP_ENTRY_FIXED_SIZE;
    const entry: OpEntry = { op, value: payload.readBigInt64LE(p + 1), keyspace: payload.subarray(ks, ks + ksLen), key: payload.subarray(ks + ksLen, ks + ksLen + keyLen) };
    if (trailer >= 0) entry.producer = producerOfRun(payload, trailer, continued);
    out.push(entry);
  });
  return out;
}

/** countOps's answer for a payload whose first fault is a producer continuation that continues nothing (stepRun). */
export const BROKEN_PRODUCER_RUN = -2;

/** countEntries for an OPS payload: the number of well-formed op entries, or -1 (BROKEN_PRODUCER_RUN: a continuation continues nothing). */
export function countOps(payload: Buffer, sizes: FieldSizes): number {
  const end = payload.length;
  const run: RunState = { trailer: -1, continued: 0 };
  let p = 0;
  let n = 0;
  while (p < end) {
    if (end - p < OP_ENTRY_FIXED_SIZE) return -1;
    const ksLen = pairKeyspaceLength(payload, p + 9);
    const keyLen = pairKeyLength(payload, p + 9);
    const size = opEntryLength(payload, p, ksLen, keyLen);
    if (p + size > end || !opEntryValid(payload, p, ksLen, keyLen, sizes)) return -1;
    if (!stepRun(payload, p, ksLen, keyLen, run)) return BROKEN_PRODUCER_RUN;
    p += size;
    n++;
  }
  return n;
}

/** The well-formed entries of a payload of record type `type` (RECORD_BATCH or RECORD_OPS), or -1. */
export function countRecordEntries(type: number, payload: Buffer, sizes: FieldSizes): number {
  return type === RECORD_OPS ? countOps(payload, sizes) : countEntries(payload, sizes);
}
