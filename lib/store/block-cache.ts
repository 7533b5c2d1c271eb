// The rank-block cache: decoded blocks of the count index (the entries
// between two rank fences, rank-fences.ts) kept in memory, so a page, a rank
// or an around at any offset costs a binary search and a copy instead of a
// LevelDB iterator (whose open, native hop and one Buffer per entry cost
// ~0.3-0.5 ms for 100 entries on the 2-core machine; bench:pages).
//
// A block is identified by (keyspace id, fence key).
// Its entries are exactly those from its fence key up to the next fence key,
// so a block stays valid until an apply changes what lies between those two
// keys. The Store tells the cache, in the same synchronous step in which it
// swaps in a committed apply's state, which fence keys of the OLD fences it
// touched (an entry inserted or removed there, or merged with a neighbour;
// a split block had entries inserted, or was merged): untouched blocks keep
// both their fence key and their successor's (a fence key only disappears by
// merging into the block before it, which is then touched), so they are
// still exact. Whatever replaces fences wholesale (a rebuild, a reload that
// found them inconsistent, a deleted keyspace) drops all the keyspace's
// blocks (a scan of the cache: rare).
//
// A block read from a snapshot is only inserted if no write committed since
// that snapshot was taken (the Store checks its epoch), and only used by a
// read whose view is of the current epoch, so a read never mixes states.
//
// Memory is bounded by bytes (an estimate per block), least recently used
// first out. Each block is one Buffer of its index suffixes back to back
// (rankcount | key, docs/storage-format.md) plus their end offsets.

import { RANK_COUNT_SIZE, compareRange, readRankCount } from './encoding.js';

/** Estimated bytes of one cached block besides its data and offsets: Map slot, key string, objects. */
const BLOCK_OVERHEAD = 160;

export class RankBlock {
  /**
   * @param data the block's index suffixes, concatenated in rank order.
   * @param ends ends[i] = offset in `data` just past suffix i.
   */
  constructor(
    readonly data: Buffer,
    readonly ends: Uint32Array,
  ) {}

  /** Build a block from its index suffixes, in rank order. */
  static of(suffixes: readonly Uint8Array[]): RankBlock {
    let bytes = 0;
    for (const s of suffixes) bytes += s.length;
    // Memory of its own: a block under 4 KiB from Node.js's pool would keep an 8 KiB slab alive while cached.
    const data = Buffer.allocUnsafeSlow(bytes);
    const ends = new Uint32Array(suffixes.length);
    let at = 0;
    for (let i = 0; i < suffixes.length; i++) {
      data.set(suffixes[i]!, at);
      at += suffixes[i]!.length;
      ends[i] = at;
    }
    return new RankBlock(data, ends);
  }

  get length(): number {
    return this.ends.length;
  }

  start(i: number): number {
    return i === 0 ? 0 : this.ends[i - 1]!;
  }

  /**
   * Push entries from..to-1 onto `out`. Their keys are views of ONE copy of
   * those entries' bytes (the block stays shared in the cache; one copy costs
   * less than one per key).
   */
  pushEntries(from: number, to: number, out: Array<{ key: Buffer; count: bigint }>, keyAt = RANK_COUNT_SIZE): void {
    if (from >= to) return;
    const base = this.start(from);
    const copy = Buffer.allocUnsafe(this.ends[to - 1]! - base);
    this.data.copy(copy, 0, base, this.ends[to - 1]);
    let start = 0;
    for (let i = from; i < to; i++) {
      const end = this.ends[i]! - base;
      out.push({ key: copy.subarray(start + keyAt, end), count: readRankCount(copy, start) });
      start = end;
    }
  }

  /** Position of index suffix `suffix` in the block, or -1. */
  indexOf(suffix: Buffer): number {
    let lo = 0;
    let hi = this.ends.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const d = compareRange(this.data, this.start(mid), this.ends[mid]!, suffix);
      if (d === 0) return mid;
      if (d < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Number of entries that sort before `bound` (a suffix or a prefix of one). */
  lowerBound(bound: Uint8Array): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareRange(this.data, this.start(mid), this.ends[mid]!, bound) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Whether entries i and j have the same count (the same 8 rank-count bytes). */
  sameCount(i: number, j: number): boolean {
    const a = this.start(i);
    const b = this.start(j);
    for (let k = 0; k < RANK_COUNT_SIZE; k++) if (this.data[a + k] !== this.data[b + k]) return false;
    return true;
  }

  /**
   * The number of distinct counts among entries 0..to-1 (computed once per
   * block for the whole block, kept with it: blocks are immutable).
   */
  distinctCounts(to = this.length): number {
    if (to === this.length && this.#distinct !== undefined) return this.#distinct;
    let n = 0;
    for (let i = 0; i < to; i++) if (i === 0 || !this.sameCount(i - 1, i)) n++;
    if (to === this.length) this.#distinct = n;
    return n;
  }
  #distinct: number | undefined;

  /** Whether this block's first entry has the count of `other`'s last one (a count that spans the fence). */
  continues(other: RankBlock): boolean {
    if (this.length === 0 || other.length === 0) return false;
    const a = 0;
    const b = other.start(other.length - 1);
    for (let k = 0; k < RANK_COUNT_SIZE; k++) if (this.data[a + k] !== other.data[b + k]) return false;
    return true;
  }

  get bytes(): number {
    return BLOCK_OVERHEAD + this.data.length + this.ends.byteLength;
  }
}

export class BlockCache {
  /** `id/latin1 fence key` -> block. Map order = least recently used first. */
  private readonly blocks = new Map<string, RankBlock>();
  private used = 0;

  constructor(readonly capacityBytes: number) {}

  get enabled(): boolean {
    return this.capacityBytes > 0;
  }

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.blocks.size;
  }

  get(id: number, fenceKey: Buffer): RankBlock | undefined {
    const key = this.key(id, fenceKey);
    const block = this.blocks.get(key);
    if (block !== undefined) {
      this.blocks.delete(key);
      this.blocks.set(key, block);
    }
    return block;
  }

  set(id: number, fenceKey: Buffer, block: RankBlock): void {
    if (!this.enabled || block.bytes > this.capacityBytes) return;
    const key = this.key(id, fenceKey);
    this.remove(key);
    this.blocks.set(key, block);
    this.used += block.bytes;
    if (this.used > this.capacityBytes) {
      const oldest = this.blocks.keys();
      while (this.used > this.capacityBytes) this.remove(oldest.next().value as string);
    }
  }

  /** An apply changed the entries from each of these fence keys (of the fences before it) to the next one. */
  invalidate(id: number, fenceKeys: Iterable<Buffer>): void {
    if (this.blocks.size === 0) return;
    for (const fenceKey of fenceKeys) this.remove(this.key(id, fenceKey));
  }

  /** The keyspace's fences were replaced wholesale (or it is gone): forget every block of it. */
  dropKeyspace(id: number): void {
    const prefix = `${id}/`;
    for (const key of [...this.blocks.keys()]) if (key.startsWith(prefix)) this.remove(key);
  }

  clear(): void {
    this.blocks.clear();
    this.used = 0;
  }

  private remove(key: string): void {
    const old = this.blocks.get(key);
    if (old === undefined) return;
    this.blocks.delete(key);
    this.used -= old.bytes;
  }

  private key(id: number, fenceKey: Buffer): string {
    return `${id}/${fenceKey.toString('latin1')}`;
  }
}
