// Byte layout of every LevelDB key and value the store writes. The grammar,
// the constants and a worked example are in docs/storage-format.md; keep the
// two in step.
//
// Every key starts with a one-byte tag. Per-keyspace records then carry the
// keyspace's 8-byte id (not its name): ids keep keys short, give every
// keyspace a contiguous range, and let deleteKeyspace drop a name atomically
// with one tiny write and clear the id's records afterwards.

import { INT64_MAX, INT64_MIN } from '../protocol/fields.js';

/** `V`: store format record. */
export const TAG_VERSION = 0x56;
/** `N`: the next keyspace id to hand out. */
export const TAG_NEXT_ID = 0x4e;
/** `K` name: keyspace directory record -> id and size. */
export const TAG_KEYSPACE = 0x4b;
/** `C` id key: the count of one key. */
export const TAG_COUNT = 0x43;
/** `I` id rankcount key: count index entry (empty value). */
export const TAG_INDEX = 0x49;
/** `F` id suffix: rank fence -> entries from this fence to the next. */
export const TAG_FENCE = 0x46;
/** `M` name: a mark (metadata written atomically with an apply). */
export const TAG_MARK = 0x4d;
/** `X` id: a deleted keyspace whose records are still being cleared. */
export const TAG_DEAD = 0x58;
/** `S` name: a declared keyspace's settings (its operator). */
export const TAG_SETTINGS = 0x53;
/** Bytes of a settings value: the operator, the tie rule, then 14 bytes reserved (zero) for windows and history. */
export const SETTINGS_VALUE_SIZE = 16;
/** `O`: the last apply order handed out (u64 BE): the "time" of `--ties first` keyspaces. */
export const TAG_ORDER = 0x4f;
export const ORDER_KEY = Buffer.from([TAG_ORDER]);
/** Bytes of an apply order: in the count value and the index suffix of a `--ties first` keyspace. */
export const ORDER_SIZE = 8;
/** Settings byte 1: equal counts rank by key bytes (0, today's rule) or by who reached the count first (1). */
export const Ties = { key: 0, first: 1 } as const;

/** Bytes of a keyspace id. */
export const ID_SIZE = 8;
/** Bytes of the tag plus the id that start every per-keyspace key. */
export const PREFIX_SIZE = 1 + ID_SIZE;
/** Bytes of the order-preserving count at the start of an index suffix. */
export const RANK_COUNT_SIZE = 8;
/** Bytes of a count value (a `--ties first` keyspace's holds the apply order after it: COUNT_SIZE + ORDER_SIZE). */
export const COUNT_SIZE = 8;
/** Bytes of a keyspace directory value: id then size. */
export const KEYSPACE_VALUE_SIZE = 16;
/** Bytes of a fence value: unsigned 32-bit entry count. */
export const FENCE_VALUE_SIZE = 4;

export const VERSION_KEY = Buffer.from([TAG_VERSION]);
export const NEXT_ID_KEY = Buffer.from([TAG_NEXT_ID]);
export const EMPTY = Buffer.alloc(0);

/** `tag id`: the 9 bytes that start every record of one keyspace of one kind. */
export function idPrefix(tag: number, id: number): Buffer {
  const buf = Buffer.allocUnsafe(PREFIX_SIZE);
  buf[0] = tag;
  writeId(buf, 1, id);
  return buf;
}

/** Ids are safe integers below 2^53, written as unsigned 64-bit big-endian. */
export function writeId(buf: Buffer, offset: number, id: number): void {
  buf.writeUInt32BE(Math.floor(id / 0x1_0000_0000), offset);
  buf.writeUInt32BE(id >>> 0, offset + 4);
}

export function readId(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * 0x1_0000_0000 + buf.readUInt32BE(offset + 4);
}

/** `prefix bytes`, in one allocation. */
export function withPrefix(prefix: Buffer, bytes: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(prefix.length + bytes.length);
  prefix.copy(buf, 0);
  bytes.copy(buf, prefix.length);
  return buf;
}

/** `tag name` for the keyspace directory and marks. */
export function taggedName(tag: number, name: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(1 + name.length);
  buf[0] = tag;
  name.copy(buf, 1);
  return buf;
}

/**
 * The rank count: INT64_MAX - count as unsigned 64-bit big-endian. Flipping
 * the sign bit maps signed to unsigned order; inverting makes it descending.
 * Together that is one subtraction, and it covers the whole signed range:
 * INT64_MAX -> 0x0000000000000000, INT64_MIN -> 0xffffffffffffffff.
 */
export function writeRankCount(buf: Buffer, offset: number, count: bigint): void {
  buf.writeBigUInt64BE(INT64_MAX - count, offset);
}

/**
 * Byte order (as Buffer.compare) of a[aStart..aEnd) against all of b. A JS
 * loop beats the native call for the short index suffixes compared here.
 */
export function compareRange(a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array): number {
  const length = aEnd - aStart;
  const n = length < b.length ? length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[aStart + i]! - b[i]!;
    if (d !== 0) return d;
  }
  return length - b.length;
}

/** Byte order of two buffers (as Buffer.compare): compareRange over all of a. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return compareRange(a, 0, a.length, b);
}

export function readRankCount(buf: Buffer, offset: number): bigint {
  // The count's high 32 bits (signed) and low 32 bits, from the inverted bytes
  // (see above); one BigInt conversion when the count is within +-2^53, the
  // common case, instead of readBigUInt64BE's shifts and additions.
  const hi = (buf.readUInt32BE(offset) ^ 0x7fffffff) | 0;
  if (hi >= -0x200000 && hi < 0x200000) return BigInt(hi * 0x100000000 + (~buf.readUInt32BE(offset + 4) >>> 0));
  return INT64_MAX - buf.readBigUInt64BE(offset);
}

/**
 * Index suffix: `rankcount key`. The count part is fixed-width and the key is
 * last, so a key sorts before its extensions and ties break by key bytes.
 */
export function indexSuffix(count: bigint, key: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(RANK_COUNT_SIZE + key.length);
  writeRankCount(buf, 0, count);
  key.copy(buf, RANK_COUNT_SIZE);
  return buf;
}

/** Full index key `I id rankcount key`. */
export function indexKey(prefix: Buffer, count: bigint, key: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(PREFIX_SIZE + RANK_COUNT_SIZE + key.length);
  prefix.copy(buf, 0);
  writeRankCount(buf, PREFIX_SIZE, count);
  key.copy(buf, PREFIX_SIZE + RANK_COUNT_SIZE);
  return buf;
}

/**
 * Full index key from a count value's bytes (signed 64-bit big-endian), with
 * no bigint arithmetic: INT64_MAX - c equals ~c with the top bit flipped, so
 * the first byte is b0 ^ 0x7f and the others are ~b. This runs twice per
 * changed key in an apply, so the key may be read in place: it is
 * `source[keyStart..]` (an apply passes the count key `C id key` and
 * PREFIX_SIZE, sparing a view object per key).
 */
export function indexKeyFromCount(prefix: Buffer, countValue: Buffer, source: Buffer, keyStart = 0): Buffer {
  const keyLength = source.length - keyStart;
  // A `--ties first` count value carries its apply order: it goes between the rank count and the key.
  const order = countValue.length - COUNT_SIZE;
  const buf = Buffer.allocUnsafe(PREFIX_SIZE + RANK_COUNT_SIZE + order + keyLength);
  for (let i = 0; i < PREFIX_SIZE; i++) buf[i] = prefix[i]!;
  buf[PREFIX_SIZE] = countValue[0]! ^ 0x7f;
  for (let i = 1; i < RANK_COUNT_SIZE; i++) buf[PREFIX_SIZE + i] = ~countValue[i]! & 0xff;
  for (let i = 0; i < order; i++) buf[PREFIX_SIZE + RANK_COUNT_SIZE + i] = countValue[COUNT_SIZE + i]!;
  const at = PREFIX_SIZE + RANK_COUNT_SIZE + order;
  // Keys are short as a rule; up to 64 bytes a plain loop beats the native call of Buffer.copy.
  if (keyLength <= 64) for (let i = 0; i < keyLength; i++) buf[at + i] = source[keyStart + i]!;
  else source.copy(buf, at, keyStart);
  return buf;
}

/** The first key after every key that starts with `prefix`: the range end of a prefix scan. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] !== 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  throw new RangeError('prefix has no successor');
}

export function encodeCount(count: bigint): Buffer {
  const buf = Buffer.allocUnsafe(COUNT_SIZE);
  buf.writeBigInt64BE(count, 0);
  return buf;
}

/** A `--ties first` count value: the count, then the apply order at which the key reached it (u64 BE). */
export function encodeCountOrder(count: bigint, order: number): Buffer {
  const buf = Buffer.allocUnsafe(COUNT_SIZE + ORDER_SIZE);
  buf.writeBigInt64BE(count, 0);
  writeId(buf, COUNT_SIZE, order);
  return buf;
}

/** Index suffix of a key from its count value (8 bytes, or 16 with an apply order): `rankcount [order] key`. */
export function indexSuffixFromCount(countValue: Buffer, key: Buffer): Buffer {
  return indexKeyFromCount(EMPTY_PREFIX, countValue, key).subarray(PREFIX_SIZE);
}
const EMPTY_PREFIX = Buffer.alloc(PREFIX_SIZE);

/** The rank-count bytes of the entries with count >= min end before this 8-byte suffix prefix (undefined: every entry). */
export function minCountBound(min: bigint): Buffer | undefined {
  if (min <= INT64_MIN) return undefined;
  const buf = Buffer.allocUnsafe(RANK_COUNT_SIZE);
  writeRankCount(buf, 0, min - 1n);
  return buf;
}

export function encodeKeyspaceValue(id: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(KEYSPACE_VALUE_SIZE);
  writeId(buf, 0, id);
  writeId(buf, 8, size);
  return buf;
}

export function encodeFenceValue(entries: number): Buffer {
  const buf = Buffer.allocUnsafe(FENCE_VALUE_SIZE);
  buf.writeUInt32BE(entries, 0);
  return buf;
}

/**
 * An index entry (suffix after the 9-byte prefix) as count and key; the key
 * shares memory with `suffix`. `keyAt`: RANK_COUNT_SIZE, or RANK_COUNT_SIZE +
 * ORDER_SIZE in a `--ties first` keyspace.
 */
export function decodeIndexSuffix(suffix: Buffer, keyAt = RANK_COUNT_SIZE): { key: Buffer; count: bigint } {
  return { key: suffix.subarray(keyAt), count: readRankCount(suffix, 0) };
}

/** A declared keyspace's settings (docs/storage-format.md, settings-value). */
export interface KeyspaceSettingsValue {
  /** lib/store/combine.ts Operator: 1 sum, 2 max, 3 min, 4 set. */
  operator: number;
  /** Ties: 0 key (equal counts by key bytes), 1 first (by apply order, then key bytes). */
  ties?: number;
}

export function encodeSettingsValue(settings: KeyspaceSettingsValue): Buffer {
  const buf = Buffer.alloc(SETTINGS_VALUE_SIZE);
  buf[0] = settings.operator;
  buf[1] = settings.ties ?? Ties.key;
  return buf;
}

/** The settings in a settings value, or null when it is malformed (wrong size, unknown operator or tie rule, reserved bytes set). */
export function decodeSettingsValue(value: Buffer): KeyspaceSettingsValue | null {
  if (value.length !== SETTINGS_VALUE_SIZE || value[0]! < 1 || value[0]! > 4 || value[1]! > Ties.first) return null;
  for (let i = 2; i < SETTINGS_VALUE_SIZE; i++) if (value[i] !== 0) return null;
  return { operator: value[0]!, ties: value[1]! };
}
