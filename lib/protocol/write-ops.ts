// The extended write protocol (docs/write-protocol-extensions.md): a hello no
// plain client sends, then typed operation frames (increment, set, delete a
// key, delete a keyspace). Codecs for both sides; the server's path
// (isHello, validateOpFrame) allocates nothing.
//
//   hello    := version i64 (>= 1) | keyspace KS (all NUL) | key K (all NUL)      (a plain-size frame)
//   opFrame  := op u8 | flags u8 (0) | reserved 6 (0) | value i64
//             | producer u64 (0) | epoch u32 (0) | reserved u32 (0) | sequence u64 (0) | token u64 (0)
//             | keyspace KS | key K
//   (version 2: producer, epoch and sequence name an idempotent producer's
//   frame, flags bit 0 asks for a prompt hand-over; every frame is answered
//   with a 24-byte reply2 := status u8 | zero 7 | token u64 | detail u64;
//   flags bit 1 on an increment or set asks for the 40-byte reply2 | count
//   i64 | rank u64 once applied, its byte 1 the result state)

import { invalidArgument } from '../errors.js';
import { FieldSizes, fieldNameLength, nameBytes, writeField, writeFrameSize } from './fields.js';
import { createWindow, settingsTail, windowProblem, type WindowSettings } from './window-settings.js';
import { toInt64 } from './write-frame.js';
import { writeU64LE } from '../util/int64.js';

/** The version of the extensions this code speaks. */
export const WRITE_OPS_VERSION = 2;
/** Version 2 adds idempotent producers, tokens and the 24-byte reply (docs/write-protocol-extensions.md). */
export const WRITE_OPS_PRODUCERS = 2;
/** Flags bit (version 2): hand the commit log holding this frame to the worker right after it is durable (read-your-writes sooner). */
export const FLAG_PROMPT = 0x01;
/** Flags bit (version 2, increment and set only): answer with the key's count and rank once the write is applied (a 40-byte reply; implies FLAG_PROMPT). */
export const FLAG_RESULT = 0x02;
/** Bytes of the reply to a frame with FLAG_RESULT: reply2, count i64, rank u64. */
export const REPLY2_RESULT_SIZE = 40;
/** Byte 1 of a 40-byte reply: what count and rank hold. */
export const ResultState = {
  /** The write was not made durable (status other than W or D): count and rank 0. */
  none: 0,
  /** The key's count and 0-based rank, read once the write was applied. */
  found: 1,
  /** The key does not exist once the write was applied (it was deleted, or an increment of 0 created nothing): 0 and 0. */
  absent: 2,
  /** Not applied within the writer's wait (RESULT_WAIT_MS), or no read port answered: 0 and 0; the write is durable all the same. */
  unknown: 3,
} as const;
/** How long a writer waits for a FLAG_RESULT write to be applied before it answers ResultState.unknown. */
export const RESULT_WAIT_MS = 10_000;
/** Idempotent producers a writer tracks at most (--max-producers). */
export const DEFAULT_MAX_PRODUCERS = 100_000;
/** Idle producers are forgotten after this long (--producer-expiry): one day, Kafka's default producer id expiry. */
export const DEFAULT_PRODUCER_EXPIRY_MS = 86_400_000;
/** Bytes of a version-2 reply. */
export const REPLY2_SIZE = 24;
/** Status byte of a version-2 reply (ASCII, like WIN/BAD/ERR). */
export const Reply2 = {
  /** Durable now; applied exactly once. */
  win: 0x57, // 'W'
  /** This (producer, epoch, sequence) was made durable before: nothing new was written; applied once. */
  duplicate: 0x44, // 'D'
  /** The producer's epoch is below the newest one seen: not written (detail = that epoch). */
  fenced: 0x46, // 'F'
  /** The sequence is neither the next nor a durable one: not written (detail = the next expected). */
  outOfSequence: 0x53, // 'S'
  /** The writer tracks --max-producers producers already: not written (detail = the limit). */
  limit: 0x4c, // 'L'
  /** Not made durable (or the producer's last outcome is unknown): not applied; the connection closes. */
  err: 0x45, // 'E'
  /** Malformed frame; the connection closes. */
  bad: 0x42, // 'B'
} as const;
export type Reply2Status = (typeof Reply2)[keyof typeof Reply2];
/** Bytes of an op frame before its keyspace field. */
export const OP_HEADER_SIZE = 48;
/** The reply to a hello: "EX" and the version spoken (one byte). */
export const REPLY_HELLO_PREFIX = Buffer.from('EX', 'ascii');

/** Op codes of an op frame; the same numbers as the commit log's op entries (lib/commitlog/format.ts). */
export const WriteOp = {
  increment: 1,
  set: 2,
  deleteKey: 3,
  deleteKeyspace: 4,
  /** value = the keyspace's operator: 1 sum, 2 max, 3 min, 4 set (lib/store/combine.ts); key field bytes 0 … 14 = settings bytes 1 … 15. */
  createKeyspace: 5,
} as const;

/** Settings bytes 1 … 15 a create carries in its key field (docs/storage-format.md settings-value). */
export const CREATE_SETTINGS_SIZE = 15;
/** Tie rules a create carries in settings byte 1 (lib/store/encoding.ts Ties). */
export const TiesRule = { key: 0, first: 1 } as const;
export type TiesName = keyof typeof TiesRule;
export const TIES_NAMES: Record<number, TiesName> = { 0: 'key', 1: 'first' };

/**
 * The length of the settings a create's key field carries (up to its last
 * non-zero byte among the first 15), or -1 when the field is malformed:
 * a byte past the 15th set, a tie rule other than key and first, or a
 * malformed window.
 */
export function createSettingsLength(buf: Buffer, keyOff: number, keySize: number): number {
  const n = Math.min(CREATE_SETTINGS_SIZE, keySize);
  if (!allZero(buf, keyOff + n, keyOff + keySize)) return -1;
  // Byte 0 the tie rule, bytes 1 … 14 the window (lib/protocol/window-settings.ts validates both).
  if (buf[keyOff]! > TiesRule.first || createWindow(buf, keyOff, n) === null) return -1;
  let length = n;
  while (length > 0 && buf[keyOff + length - 1] === 0) length--;
  return length;
}
export type WriteOpName = keyof typeof WriteOp;

/**
 * The operator codes a create carries (and the store's settings record
 * keeps); what they mean is lib/store/combine.ts's.
 */
export const Operator = { sum: 1, max: 2, min: 3, set: 4 } as const;
export type OperatorName = keyof typeof Operator;
export const OPERATOR_NAMES: Record<number, OperatorName> = { 1: 'sum', 2: 'max', 3: 'min', 4: 'set' };

/** Size of an op frame: 48 + KS + K (560 by default). */
export function opFrameSize(sizes: FieldSizes): number {
  return OP_HEADER_SIZE + sizes.keyspaceSize + sizes.keySize;
}

function allZero(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * The version a hello at buf[offset] asks for, or 0 when the plain-size
 * frame there is not a hello (its keyspace and key fields must be all NUL,
 * its first 8 bytes a version of at least 1).
 */
export function helloVersion(buf: Buffer, offset: number, sizes: FieldSizes): number {
  const end = offset + writeFrameSize(sizes);
  if (!allZero(buf, offset + 8, end)) return 0;
  const version = buf.readBigInt64LE(offset);
  if (version < 1n) return 0;
  return version > 255n ? 255 : Number(version);
}

/** The 3-byte reply to a hello asking for `asked`: "EX" and min(asked, the version the server speaks). */
export function helloReply(asked: number, speaks: number = WRITE_OPS_VERSION): Buffer {
  return Buffer.from([REPLY_HELLO_PREFIX[0]!, REPLY_HELLO_PREFIX[1]!, Math.min(asked, speaks)]);
}

/** Write one version-2 reply at target[offset]. */
export function writeReply2(target: Buffer, offset: number, status: number, token: bigint, detail: bigint): void {
  target[offset] = status;
  for (let i = offset + 1; i < offset + 8; i++) target[i] = 0;
  writeU64LE(target, offset + 8, token);
  writeU64LE(target, offset + 16, detail);
}

export interface Reply2Decoded {
  status: number;
  token: bigint;
  detail: bigint;
}

/** The tail of a 40-byte reply (FLAG_RESULT). */
export interface ReplyResult {
  state: number;
  count: bigint;
  rank: bigint;
}

/** Write the 40-byte reply of a FLAG_RESULT frame at target[offset]. */
export function writeReplyResult(target: Buffer, offset: number, status: number, token: bigint, detail: bigint, result: ReplyResult): void {
  writeReply2(target, offset, status, token, detail);
  writeResultTail(target, offset, result);
}

/** Fill in the result of the 40-byte reply at target[offset] whose first 24 bytes are written: its state byte, count and rank. */
export function writeResultTail(target: Buffer, offset: number, result: ReplyResult): void {
  target[offset + 1] = result.state;
  target.writeBigInt64LE(result.count, offset + 24);
  target.writeBigUInt64LE(result.rank, offset + 32);
}

/** Decode the 40-byte reply at buf[offset]; null when it is not one (unknown status or state, non-zero padding). */
export function decodeReplyResult(buf: Buffer, offset: number): (Reply2Decoded & ReplyResult) | null {
  const state = buf[offset + 1]!;
  if (state > ResultState.unknown) return null;
  const head = Buffer.from(buf.subarray(offset, offset + REPLY2_SIZE));
  head[1] = 0;
  const reply = decodeReply2(head, 0);
  if (reply === null) return null;
  return { ...reply, state, count: buf.readBigInt64LE(offset + 24), rank: buf.readBigUInt64LE(offset + 32) };
}

/** Decode the version-2 reply at buf[offset]; null when its status is unknown or its zero bytes are not. */
export function decodeReply2(buf: Buffer, offset: number): Reply2Decoded | null {
  const status = buf[offset]!;
  if (!Object.values(Reply2).includes(status as Reply2Status) || !allZero(buf, offset + 1, offset + 8)) return null;
  return { status, token: buf.readBigUInt64LE(offset + 8), detail: buf.readBigUInt64LE(offset + 16) };
}

/** The producer fields of a version-2 op frame (producer 0: none). */
export interface ProducerFields {
  producer: bigint;
  epoch: number;
  sequence: bigint;
}

/**
 * Validate the op frame at buf[offset]: returns its op (WriteOp) or 0 when
 * it is malformed (unknown op, a non-zero flag or reserved field, a name
 * field invalid, a key given to a keyspace delete, a value given to a
 * delete). `lengths` receives the keyspace and key lengths (key 0 for a
 * keyspace delete).
 */
export function validateOpFrame(buf: Buffer, offset: number, sizes: FieldSizes, lengths: Int32Array, version = 1): number {
  const op = buf[offset]!;
  if (op < WriteOp.increment || op > WriteOp.createKeyspace) return 0;
  if (version >= WRITE_OPS_PRODUCERS) {
    // Version 2: producer, epoch and sequence carry a producer's frame (all 0: none); reserved and token stay 0.
    const flags = buf[offset + 1]!;
    if ((flags & ~(FLAG_PROMPT | FLAG_RESULT)) !== 0 || ((flags & FLAG_RESULT) !== 0 && op !== WriteOp.increment && op !== WriteOp.set)) return 0;
    if (!allZero(buf, offset + 2, offset + 8) || !allZero(buf, offset + 28, offset + 32) || !allZero(buf, offset + 40, offset + OP_HEADER_SIZE)) return 0;
    if (allZero(buf, offset + 16, offset + 24) && !allZero(buf, offset + 24, offset + 40)) return 0;
  } else if (!allZero(buf, offset + 1, offset + 8) || !allZero(buf, offset + 16, offset + OP_HEADER_SIZE)) return 0;
  const ksOff = offset + OP_HEADER_SIZE;
  const ksLen = fieldNameLength(buf, ksOff, sizes.keyspaceSize);
  if (ksLen < 0) return 0;
  const keyOff = ksOff + sizes.keyspaceSize;
  let keyLen: number;
  if (op === WriteOp.deleteKeyspace) {
    if (!allZero(buf, keyOff, keyOff + sizes.keySize)) return 0;
    keyLen = 0;
  } else if (op === WriteOp.createKeyspace) {
    keyLen = createSettingsLength(buf, keyOff, sizes.keySize);
    if (keyLen < 0) return 0;
  } else {
    keyLen = fieldNameLength(buf, keyOff, sizes.keySize);
    if (keyLen < 0) return 0;
  }
  if (op === WriteOp.createKeyspace) {
    const operator = buf.readBigInt64LE(offset + 8);
    if (operator < 1n || operator > 4n) return 0;
  } else if (op >= WriteOp.deleteKey && !allZero(buf, offset + 8, offset + 16)) return 0;
  lengths[0] = ksLen;
  lengths[1] = keyLen;
  return op;
}

/** A hello frame asking for `version` (plain frame size). */
export function encodeHello(sizes: FieldSizes, version = WRITE_OPS_VERSION): Buffer {
  const buf = Buffer.alloc(writeFrameSize(sizes));
  buf.writeBigInt64LE(BigInt(version), 0);
  return buf;
}

/** What an op frame may carry besides its op, value and names. */
export interface OpFrameOptions {
  /** A createKeyspace's window (settings bytes 2 … 15); no other op takes one. */
  window?: WindowSettings;
  /** Idempotent-producer fields (version 2: docs/write-protocol-extensions.md). */
  producer?: ProducerFields;
  /** Ask for a prompt hand-over of the log once this frame is durable (FLAG_PROMPT). */
  prompt?: boolean;
  /** Ask for the key's count and rank once applied (FLAG_RESULT, with FLAG_PROMPT; increment and set only). */
  result?: boolean;
}

/**
 * Encode one op frame; validates its arguments (key null only for the
 * keyspace ops). `producer`, `prompt` and `result` need a version-2 connection.
 */
export function encodeOpFrame(
  op: WriteOpName,
  value: bigint | number,
  keyspace: string | Uint8Array,
  key: string | Uint8Array | null,
  sizes: FieldSizes,
  options: OpFrameOptions = {},
): Buffer {
  const { window, producer, prompt = false, result = false } = options;
  const code = WriteOp[op];
  if (code === undefined) throw invalidArgument(`unknown write op ${String(op)}`);
  const v = toInt64(value, 'value');
  if (code === WriteOp.createKeyspace) {
    if (v < 1n || v > 4n) throw invalidArgument(`createKeyspace takes an operator from 1 to 4, got ${v}`);
  } else if (code >= WriteOp.deleteKey && v !== 0n) throw invalidArgument(`${op} takes no value`);
  const ks = nameBytes(keyspace, 'keyspace', sizes.keyspaceSize);
  const buf = Buffer.alloc(opFrameSize(sizes));
  buf[0] = code;
  buf.writeBigInt64LE(v, 8);
  writeField(buf, OP_HEADER_SIZE, sizes.keyspaceSize, ks);
  if (window !== undefined && code !== WriteOp.createKeyspace) throw invalidArgument(`${op} takes no window`);
  if (code === WriteOp.createKeyspace) {
    // The key field carries the settings bytes 1 … 15: a Buffer of up to 15 (the tie rule first), or nothing (null); then `window`, if any, over bytes 2 … 15.
    const keyOff = OP_HEADER_SIZE + sizes.keyspaceSize;
    if (key !== null) {
      if (!(key instanceof Uint8Array) || key.length > Math.min(CREATE_SETTINGS_SIZE, sizes.keySize)) throw invalidArgument(`createKeyspace takes at most ${CREATE_SETTINGS_SIZE} settings bytes`);
      Buffer.from(key.buffer, key.byteOffset, key.length).copy(buf, keyOff);
    }
    if (window !== undefined && window.unit !== 0) {
      const problem = windowProblem(window);
      if (problem !== undefined) throw invalidArgument(`createKeyspace: ${problem}`);
      const tail = settingsTail(window, buf[keyOff]);
      let used = tail.length;
      while (used > 0 && tail[used - 1] === 0) used--;
      if (used > sizes.keySize) throw invalidArgument(`createKeyspace: a window needs a key field of at least ${used} bytes (this server's is ${sizes.keySize})`);
      tail.copy(buf, keyOff, 0, used);
    }
    if (createSettingsLength(buf, keyOff, sizes.keySize) < 0) throw invalidArgument('createKeyspace settings: the tie rule must be 0 (key) or 1 (first), then a valid window or zero bytes');
  } else if (code === WriteOp.deleteKeyspace) {
    if (key !== null) throw invalidArgument(`${op} takes no key`);
  } else {
    if (key === null) throw invalidArgument(`${op} needs a key`);
    writeField(buf, OP_HEADER_SIZE + sizes.keyspaceSize, sizes.keySize, nameBytes(key, 'key', sizes.keySize));
  }
  if (producer !== undefined) writeProducerFields(buf, checkProducerFields(producer));
  if (result && code !== WriteOp.increment && code !== WriteOp.set) throw invalidArgument(`${op} cannot ask for the key's count and rank`);
  if (prompt || result) buf[1] = result ? FLAG_PROMPT | FLAG_RESULT : FLAG_PROMPT;
  return buf;
}

const U64_MAX = (1n << 64n) - 1n;

/** Validate producer fields: id 1 … 2^64 − 1, epoch 0 … 2^32 − 1, sequence 0 … 2^64 − 1. */
export function checkProducerFields(p: ProducerFields): ProducerFields {
  if (p === null || typeof p !== 'object') throw invalidArgument('producer must be { producer, epoch, sequence }');
  const id = typeof p.producer === 'number' && Number.isSafeInteger(p.producer) ? BigInt(p.producer) : p.producer;
  const sequence = typeof p.sequence === 'number' && Number.isSafeInteger(p.sequence) ? BigInt(p.sequence) : p.sequence;
  if (typeof id !== 'bigint' || id < 1n || id > U64_MAX) throw invalidArgument(`producer id must be an integer from 1 to 2^64 - 1, got ${String(p.producer)}`);
  if (!Number.isInteger(p.epoch) || p.epoch < 0 || p.epoch > 0xffff_ffff) throw invalidArgument(`producer epoch must be an integer from 0 to 2^32 - 1, got ${String(p.epoch)}`);
  if (typeof sequence !== 'bigint' || sequence < 0n || sequence > U64_MAX) throw invalidArgument(`sequence must be an integer from 0 to 2^64 - 1, got ${String(p.sequence)}`);
  return { producer: id, epoch: p.epoch, sequence };
}

function writeProducerFields(buf: Buffer, p: ProducerFields): void {
  buf.writeBigUInt64LE(p.producer, 16);
  buf.writeUInt32LE(p.epoch, 24);
  buf.writeBigUInt64LE(p.sequence, 32);
}
