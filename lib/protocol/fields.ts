// Field sizes of the wire protocols (docs/protocol.md: KS and K) and the rule that
// makes a NUL-padded name field valid. One data directory has one pair of
// sizes, recorded in its meta file (datadir/meta.ts).

import { invalidArgument } from '../errors.js';

export interface FieldSizes {
  /** KS: bytes of the keyspace field. */
  readonly keyspaceSize: number;
  /** K: bytes of the key field. */
  readonly keySize: number;
}

/** The range of a signed 64-bit field: increments and counts. */
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
/** The largest unsigned 64-bit field: read-request offsets and lengths. */
export const UINT64_MAX = 2n ** 64n - 1n;

export const DEFAULT_FIELD_SIZES: FieldSizes = Object.freeze({ keyspaceSize: 256, keySize: 256 });

/** Names are stored with 2-byte lengths in commit-log records, hence the cap. */
export const MAX_FIELD_SIZE = 65535;

export function checkFieldSizes(sizes: FieldSizes): FieldSizes {
  for (const [name, value] of [['keyspace size', sizes.keyspaceSize], ['key size', sizes.keySize]] as const) {
    if (!Number.isInteger(value) || value < 1 || value > MAX_FIELD_SIZE) {
      throw invalidArgument(`${name} must be an integer from 1 to ${MAX_FIELD_SIZE}, got ${String(value)}`);
    }
  }
  return sizes;
}

/** Bytes of one write frame: 8 + KS + K. */
export function writeFrameSize(sizes: FieldSizes): number {
  return 8 + sizes.keyspaceSize + sizes.keySize;
}

/** Bytes of one read request: 16 + KS. */
export function readRequestSize(sizes: FieldSizes): number {
  return 16 + sizes.keyspaceSize;
}

/** Bytes of one read-response record: 8 + K. */
export function readRecordSize(sizes: FieldSizes): number {
  return 8 + sizes.keySize;
}

const ZEROS = Buffer.alloc(MAX_FIELD_SIZE);

/**
 * Length of the name held in buf[start, start + size), or -1 when the field
 * is invalid: empty (first byte NUL) or with a non-NUL byte after the first
 * NUL. Allocation-free: this runs for every field of every frame.
 */
export function fieldNameLength(buf: Buffer, start: number, size: number): number {
  if (buf[start] === 0) return -1;
  const end = start + size;
  let i = start + 1;
  while (i < end && buf[i] !== 0) i++;
  if (i === end) return size;
  // Everything after the first NUL must be NUL too.
  return buf.compare(ZEROS, 0, end - i, i, end) === 0 ? i - start : -1;
}

/**
 * Check a name given by an API caller (string or bytes) and return its bytes.
 * `what` names the argument in the error ("keyspace", "key").
 */
export function nameBytes(name: string | Uint8Array, what: string, maxSize: number): Buffer {
  let bytes: Buffer;
  if (typeof name === 'string') bytes = Buffer.from(name, 'utf8');
  else if (name instanceof Uint8Array) bytes = Buffer.from(name.buffer, name.byteOffset, name.byteLength);
  else throw invalidArgument(`${what} must be a string or a Buffer`);
  if (bytes.length === 0) throw invalidArgument(`${what} must not be empty`);
  if (bytes.length > maxSize) throw invalidArgument(`${what} is ${bytes.length} bytes, above the field size of ${maxSize}`);
  if (bytes.includes(0)) throw invalidArgument(`${what} must not contain a NUL byte`);
  return bytes;
}

/** Write `name` NUL-padded into buf[start, start + size). The name is already checked. */
export function writeField(buf: Buffer, start: number, size: number, name: Uint8Array): void {
  buf.set(name, start);
  buf.fill(0, start + name.length, start + size);
}
