// The rank index of one keyspace (docs/storage-format.md, "Rank fences"):
// where a key stands, and any page, without counting from the top. The count index is cut into blocks by fence keys; each fence is
// persisted with the number of index entries from it up to the next fence.
// With prefix sums over those counts, the block holding any rank position is
// a binary search away, and at most one block (< 2B entries) is scanned.
//
// A Fences object is immutable once built: an apply builds a new one and
// swaps it in when its batch is committed, so a reader that captured the old
// one keeps a view consistent with its LevelDB snapshot.

import { EMPTY, compareBytes } from './encoding.js';

export class Fences {
  /** prefix[i] = entries before block i; prefix[length] = total. */
  readonly prefix: Float64Array;

  /**
   * @param keys index suffixes (rankcount key) starting each block, ascending; keys[0] is empty.
   * @param counts entries in each block.
   * @param diskKeys when set, the fence keys found on disk that these fences
   *   (rebuilt in memory) replace: the next apply deletes them and writes all.
   */
  readonly keys: Buffer[];

  constructor(
    keys: Buffer[],
    readonly counts: number[],
    readonly diskKeys?: Buffer[],
  ) {
    this.keys = packed(keys);
    const prefix = new Float64Array(keys.length + 1);
    for (let i = 0; i < counts.length; i++) prefix[i + 1] = prefix[i] + counts[i];
    this.prefix = prefix;
  }

  static empty(): Fences {
    return new Fences([EMPTY], [0]);
  }

  get total(): number {
    return this.prefix[this.keys.length];
  }

  get persisted(): boolean {
    return this.diskKeys === undefined;
  }

  /** The block holding index suffix `suffix`: the last i with keys[i] <= suffix. */
  blockOf(suffix: Buffer): number {
    const keys = this.keys;
    let lo = 0;
    let hi = keys.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      // compareBytes, not Buffer#compare: a JS loop beats the native call on short suffixes (~1.5-2x here, once per inserted or removed entry and fence level).
      if (compareBytes(keys[mid], suffix) <= 0) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The block holding rank position `offset` (< total): the last i with prefix[i] <= offset. */
  blockAt(offset: number): number {
    const prefix = this.prefix;
    let lo = 0;
    let hi = this.keys.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (prefix[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/** A block of the new fence list: old blocks first..last merged, before any split. */
export interface MergedBlock {
  key: Buffer;
  count: number;
  first: number;
  last: number;
}

/**
 * Merge blocks that fell below `min` entries into their predecessor (block 0
 * absorbs its successor instead). Afterwards every block but a lone one has
 * at least `min` entries; blocks above the split limit are split by the
 * caller, which needs to read their entries.
 */
export function mergeSmallBlocks(keys: Buffer[], counts: number[], min: number): MergedBlock[] {
  const out: MergedBlock[] = [];
  for (let i = 0; i < keys.length; i++) {
    const last = out.length > 0 ? out[out.length - 1] : undefined;
    if (last !== undefined && (counts[i] < min || last.count < min)) {
      last.count += counts[i];
      last.last = i;
    } else {
      out.push({ key: keys[i], count: counts[i], first: i, last: i });
    }
  }
  return out;
}

/**
 * Cut `entries` (sorted index suffixes of one block) into pieces of about
 * `target` entries, each of at least `target`. Returns the start offsets of
 * every piece but the first (which keeps the block's own fence key).
 */
export function splitPoints(total: number, target: number): number[] {
  const pieces = Math.max(1, Math.floor(total / target));
  const points: number[] = [];
  for (let p = 1; p < pieces; p++) points.push(Math.floor((p * total) / pieces));
  return points;
}

/**
 * The blocks a run of `total` sorted entries is cut into (splitPoints): the
 * first keeps `firstKey`, each other starts at the suffix `suffixAt(start)`.
 */
export function cutBlock(firstKey: Buffer, total: number, target: number, suffixAt: (start: number) => Buffer): Array<{ key: Buffer; count: number }> {
  const out: Array<{ key: Buffer; count: number }> = [];
  let start = 0;
  for (const point of [...splitPoints(total, target), total]) {
    out.push({ key: start === 0 ? firstKey : suffixAt(start), count: point - start });
    start = point;
  }
  return out;
}

/**
 * The keys copied back to back into ONE Buffer of their own, as views of it.
 * Fences live as long as their keyspace is cached; kept as they come (slices
 * of an apply's keys, or one allocation each from an iterator), each one
 * held a small block of malloc'd memory, or a slab of Node.js's Buffer pool,
 * among the apply's short-lived ones, and the process's resident memory grew
 * with the number of fences, i.e. of keys (~40 bytes a key: bench:worker
 * workload (c), BENCHMARKS.md). One block per Fences is freed whole.
 */
function packed(keys: Buffer[]): Buffer[] {
  let total = 0;
  for (const k of keys) total += k.length;
  const pack = Buffer.allocUnsafeSlow(total);
  const out: Buffer[] = new Array(keys.length);
  let at = 0;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    k.copy(pack, at);
    out[i] = pack.subarray(at, at + k.length);
    at += k.length;
  }
  return out;
}
