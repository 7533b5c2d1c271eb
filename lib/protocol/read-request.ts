// The read request of docs/protocol.md section 2 and its extensions
// (docs/read-protocol-extensions.md):
//
//   offset (u64 LE) | length (u64 LE) | keyspace (KS bytes, NUL-padded)   16 + KS bytes: a page
//
// A connection starts PLAIN: every 16 + KS bytes are a page request, whatever
// the offset (one of 2^63 or more is a valid page that selects nothing).
// Extensions are negotiated per connection by a HELLO that no plain client
// sends, because it is malformed under docs/protocol.md: offset 2^63 and an EMPTY
// keyspace field (all NUL). After it the connection is EXTENDED: an offset of
// 2^63 or more is an opcode, offset = 0x8000_0000_0000_0000 | op, and an op
// may be followed by an extra field (a K-byte key, or an 8-byte keyspace-page
// offset), so a request's size is known once its first 8 bytes are in. Both
// sides use this module: the reader decodes with ReadRequestDecoder (which
// switches itself on a hello), clients encode with encodeReadRequest.

import { invalidArgument } from '../errors.js';
import { FieldSizes, INT64_MAX, INT64_MIN, UINT64_MAX, fieldNameLength, nameBytes, readRequestSize, writeField } from './fields.js';

/** Offsets at or above this value are opcodes (docs/read-protocol-extensions.md). */
export const OPCODE_FLAG = 1n << 63n;

export const OP_HELLO = 0;
export const OP_GET = 1;
export const OP_RANK = 2;
export const OP_AROUND = 3;
export const OP_KEYSPACES = 4;
export const OP_HEALTH = 5;
/** Version 2: rank and dense rank of one key. */
export const OP_DENSE = 6;
/** Version 2: the number of keys with a count of at least `min`. */
export const OP_COUNT = 7;
/** Version 2: a page over the keyspaces with their sizes and settings (declared ones without keys too). */
export const OP_SETTINGS = 8;

/** Version of the extension set answered to OP_HELLO (2: dense, count and settings). */
export const READ_EXTENSIONS_VERSION = 2n;
/** The lowest version that has each op above 5 (a server answering a lower version refuses them). */
export const VERSION_2_OPS: ReadonlySet<ReadOpName> = new Set(['dense', 'count', 'settings']);

export type ReadOpName = 'page' | 'hello' | 'get' | 'rank' | 'around' | 'keyspaces' | 'health' | 'dense' | 'count' | 'settings';

/** A decoded request. Names are copies (safe to keep). */
export type ReadRequest =
  | { op: 'page'; offset: bigint; length: bigint; keyspace: Buffer }
  /** `version`: the highest extension version the client speaks (the length field). */
  | { op: 'hello'; version: bigint }
  | { op: 'get'; keyspace: Buffer; key: Buffer }
  | { op: 'rank'; keyspace: Buffer; key: Buffer }
  | { op: 'around'; length: bigint; keyspace: Buffer; key: Buffer }
  | { op: 'keyspaces'; offset: bigint; length: bigint }
  | { op: 'health' }
  | { op: 'dense'; keyspace: Buffer; key: Buffer }
  | { op: 'count'; keyspace: Buffer; min: bigint }
  | { op: 'settings'; offset: bigint; length: bigint };

/** What a caller gives encodeReadRequest: names as strings or bytes, numbers or bigints. */
export type ReadRequestInput =
  | { op: 'page'; offset: bigint | number; length: bigint | number; keyspace: string | Uint8Array }
  | { op: 'hello' }
  | { op: 'get'; keyspace: string | Uint8Array; key: string | Uint8Array }
  | { op: 'rank'; keyspace: string | Uint8Array; key: string | Uint8Array }
  | { op: 'around'; length: bigint | number; keyspace: string | Uint8Array; key: string | Uint8Array }
  | { op: 'keyspaces'; offset: bigint | number; length: bigint | number }
  | { op: 'health' }
  | { op: 'dense'; keyspace: string | Uint8Array; key: string | Uint8Array }
  | { op: 'count'; keyspace: string | Uint8Array; min: bigint }
  | { op: 'settings'; offset: bigint | number; length: bigint | number };

/** Ops that need a negotiated (extended) connection: every op but page and hello. */
export function isExtensionOp(op: ReadOpName): boolean {
  return op !== 'page' && op !== 'hello';
}

/**
 * Bytes of the request whose offset field holds `offsetField`, or -1 for an
 * unknown opcode. On a plain connection (`extended` false) every request is
 * a page, or the hello, of 16 + KS bytes.
 */
export function requestSizeFor(offsetField: bigint, sizes: FieldSizes, extended = true): number {
  const base = readRequestSize(sizes);
  if (offsetField < OPCODE_FLAG || !extended) return base;
  switch (Number(offsetField - OPCODE_FLAG)) {
    case OP_HELLO:
    case OP_HEALTH:
      return base;
    case OP_GET:
    case OP_RANK:
    case OP_AROUND:
    case OP_DENSE:
      return base + sizes.keySize;
    case OP_KEYSPACES:
    case OP_COUNT:
    case OP_SETTINGS:
      return base + 8;
    default:
      return -1;
  }
}

/** Encode one request; validates its arguments (throws COUNTD_INVALID_ARGUMENT). */
export function encodeReadRequest(req: ReadRequestInput, sizes: FieldSizes): Buffer {
  const KS = sizes.keyspaceSize;
  const base = readRequestSize(sizes);
  switch (req.op) {
    case 'page': {
      // No keyspace holds 2^63 - 1 entries: a page from there on selects nothing (n = 0), so an
      // offset above is sent as that one, which is a page on plain and extended connections alike.
      const asked = toUint64(req.offset, 'offset');
      const offset = asked >= OPCODE_FLAG ? OPCODE_FLAG - 1n : asked;
      const buf = Buffer.allocUnsafe(base);
      header(buf, offset, toUint64(req.length, 'length'), nameBytes(req.keyspace, 'keyspace', KS), KS);
      return buf;
    }
    case 'hello':
    case 'health': {
      // Keyspace field all NUL: malformed under docs/protocol.md, so no plain request is a hello.
      const buf = Buffer.alloc(base);
      buf.writeBigUInt64LE(OPCODE_FLAG | BigInt(req.op === 'hello' ? OP_HELLO : OP_HEALTH), 0);
      buf.writeBigUInt64LE(req.op === 'hello' ? READ_EXTENSIONS_VERSION : 0n, 8);
      return buf;
    }
    case 'get':
    case 'rank':
    case 'dense':
    case 'around': {
      const op = req.op === 'get' ? OP_GET : req.op === 'rank' ? OP_RANK : req.op === 'dense' ? OP_DENSE : OP_AROUND;
      let length = 0n;
      if (req.op === 'around') {
        length = toUint64(req.length, 'length');
        if (length === 0n) throw invalidArgument('around: length must be at least 1');
      }
      const buf = Buffer.allocUnsafe(base + sizes.keySize);
      header(buf, OPCODE_FLAG | BigInt(op), length, nameBytes(req.keyspace, 'keyspace', KS), KS);
      writeField(buf, base, sizes.keySize, nameBytes(req.key, 'key', sizes.keySize));
      return buf;
    }
    case 'keyspaces':
    case 'settings': {
      const buf = Buffer.alloc(base + 8); // keyspace field all NUL
      buf.writeBigUInt64LE(OPCODE_FLAG | BigInt(req.op === 'keyspaces' ? OP_KEYSPACES : OP_SETTINGS), 0);
      buf.writeBigUInt64LE(toUint64(req.length, 'length'), 8);
      buf.writeBigUInt64LE(toUint64(req.offset, 'offset'), base);
      return buf;
    }
    case 'count': {
      if (typeof req.min !== 'bigint' || req.min < INT64_MIN || req.min > INT64_MAX) throw invalidArgument('count: min must be a signed 64-bit bigint');
      const buf = Buffer.allocUnsafe(base + 8);
      header(buf, OPCODE_FLAG | BigInt(OP_COUNT), 0n, nameBytes(req.keyspace, 'keyspace', KS), KS);
      buf.writeBigInt64LE(req.min, base);
      return buf;
    }
    default:
      throw invalidArgument(`unknown read request op ${String((req as { op: unknown }).op)}`);
  }
}

export type DecodeRequestResult =
  | { kind: 'request'; request: ReadRequest; size: number }
  /** Not enough bytes yet; `size` is the total needed (or 8 when the op is not known yet). */
  | { kind: 'partial'; size: number }
  | { kind: 'malformed'; reason: string };

/**
 * Decode the request starting at buf[start], on a plain connection
 * (`extended` false: pages and the hello only) or an extended one. Decides
 * "malformed" as early as the bytes allow (an unknown opcode needs only the
 * first 8 bytes).
 */
export function decodeReadRequest(buf: Buffer, start: number, sizes: FieldSizes, extended = true): DecodeRequestResult {
  const avail = buf.length - start;
  if (avail < 8) return { kind: 'partial', size: 8 };
  const offset = buf.readBigUInt64LE(start);
  const size = requestSizeFor(offset, sizes, extended);
  if (size < 0) return { kind: 'malformed', reason: `unknown opcode ${offset - OPCODE_FLAG}` };
  if (avail < size) return { kind: 'partial', size };
  const length = buf.readBigUInt64LE(start + 8);
  const KS = sizes.keyspaceSize;
  const ksStart = start + 16;
  const keyStart = ksStart + KS;
  const ksLen = fieldNameLength(buf, ksStart, KS);
  const keyspace = (): Buffer => Buffer.from(buf.subarray(ksStart, ksStart + ksLen));

  const op = offset < OPCODE_FLAG ? -1 : Number(offset - OPCODE_FLAG);
  if (op === OP_HELLO && length >= 1n && allZero(buf, ksStart, KS)) return { kind: 'request', size, request: { op: 'hello', version: length } };
  if (op < 0 || !extended) {
    // A page: on a plain connection whatever its offset (2^63 or more selects nothing: n = 0).
    if (ksLen < 0) return { kind: 'malformed', reason: 'invalid keyspace field' };
    return { kind: 'request', size, request: { op: 'page', offset, length, keyspace: keyspace() } };
  }
  if (op === OP_KEYSPACES || op === OP_HEALTH || op === OP_HELLO || op === OP_SETTINGS) {
    if (!allZero(buf, ksStart, KS)) return { kind: 'malformed', reason: 'keyspace field must be all NUL' };
    if (op === OP_HELLO) return { kind: 'malformed', reason: 'hello: length must be at least 1' };
    if (op === OP_HEALTH) {
      if (length !== 0n) return { kind: 'malformed', reason: 'health: length must be 0' };
      return { kind: 'request', size, request: { op: 'health' } };
    }
    const pageOffset = buf.readBigUInt64LE(keyStart);
    return { kind: 'request', size, request: { op: op === OP_SETTINGS ? 'settings' : 'keyspaces', offset: pageOffset, length } };
  }
  if (ksLen < 0) return { kind: 'malformed', reason: 'invalid keyspace field' };
  if (op === OP_COUNT) {
    if (length !== 0n) return { kind: 'malformed', reason: 'count: length must be 0' };
    return { kind: 'request', size, request: { op: 'count', keyspace: keyspace(), min: buf.readBigInt64LE(keyStart) } };
  }
  const keyLen = fieldNameLength(buf, keyStart, sizes.keySize);
  if (keyLen < 0) return { kind: 'malformed', reason: 'invalid key field' };
  const key = Buffer.from(buf.subarray(keyStart, keyStart + keyLen));
  switch (op) {
    case OP_GET:
    case OP_RANK:
    case OP_DENSE: {
      const name = op === OP_GET ? 'get' : op === OP_RANK ? 'rank' : 'dense';
      if (length !== 0n) return { kind: 'malformed', reason: `${name}: length must be 0` };
      return { kind: 'request', size, request: { op: name, keyspace: keyspace(), key } };
    }
    default: // OP_AROUND: requestSizeFor admitted no other op
      if (length === 0n) return { kind: 'malformed', reason: 'around: length must be at least 1' };
      return { kind: 'request', size, request: { op: 'around', length, keyspace: keyspace(), key } };
  }
}

/**
 * Incremental decoder for a stream of pipelined requests (the server side).
 * push() bytes as they arrive, then call next() until it returns undefined.
 * It starts plain and turns extended once it decodes a hello (`extended`).
 * After a 'malformed' result the stream is unusable (the server closes it).
 */
export class ReadRequestDecoder {
  readonly #sizes: FieldSizes;
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;
  #failed = false;
  #extended = false;

  constructor(sizes: FieldSizes) {
    this.#sizes = sizes;
  }

  /** A hello was decoded: opcodes are read as extension ops from then on. */
  get extended(): boolean {
    return this.#extended;
  }

  /** Bytes received but not yet decoded. */
  get buffered(): number {
    return this.#buf.length - this.#pos;
  }

  push(chunk: Buffer): void {
    if (this.#failed) return;
    const rest = this.#buf.length - this.#pos;
    if (rest === 0) this.#buf = chunk;
    else this.#buf = Buffer.concat([this.#buf.subarray(this.#pos), chunk]);
    this.#pos = 0;
  }

  /** The next request, a malformed marker, or undefined when more bytes are needed. */
  next(): ReadRequest | { malformed: string } | undefined {
    if (this.#failed) return undefined;
    const r = decodeReadRequest(this.#buf, this.#pos, this.#sizes, this.#extended);
    if (r.kind === 'partial') return undefined;
    if (r.kind === 'malformed') {
      this.#failed = true;
      this.#buf = Buffer.alloc(0);
      this.#pos = 0;
      return { malformed: r.reason };
    }
    this.#pos += r.size;
    if (r.request.op === 'hello') this.#extended = true;
    return r.request;
  }
}

function header(buf: Buffer, offset: bigint, length: bigint, keyspace: Buffer, KS: number): void {
  buf.writeBigUInt64LE(offset, 0);
  buf.writeBigUInt64LE(length, 8);
  writeField(buf, 16, KS, keyspace);
}

function allZero(buf: Buffer, start: number, size: number): boolean {
  for (let i = start; i < start + size; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Check that a number or bigint is an integer in the unsigned 64-bit range. */
export function toUint64(value: bigint | number, what: string): bigint {
  let v: bigint;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value);
  else throw invalidArgument(`${what} must be a bigint or a safe integer, got ${String(value)}`);
  if (v < 0n || v > UINT64_MAX) throw invalidArgument(`${what} ${v} is outside the unsigned 64-bit range`);
  return v;
}
