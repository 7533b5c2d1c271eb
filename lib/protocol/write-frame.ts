// The write frame of docs/protocol.md section 1:
//   increment (signed 64-bit LE) | keyspace (KS bytes, NUL-padded) | key (K bytes, NUL-padded)
// and the three 3-byte replies. The server's hot path uses validateFrame(),
// which allocates nothing; decodeFrame() is for tools and tests.

import { invalidArgument } from '../errors.js';
import { FieldSizes, INT64_MAX, INT64_MIN, fieldNameLength, nameBytes, writeField, writeFrameSize } from './fields.js';

export const WRITE_REPLY_SIZE = 3;
export const REPLY_WIN = Buffer.from('WIN', 'ascii');
export const REPLY_BAD = Buffer.from('BAD', 'ascii');
export const REPLY_ERR = Buffer.from('ERR', 'ascii');

export type WriteReply = 'WIN' | 'BAD' | 'ERR';

export interface WriteFrame {
  increment: bigint;
  keyspace: Buffer;
  key: Buffer;
}

/**
 * Validate the frame at buf[offset, offset + frameSize). Returns false when
 * the keyspace or the key field is invalid. `lengths`, if given, receives the
 * keyspace length at [0] and the key length at [1].
 */
export function validateFrame(buf: Buffer, offset: number, sizes: FieldSizes, lengths?: Int32Array): boolean {
  const ksLen = fieldNameLength(buf, offset + 8, sizes.keyspaceSize);
  if (ksLen < 0) return false;
  const keyLen = fieldNameLength(buf, offset + 8 + sizes.keyspaceSize, sizes.keySize);
  if (keyLen < 0) return false;
  if (lengths) {
    lengths[0] = ksLen;
    lengths[1] = keyLen;
  }
  return true;
}

/** Decode one frame, or return null if it is invalid. The returned names are copies. */
export function decodeFrame(buf: Buffer, offset: number, sizes: FieldSizes): WriteFrame | null {
  if (buf.length - offset < writeFrameSize(sizes)) return null;
  const lengths = new Int32Array(2);
  if (!validateFrame(buf, offset, sizes, lengths)) return null;
  const ksStart = offset + 8;
  const keyStart = ksStart + sizes.keyspaceSize;
  return {
    increment: buf.readBigInt64LE(offset),
    keyspace: Buffer.from(buf.subarray(ksStart, ksStart + lengths[0]!)),
    key: Buffer.from(buf.subarray(keyStart, keyStart + lengths[1]!)),
  };
}

/** Encode one frame; validates its arguments. */
export function encodeFrame(
  increment: bigint | number,
  keyspace: string | Uint8Array,
  key: string | Uint8Array,
  sizes: FieldSizes,
  target?: Buffer,
  offset = 0,
): Buffer {
  const inc = toInt64(increment, 'increment');
  const ks = nameBytes(keyspace, 'keyspace', sizes.keyspaceSize);
  const k = nameBytes(key, 'key', sizes.keySize);
  const size = writeFrameSize(sizes);
  const buf = target ?? Buffer.allocUnsafe(size);
  if (buf.length - offset < size) throw invalidArgument('target buffer too small for a frame');
  buf.writeBigInt64LE(inc, offset);
  writeField(buf, offset + 8, sizes.keyspaceSize, ks);
  writeField(buf, offset + 8 + sizes.keyspaceSize, sizes.keySize, k);
  return buf;
}

/** Check that a number or bigint is an integer in the signed 64-bit range. */
export function toInt64(value: bigint | number, what: string): bigint {
  let v: bigint;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value);
  else throw invalidArgument(`${what} must be a bigint or a safe integer, got ${String(value)}`);
  if (v < INT64_MIN || v > INT64_MAX) throw invalidArgument(`${what} ${v} is outside the signed 64-bit range`);
  return v;
}
