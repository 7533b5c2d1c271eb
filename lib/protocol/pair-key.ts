// The pair key: one (keyspace, key) pair as one byte string,
//
//   pair := ksLen u16 | keyLen u16 | keyspace | key        (lengths little-endian)
//
// unambiguous without a separator. A commit-log entry is an increment followed
// by exactly these bytes (docs/commit-log-format.md), so the summing thread
// hashes them in place (lib/roles/work/pair-sums.ts); the store's
// IncrementBatch and count cache key their maps by the same bytes as a
// latin1 string (one char per byte), so a pair read from a log is never
// re-encoded. This module is the one owner of that layout.

/** Node's Buffer#latin1Slice: toString('latin1') without its argument handling (measurably cheaper per key). */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

/** Bytes of the two name lengths that start a pair key. */
export const PAIR_LENGTHS_SIZE = 4;
/** Names are shorter than this (field sizes stop at 65535): their lengths fit a u16. */
export const PAIR_NAME_LIMIT = 0x10000;

/** Write the two lengths of a pair key at target[offset]. */
export function writePairLengths(target: Uint8Array, offset: number, ksLen: number, keyLen: number): void {
  target[offset] = ksLen & 0xff;
  target[offset + 1] = ksLen >>> 8;
  target[offset + 2] = keyLen & 0xff;
  target[offset + 3] = keyLen >>> 8;
}

/** The keyspace length of the pair key at bytes[offset]. */
export function pairKeyspaceLength(bytes: Uint8Array, offset: number): number {
  return bytes[offset]! | (bytes[offset + 1]! << 8);
}

/** The key length of the pair key at bytes[offset]. */
export function pairKeyLength(bytes: Uint8Array, offset: number): number {
  return bytes[offset + 2]! | (bytes[offset + 3]! << 8);
}

/** The pair key of (keyspace, key) as a latin1 string; both names shorter than PAIR_NAME_LIMIT. */
export function pairKeyString(keyspace: Buffer, key: Buffer): string {
  const ksLen = keyspace.length;
  const keyLen = key.length;
  return (
    String.fromCharCode(ksLen & 0xff, ksLen >>> 8, keyLen & 0xff, keyLen >>> 8) +
    (keyspace as Latin1Buffer).latin1Slice(0, ksLen) +
    (key as Latin1Buffer).latin1Slice(0, keyLen)
  );
}

/** The keyspace (latin1) of a pair key string. */
export function pairKeyspaceOf(pair: string): string {
  const ksLen = pair.charCodeAt(0) | (pair.charCodeAt(1) << 8);
  return pair.substring(PAIR_LENGTHS_SIZE, PAIR_LENGTHS_SIZE + ksLen);
}
