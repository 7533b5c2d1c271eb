// The record bytes of an apply's per-key operations with as few objects as
// possible. Every changed key puts its count record, deletes its old index
// entry and puts the new one (docs/storage-format.md): built one Buffer
// each, plus a view for the index suffixes the rank fences need, that was
// seven objects per key, all alive until the apply committed (~1 s, two
// applies overlap), so the young generation promoted them and the garbage
// collector traced them again (~20% of the store's thread, BENCHMARKS.md
// "The engine keeps up (issue 14, 0.8.0)"). classic-level copies a key and
// a value into its native batch when they are put (binding.cc batch_put:
// ToSlice copies, WriteBatch::Put copies), so what goes only to the batch
// is written into buffers reused from key to key, and only the index
// suffixes, which the fence update keeps, are allocated: two per key.

import { COUNT_SIZE, PREFIX_SIZE, RANK_COUNT_SIZE } from './encoding.js';

export class KeyScratch {
  /** Reused buffers by exact length: a native batch operation takes a whole Buffer. */
  readonly #byLength: Buffer[] = [];
  readonly #old = Buffer.allocUnsafeSlow(COUNT_SIZE);
  readonly #next = Buffer.allocUnsafeSlow(COUNT_SIZE);

  #exact(length: number): Buffer {
    return (this.#byLength[length] ??= Buffer.allocUnsafeSlow(length));
  }

  /** `C id key` (prefix, then the key's bytes from `keyBytes`): valid until the next call that builds a key. */
  countKey(prefix: Buffer, keyBytes: Buffer, keyStart: number, keyLength: number): Buffer {
    const buf = this.#exact(PREFIX_SIZE + keyLength);
    for (let i = 0; i < PREFIX_SIZE; i++) buf[i] = prefix[i]!;
    copyBytes(keyBytes, keyStart, keyLength, buf, PREFIX_SIZE);
    return buf;
  }

  /** `prefix suffix` (a full index key): valid until the next call that builds a key. */
  prefixed(prefix: Buffer, suffix: Buffer): Buffer {
    const buf = this.#exact(PREFIX_SIZE + suffix.length);
    for (let i = 0; i < PREFIX_SIZE; i++) buf[i] = prefix[i]!;
    copyBytes(suffix, 0, suffix.length, buf, PREFIX_SIZE);
    return buf;
  }

  /** The count value (signed 64-bit big-endian) of a key's old count: valid until the next oldValue. */
  oldValue(count: bigint): Buffer {
    this.#old.writeBigInt64BE(count, 0);
    return this.#old;
  }

  /** The count value of a key's new count: valid until the next nextValue. */
  nextValue(count: bigint): Buffer {
    this.#next.writeBigInt64BE(count, 0);
    return this.#next;
  }
}

/**
 * Index suffix `rankcount [order] key` from a count value (8 bytes, or 16
 * with a `--ties first` apply order) and the key's bytes in `source`: a new
 * Buffer (encoding.ts indexKeyFromCount, without the prefix).
 */
export function suffixOf(countValue: Buffer, source: Buffer, keyStart: number, keyLength: number): Buffer {
  const order = countValue.length - COUNT_SIZE;
  const buf = Buffer.allocUnsafe(RANK_COUNT_SIZE + order + keyLength);
  buf[0] = countValue[0]! ^ 0x7f;
  for (let i = 1; i < RANK_COUNT_SIZE; i++) buf[i] = ~countValue[i]! & 0xff;
  for (let i = 0; i < order; i++) buf[RANK_COUNT_SIZE + i] = countValue[COUNT_SIZE + i]!;
  copyBytes(source, keyStart, keyLength, buf, RANK_COUNT_SIZE + order);
  return buf;
}

/** Keys are short as a rule; up to 64 bytes a plain loop beats the native call of Buffer.copy. */
function copyBytes(source: Buffer, start: number, length: number, target: Buffer, at: number): void {
  if (length <= 64) for (let i = 0; i < length; i++) target[at + i] = source[start + i]!;
  else source.copy(target, at, start, start + length);
}
