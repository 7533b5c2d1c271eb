// The extended write protocol (docs/write-protocol-extensions.md): a hello no
// plain client sends, then typed operation frames (increment, set, delete a
// key, delete a keyspace). Codecs for both sides; the server's path
// (isHello, validateOpFrame) allocates nothing.
//
//   hello    := version i64 (>= 1) | keyspace KS (all NUL) | key K (all NUL)      (a plain-size frame)
//   opFrame  := op u8 | flags u8 (0) | reserved 6 (0) | value i64
//             | producer u64 (0) | epoch u32 (0) | reserved u32 (0) | sequence u64 (0) | token u64 (0)
//             | keyspace KS | key K

import { invalidArgument } from '../errors.js';
import { FieldSizes, fieldNameLength, nameBytes, writeField, writeFrameSize } from './fields.js';
import { toInt64 } from './write-frame.js';

/** The version of the extensions this code speaks. */
export const WRITE_OPS_VERSION = 1;
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
 * a byte past the 15th set, or a tie rule other than key and first.
 */
export function createSettingsLength(buf: Buffer, keyOff: number, keySize: number): number {
  const n = Math.min(CREATE_SETTINGS_SIZE, keySize);
  if (!allZero(buf, keyOff + n, keyOff + keySize)) return -1;
  if (buf[keyOff]! > TiesRule.first) return -1;
  // Bytes 2 … 15 (windows) are not known to this version: a create that sets them is refused.
  if (!allZero(buf, keyOff + 1, keyOff + n)) return -1;
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

/** The 3-byte reply to a hello asking for `asked`: "EX" and min(asked, WRITE_OPS_VERSION). */
export function helloReply(asked: number): Buffer {
  return Buffer.from([REPLY_HELLO_PREFIX[0]!, REPLY_HELLO_PREFIX[1]!, Math.min(asked, WRITE_OPS_VERSION)]);
}

/**
 * Validate the op frame at buf[offset]: returns its op (WriteOp) or 0 when
 * it is malformed (unknown op, a non-zero flag or reserved field, a name
 * field invalid, a key given to a keyspace delete, a value given to a
 * delete). `lengths` receives the keyspace and key lengths (key 0 for a
 * keyspace delete).
 */
export function validateOpFrame(buf: Buffer, offset: number, sizes: FieldSizes, lengths: Int32Array): number {
  const op = buf[offset]!;
  if (op < WriteOp.increment || op > WriteOp.createKeyspace) return 0;
  if (!allZero(buf, offset + 1, offset + 8) || !allZero(buf, offset + 16, offset + OP_HEADER_SIZE)) return 0;
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

/** Encode one op frame; validates its arguments (key null only for deleteKeyspace). */
export function encodeOpFrame(op: WriteOpName, value: bigint | number, keyspace: string | Uint8Array, key: string | Uint8Array | null, sizes: FieldSizes): Buffer {
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
  if (code === WriteOp.createKeyspace) {
    // The key field carries the settings bytes (a Buffer of up to 15), or nothing (null).
    if (key !== null) {
      if (!(key instanceof Uint8Array) || key.length > Math.min(CREATE_SETTINGS_SIZE, sizes.keySize)) throw invalidArgument(`createKeyspace takes at most ${CREATE_SETTINGS_SIZE} settings bytes`);
      Buffer.from(key.buffer, key.byteOffset, key.length).copy(buf, OP_HEADER_SIZE + sizes.keyspaceSize);
      if (createSettingsLength(buf, OP_HEADER_SIZE + sizes.keyspaceSize, sizes.keySize) < 0) throw invalidArgument('createKeyspace settings: the tie rule must be 0 (key) or 1 (first), other bytes 0');
    }
  } else if (code === WriteOp.deleteKeyspace) {
    if (key !== null) throw invalidArgument(`${op} takes no key`);
  } else {
    if (key === null) throw invalidArgument(`${op} needs a key`);
    writeField(buf, OP_HEADER_SIZE + sizes.keyspaceSize, sizes.keySize, nameBytes(key, 'key', sizes.keySize));
  }
  return buf;
}
