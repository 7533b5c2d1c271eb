// The read response of docs/protocol.md section 2 and of the extension ops of
// docs/read-protocol-extensions.md. Every response starts with a signed
// 64-bit n; n < 0 ends the response (-1 malformed, -2 page too large).
// For n >= 0 the body depends on the request's op:
//
//   page, get, hello:  n × (count i64 | key K bytes, NUL-padded)
//   rank, around:      first u64 (rank of the first record) | n × (count i64 | key K)
//   keyspaces:         n × (size i64 | keyspace name KS bytes, NUL-padded)
//   health:            n = 1, state i64 | since i64 | failures i64 | code 32 bytes | message 256 bytes
//   dense:             rank u64 | dense u64 | n × (count i64 | key K)          (n = 0 or 1)
//   count:             n = 1, keys i64
//   settings:          n × (size i64 | settings 16 bytes | keyspace name KS bytes)
//
// The server encodes with the encode* functions; a client queues the op of
// every request it sends with ReadResponseDecoder.expect() and decodes the
// responses, which come back in request order, from the byte stream.

import { CountdError, ErrorCodes, invalidArgument } from '../errors.js';
import { FieldSizes, readRecordSize } from './fields.js';
import { READ_EXTENSIONS_VERSION, ReadOpName } from './read-request.js';

export const N_MALFORMED = -1n;
/** Sizes of the health record's text fields (NUL-padded UTF-8). */
export const HEALTH_CODE_SIZE = 32;
export const HEALTH_MESSAGE_SIZE = 256;
const HEALTH_RECORD_SIZE = 24 + HEALTH_CODE_SIZE + HEALTH_MESSAGE_SIZE;
/** The worker's state as the health op reports it; on the wire its index in this list. */
export const HEALTH_STATES = ['none', 'applying', 'failing', 'stalled'] as const;
export type HealthState = (typeof HEALTH_STATES)[number];

/**
 * The worker of the process that serves the read port: `none` (no worker in
 * that process), `applying` (normal), `failing` (applies fail and are
 * retried with backoff), `stalled` (the database's file system is full: no
 * retry until space is free). `since` (ms since the Unix epoch, 0 when
 * applying) is when the current failure began; `code` a COUNTD_* code.
 */
export interface HealthReport {
  state: HealthState;
  since: number;
  failures: number;
  code: string;
  message: string;
}
export const N_PAGE_TOO_LARGE = -2n;

/** One ranked entry as it travels on the wire (same shape as the store's Entry). */
export interface ReadEntry {
  key: Buffer;
  count: bigint;
}

/** One keyspace and its number of keys. */
export interface KeyspaceInfo {
  name: Buffer;
  size: bigint;
}

/** Bytes of a keyspace's settings on the wire: the store's settings value (docs/storage-format.md settings-value; all zero: undeclared). */
export const SETTINGS_SIZE = 16;

/** One keyspace, its number of keys and its settings value (a declared keyspace may hold no key). */
export interface KeyspaceSettingsInfo extends KeyspaceInfo {
  settings: Buffer;
}

export type ReadResponse =
  | { op: ReadOpName; status: 'malformed' }
  | { op: ReadOpName; status: 'page-too-large' }
  | { op: 'page' | 'get'; status: 'ok'; entries: ReadEntry[] }
  | { op: 'hello'; status: 'ok'; version: bigint }
  | { op: 'rank' | 'around'; status: 'ok'; first: bigint; entries: ReadEntry[] }
  | { op: 'keyspaces'; status: 'ok'; keyspaces: KeyspaceInfo[] }
  | { op: 'health'; status: 'ok'; health: HealthReport }
  | { op: 'dense'; status: 'ok'; rank: bigint; dense: bigint; entries: ReadEntry[] }
  | { op: 'count'; status: 'ok'; keys: bigint }
  | { op: 'settings'; status: 'ok'; keyspaces: KeyspaceSettingsInfo[] };

/** The 8-byte response n = -1 or n = -2. */
export function encodeStatusResponse(n: bigint): Buffer {
  if (n !== N_MALFORMED && n !== N_PAGE_TOO_LARGE) throw invalidArgument(`status response must be -1 or -2, got ${n}`);
  const buf = Buffer.allocUnsafe(8);
  buf.writeBigInt64LE(n, 0);
  return buf;
}

/** Response to a page or get request: n, then n × (count, key). */
export function encodePageResponse(entries: readonly ReadEntry[], sizes: FieldSizes): Buffer {
  const buf = Buffer.allocUnsafe(8 + entries.length * readRecordSize(sizes));
  buf.writeBigInt64LE(BigInt(entries.length), 0);
  writeRecords(buf, 8, entries, sizes.keySize);
  return buf;
}

/** Response to a rank or around request: n, first, then n × (count, key). */
export function encodePositionedResponse(first: bigint | number, entries: readonly ReadEntry[], sizes: FieldSizes): Buffer {
  const buf = Buffer.allocUnsafe(16 + entries.length * readRecordSize(sizes));
  buf.writeBigInt64LE(BigInt(entries.length), 0);
  buf.writeBigUInt64LE(BigInt(first), 8);
  writeRecords(buf, 16, entries, sizes.keySize);
  return buf;
}

/** Response to a keyspaces request: n, then n × (size, name). */
export function encodeKeyspacesResponse(
  keyspaces: ReadonlyArray<{ name: Uint8Array; size: number | bigint }>,
  sizes: FieldSizes,
): Buffer {
  const KS = sizes.keyspaceSize;
  const rec = 8 + KS;
  const buf = Buffer.allocUnsafe(8 + keyspaces.length * rec);
  buf.writeBigInt64LE(BigInt(keyspaces.length), 0);
  let at = 8;
  for (const ks of keyspaces) {
    if (ks.name.length === 0 || ks.name.length > KS) throw invalidArgument(`keyspace name of ${ks.name.length} bytes does not fit a ${KS}-byte field`);
    buf.writeBigInt64LE(BigInt(ks.size), at);
    buf.set(ks.name, at + 8);
    buf.fill(0, at + 8 + ks.name.length, at + rec);
    at += rec;
  }
  return buf;
}

/** Response to a dense request: n, rank, dense rank, then the key's record if it exists. */
export function encodeDenseResponse(found: { rank: number; dense: number; entry: ReadEntry } | undefined, sizes: FieldSizes): Buffer {
  const n = found === undefined ? 0 : 1;
  const buf = Buffer.allocUnsafe(24 + n * readRecordSize(sizes));
  buf.writeBigInt64LE(BigInt(n), 0);
  buf.writeBigUInt64LE(BigInt(found?.rank ?? 0), 8);
  buf.writeBigUInt64LE(BigInt(found?.dense ?? 0), 16);
  writeRecords(buf, 24, found === undefined ? [] : [found.entry], sizes.keySize);
  return buf;
}

/** Response to a count request: n = 1, then the number of keys. */
export function encodeCountResponse(keys: number | bigint): Buffer {
  const buf = Buffer.allocUnsafe(16);
  buf.writeBigInt64LE(1n, 0);
  buf.writeBigInt64LE(BigInt(keys), 8);
  return buf;
}

/** Response to a settings request: n, then n × (size, settings value, name). */
export function encodeSettingsResponse(keyspaces: ReadonlyArray<{ name: Uint8Array; size: number | bigint; settings: Uint8Array }>, sizes: FieldSizes): Buffer {
  const KS = sizes.keyspaceSize;
  const rec = 8 + SETTINGS_SIZE + KS;
  const buf = Buffer.alloc(8 + keyspaces.length * rec);
  buf.writeBigInt64LE(BigInt(keyspaces.length), 0);
  let at = 8;
  for (const ks of keyspaces) {
    if (ks.name.length === 0 || ks.name.length > KS) throw invalidArgument(`keyspace name of ${ks.name.length} bytes does not fit a ${KS}-byte field`);
    if (ks.settings.length !== SETTINGS_SIZE) throw invalidArgument(`settings of ${ks.settings.length} bytes, not ${SETTINGS_SIZE}`);
    buf.writeBigInt64LE(BigInt(ks.size), at);
    buf.set(ks.settings, at + 8);
    buf.set(ks.name, at + 8 + SETTINGS_SIZE);
    at += rec;
  }
  return buf;
}

/** Response to a hello request: n = 1, one record whose count is the extension version and whose key field is all NUL. */
export function encodeHelloResponse(sizes: FieldSizes, version: bigint = READ_EXTENSIONS_VERSION): Buffer {
  const buf = Buffer.alloc(8 + readRecordSize(sizes));
  buf.writeBigInt64LE(1n, 0);
  buf.writeBigInt64LE(version, 8);
  return buf;
}

/** Response to a health request: n = 1, then the one health record (text fields cut to their size). */
export function encodeHealthResponse(h: HealthReport): Buffer {
  const buf = Buffer.alloc(8 + HEALTH_RECORD_SIZE);
  buf.writeBigInt64LE(1n, 0);
  buf.writeBigInt64LE(BigInt(HEALTH_STATES.indexOf(h.state)), 8);
  buf.writeBigInt64LE(BigInt(Math.max(0, Math.floor(h.since))), 16);
  buf.writeBigInt64LE(BigInt(Math.max(0, Math.floor(h.failures))), 24);
  textField(buf, 32, HEALTH_CODE_SIZE, h.code);
  textField(buf, 32 + HEALTH_CODE_SIZE, HEALTH_MESSAGE_SIZE, h.message);
  return buf;
}

/** UTF-8 text NUL-padded into a field; cut at a character boundary, and never a NUL inside. */
function textField(buf: Buffer, at: number, size: number, text: string): void {
  let bytes = Buffer.from(text.replace(/\0/g, ''), 'utf8');
  if (bytes.length > size) bytes = Buffer.from(bytes.subarray(0, size).toString('utf8').replace(/\uFFFD$/, ''), 'utf8').subarray(0, size);
  buf.set(bytes, at);
}

function decodeHealth(buf: Buffer, at: number): HealthReport {
  const state = HEALTH_STATES[Number(buf.readBigInt64LE(at))];
  if (state === undefined) throw invalid(`health state ${buf.readBigInt64LE(at)}`);
  const text = (from: number, size: number): string => {
    const field = buf.subarray(from, from + size);
    const end = field.indexOf(0);
    return field.subarray(0, end < 0 ? size : end).toString('utf8');
  };
  return {
    state,
    since: Number(buf.readBigInt64LE(at + 8)),
    failures: Number(buf.readBigInt64LE(at + 16)),
    code: text(at + 24, HEALTH_CODE_SIZE),
    message: text(at + 24 + HEALTH_CODE_SIZE, HEALTH_MESSAGE_SIZE),
  };
}

function writeRecords(buf: Buffer, at: number, entries: readonly ReadEntry[], K: number): void {
  const rec = 8 + K;
  // One fill for every record's padding: a fill per record costs ~10x more.
  buf.fill(0, at, at + entries.length * rec);
  for (const e of entries) {
    const key = e.key;
    const length = key.length;
    if (length === 0 || length > K) throw invalidArgument(`key of ${length} bytes does not fit a ${K}-byte field`);
    buf.writeBigInt64LE(e.count, at);
    // A byte loop beats the native copy for short keys.
    if (length <= 32) for (let i = 0; i < length; i++) buf[at + 8 + i] = key[i]!;
    else buf.set(key, at + 8);
    at += rec;
  }
}

export interface ReadResponseDecoderOptions {
  /** Largest n accepted before the stream is declared invalid. Default 1,000,000. */
  maxRecords?: number;
}

/**
 * Incremental decoder of the responses to pipelined requests (the client
 * side). Call expect(op) for every request sent, in order; push() bytes as
 * they arrive; call next() until it returns undefined. Records are decoded as
 * soon as they arrive, so a large page never sits in memory twice.
 * Throws COUNTD_CONNECTION when the server sends something no response can be.
 */
export class ReadResponseDecoder {
  readonly #sizes: FieldSizes;
  readonly #maxRecords: number;
  readonly #expected: ReadOpName[] = [];
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;
  // The response being decoded: n and body so far.
  #n = -1;
  #first: bigint | undefined;
  /** A dense response's dense rank (its `first` is the rank). */
  #second: bigint | undefined;
  #records: Array<ReadEntry | KeyspaceInfo> = [];

  constructor(sizes: FieldSizes, options: ReadResponseDecoderOptions = {}) {
    this.#sizes = sizes;
    this.#maxRecords = options.maxRecords ?? 1_000_000;
  }

  /** Requests sent whose response is not complete yet. */
  get pending(): number {
    return this.#expected.length;
  }

  expect(op: ReadOpName): void {
    this.#expected.push(op);
  }

  push(chunk: Buffer): void {
    if (this.#pos >= this.#buf.length) this.#buf = chunk;
    else this.#buf = Buffer.concat([this.#buf.subarray(this.#pos), chunk]);
    this.#pos = 0;
  }

  next(): ReadResponse | undefined {
    const buf = this.#buf;
    if (this.#pos >= buf.length) return undefined;
    const op = this.#expected[0];
    if (op === undefined) throw invalid(`${buf.length - this.#pos} bytes arrived with no request outstanding`);
    if (this.#n < 0) {
      if (buf.length - this.#pos < 8) return undefined;
      const n = buf.readBigInt64LE(this.#pos);
      this.#pos += 8;
      if (n === N_MALFORMED || n === N_PAGE_TOO_LARGE) {
        this.#expected.shift();
        return { op, status: n === N_MALFORMED ? 'malformed' : 'page-too-large' };
      }
      if (n < 0n) throw invalid(`response n = ${n}`);
      if (n > BigInt(this.#maxRecords)) throw invalid(`response n = ${n} is above the limit of ${this.#maxRecords}`);
      if ((op === 'hello' || op === 'health' || op === 'count') && n !== 1n) throw invalid(`${op} response n = ${n}`);
      if (op === 'dense' && n > 1n) throw invalid(`dense response n = ${n}`);
      this.#n = Number(n);
      this.#first = undefined;
      this.#second = undefined;
      this.#records = [];
    }
    if (!this.#positions(op)) return undefined;
    if (op === 'count') {
      if (buf.length - this.#pos < 8) return undefined;
      const keys = buf.readBigInt64LE(this.#pos);
      this.#pos += 8;
      this.#expected.shift();
      this.#n = -1;
      return { op, status: 'ok', keys };
    }
    if (op === 'health') {
      if (buf.length - this.#pos < HEALTH_RECORD_SIZE) return undefined;
      const health = decodeHealth(buf, this.#pos);
      this.#pos += HEALTH_RECORD_SIZE;
      this.#expected.shift();
      this.#n = -1;
      return { op, status: 'ok', health };
    }
    const isKeyspaces = op === 'keyspaces' || op === 'settings';
    const nameSize = isKeyspaces ? this.#sizes.keyspaceSize : this.#sizes.keySize;
    const settingsSize = op === 'settings' ? SETTINGS_SIZE : 0;
    const rec = 8 + settingsSize + nameSize;
    while (this.#records.length < this.#n && buf.length - this.#pos >= rec) {
      const count = buf.readBigInt64LE(this.#pos);
      const nameStart = this.#pos + 8 + settingsSize;
      let end = nameStart;
      const limit = nameStart + nameSize;
      while (end < limit && buf[end] !== 0) end++;
      const name = Buffer.from(buf.subarray(nameStart, end));
      if (settingsSize > 0) this.#records.push({ name, size: count, settings: Buffer.from(buf.subarray(this.#pos + 8, nameStart)) } as KeyspaceSettingsInfo);
      else this.#records.push(isKeyspaces ? { name, size: count } : { key: name, count });
      this.#pos += rec;
    }
    if (this.#records.length < this.#n) return undefined;
    this.#expected.shift();
    this.#n = -1;
    const records = this.#records;
    this.#records = [];
    return this.#complete(op, records);
  }

  /** Read the positions before a rank, around or dense response's records; false until their bytes are in. */
  #positions(op: ReadOpName): boolean {
    const buf = this.#buf;
    if ((op === 'rank' || op === 'around' || op === 'dense') && this.#first === undefined) {
      if (buf.length - this.#pos < 8) return false;
      this.#first = buf.readBigUInt64LE(this.#pos);
      this.#pos += 8;
    }
    if (op === 'dense' && this.#second === undefined) {
      if (buf.length - this.#pos < 8) return false;
      this.#second = buf.readBigUInt64LE(this.#pos);
      this.#pos += 8;
    }
    return true;
  }

  /** A complete response of `op` from its records. */
  #complete(op: ReadOpName, records: Array<ReadEntry | KeyspaceInfo>): ReadResponse {
    switch (op) {
      case 'hello':
        return { op, status: 'ok', version: (records[0] as ReadEntry).count };
      case 'keyspaces':
        return { op, status: 'ok', keyspaces: records as KeyspaceInfo[] };
      case 'settings':
        return { op, status: 'ok', keyspaces: records as KeyspaceSettingsInfo[] };
      case 'dense':
        return { op, status: 'ok', rank: this.#first!, dense: this.#second!, entries: records as ReadEntry[] };
      case 'rank':
      case 'around':
        return { op, status: 'ok', first: this.#first!, entries: records as ReadEntry[] };
      default:
        return { op: op as 'page' | 'get', status: 'ok', entries: records as ReadEntry[] };
    }
  }
}

function invalid(what: string): CountdError {
  return new CountdError(ErrorCodes.CONNECTION, `invalid read response from server: ${what}`);
}
