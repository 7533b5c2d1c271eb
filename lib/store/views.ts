// Consistent reads: every read of a keyspace works on a View, one state
// between two writes (state.ts explains how it is captured), and answers
// pages, ranks, arounds, tallies and point reads from it. Rank blocks come
// from the block cache (block-cache.ts) while the view is current. The
// arguments were validated by the Store (store.ts).

import type { KeyIterator } from 'classic-level';
import { metrics } from '../metrics.js';
import { INT64_MAX } from '../protocol/fields.js';
import { pairKeyString, PAIR_NAME_LIMIT } from '../protocol/pair-key.js';
import { COUNT_SIZE, ORDER_SIZE, PREFIX_SIZE, RANK_COUNT_SIZE, TAG_COUNT, TAG_INDEX, compareBytes, decodeIndexSuffix, idPrefix, indexSuffixFromCount, minCountBound, prefixEnd, readRankCount, withPrefix, writeRankCount } from './encoding.js';
import { corruption, translateDbError } from './errors.js';
import { RankBlock } from './block-cache.js';
import type { Fences } from './rank-fences.js';
import { SCAN_CHUNK, WHOLE_BLOCK_BYTES } from './schema.js';
import { latin1, type Db, type KeyspaceInfo, type Snapshot, type StoreState } from './state.js';

export interface Entry {
  key: Buffer;
  count: bigint;
}

/** What Store#tally read: see there. */
export interface KeyspaceTally {
  /** Index entries read. */
  keys: number;
  /** Exact sum of their counts. */
  sum: bigint;
  /** Highest and lowest count (undefined when empty). */
  max: bigint | undefined;
  min: bigint | undefined;
}

/** What a read works on: one consistent state between two writes. */
export interface View {
  info: KeyspaceInfo;
  fences: Fences;
  snapshot: Snapshot;
  /** Store epoch when captured: in-memory caches answer for the view only while it is unchanged. */
  epoch: number;
  /** Give the snapshot back (it may be shared with other reads: state.ts captureSnapshot). */
  release: () => Promise<void>;
  /** Where the key starts in an index suffix: after the rank count, and after the apply order in a `--ties first` keyspace. */
  keyAt: number;
}

/** Capture a consistent view of one keyspace (undefined if it does not exist). The caller calls view.release(). */
export async function openView(state: StoreState, name: Buffer): Promise<View | undefined> {
  await state.readable();
  // From here to the snapshot: synchronous, so no write's swap lands in between.
  const ks = latin1(name);
  const info = state.dir.get(ks);
  if (info === undefined) return undefined;
  const { snapshot, release } = state.captureSnapshot();
  const epoch = state.epoch;
  const keyAt = state.tiesFirst.has(ks) ? RANK_COUNT_SIZE + ORDER_SIZE : RANK_COUNT_SIZE;
  const cached = state.fenceCache.get(info.id);
  if (cached !== undefined) return { info, fences: cached, snapshot, epoch, keyAt, release };
  try {
    const fences = await state.loadFences(info, snapshot);
    // Cache only if no write committed meanwhile (the load saw the snapshot's state).
    if (state.epoch === epoch) state.fenceCache.set(info.id, fences);
    return { info, fences, snapshot, epoch, keyAt, release };
  } catch (err) {
    await release();
    throw err;
  }
}

/** Run `fn` on a view of keyspace `name` (`absent` if there is none), closing the view after. */
export async function withView<T>(state: StoreState, name: Buffer, absent: T, fn: (view: View) => Promise<T>): Promise<T> {
  let view: View | undefined;
  try {
    view = await openView(state, name);
    if (view === undefined) return absent;
    return await fn(view);
  } catch (err) {
    throw translateDbError(err, 'read', state.location);
  } finally {
    await view?.release();
  }
}

/** `length` entries from rank position `offset`, in rank order. */
export async function readPage(state: StoreState, view: View, offset: number, length: number): Promise<Entry[]> {
  const out: Entry[] = [];
  if (length === 0 || offset >= view.fences.total) return out;
  const first = view.fences.blockAt(offset);
  let skip = offset - view.fences.prefix[first]!;
  await visitBlocks(state, view, first, (block) => {
    // Keys are copied: the block stays in the cache, and callers own what they get.
    block.pushEntries(skip, Math.min(block.length, skip + length - out.length), out, view.keyAt);
    skip = 0;
    return out.length < length;
  });
  return out;
}

/** Every entry of keyspace `name` from rank position `offset` on, from one view, SCAN_CHUNK keys a native call. */
export async function* iterateEntries(state: StoreState, name: Buffer, offset: number): AsyncGenerator<Entry> {
  const view = await openView(state, name);
  if (view === undefined) return;
  try {
    if (offset >= view.fences.total) return;
    const b = view.fences.blockAt(offset);
    const prefix = idPrefix(TAG_INDEX, view.info.id);
    const iterator = state.db.keys({ gte: withPrefix(prefix, view.fences.keys[b]), lt: prefixEnd(prefix), snapshot: view.snapshot, highWaterMarkBytes: WHOLE_BLOCK_BYTES });
    try {
      let skip = offset - view.fences.prefix[b];
      for (;;) {
        const keys = await iterator.nextv(SCAN_CHUNK);
        if (keys.length === 0) return;
        for (let i = skip; i < keys.length; i++) yield decodeIndexSuffix(keys[i].subarray(PREFIX_SIZE), view.keyAt);
        skip = Math.max(0, skip - keys.length);
      }
    } finally {
      await iterator.close();
    }
  } catch (err) {
    throw translateDbError(err, 'iterate', state.location);
  } finally {
    await view.release();
  }
}

/** The number of keys and the exact sum of the counts in the view's count index (see Store#tally). */
export async function tallyView(state: StoreState, view: View): Promise<KeyspaceTally> {
  const prefix = idPrefix(TAG_INDEX, view.info.id);
  const it = state.db.keys({ gte: prefix, lt: prefixEnd(prefix), snapshot: view.snapshot, highWaterMarkBytes: WHOLE_BLOCK_BYTES });
  let keys = 0;
  let sum = 0n;
  let max: bigint | undefined;
  let last: Buffer | undefined;
  try {
    for (;;) {
      const chunk = await it.nextv(SCAN_CHUNK);
      if (chunk.length === 0) break;
      // rankcount = INT64_MAX - count, unsigned: sum its two 32-bit halves as doubles (exact
      // for up to 2^21 keys a chunk) and convert once a chunk.
      let high = 0;
      let low = 0;
      for (let i = 0; i < chunk.length; i++) {
        const key = chunk[i]!;
        high += key.readUInt32BE(PREFIX_SIZE);
        low += key.readUInt32BE(PREFIX_SIZE + 4);
      }
      sum += BigInt(chunk.length) * INT64_MAX - ((BigInt(high) << 32n) + BigInt(low));
      if (keys === 0) max = readRankCount(chunk[0]!, PREFIX_SIZE);
      keys += chunk.length;
      last = chunk[chunk.length - 1];
    }
  } finally {
    await it.close();
  }
  return { keys, sum, max, min: last === undefined ? undefined : readRankCount(last, PREFIX_SIZE) };
}

/** The count of one key as of now (no view: one point read). */
export async function readCount(state: StoreState, name: Buffer, key: Buffer): Promise<bigint | undefined> {
  await state.readable();
  const info = state.dir.get(latin1(name));
  if (info === undefined) return undefined;
  // The directory as of now and a snapshot of the same state (before a write in flight, if any).
  const { snapshot, release } = state.captureSnapshot();
  try {
    const value = await state.db.get(withPrefix(idPrefix(TAG_COUNT, info.id), key), { snapshot });
    return value === undefined ? undefined : state.decodeCountValue(value);
  } catch (err) {
    throw translateDbError(err, 'get', state.location);
  } finally {
    await release();
  }
}

/** 0-based position of `key` in the view's rank order, or undefined if absent. */
export async function rankInView(state: StoreState, view: View, key: Buffer): Promise<number | undefined> {
  const suffix = await suffixInView(state, view, key);
  if (suffix === undefined) return undefined;
  return rankOfSuffix(state, view, suffix);
}

/** 0-based position of the index entry `suffix` (which must exist) in the view's rank order. */
async function rankOfSuffix(state: StoreState, view: View, suffix: Buffer): Promise<number> {
  const b = view.fences.blockOf(suffix);
  let at = -1;
  await visitBlocks(state, view, b, (block) => {
    at = block.indexOf(suffix);
    return false;
  });
  if (at < 0) throw corruption(state.location, `a key with a count record has no count index entry (keyspace id ${view.info.id})`);
  return view.fences.prefix[b]! + at;
}

/** A page of up to `n` entries with `key` in the middle (shifted to stay inside the keyspace). */
export async function aroundInView(state: StoreState, view: View, key: Buffer, n: number): Promise<{ offset: number; entries: Entry[] } | undefined> {
  const r = await rankInView(state, view, key);
  if (r === undefined) return undefined;
  const offset = Math.max(0, Math.min(r - Math.floor(n / 2), view.fences.total - n));
  return { offset, entries: await readPage(state, view, offset, n) };
}

/**
 * The index suffix of `key` as of the view, or undefined if absent. In a
 * `--ties first` keyspace it holds the key's apply order, which only its
 * count record has (the count cache holds none of its keys).
 */
async function suffixInView(state: StoreState, view: View, key: Buffer): Promise<Buffer | undefined> {
  if (view.keyAt !== RANK_COUNT_SIZE) {
    const value = state.db.getSync(withPrefix(idPrefix(TAG_COUNT, view.info.id), key), { snapshot: view.snapshot });
    if (value === undefined) return undefined;
    if (value.length !== COUNT_SIZE + ORDER_SIZE) throw corruption(state.location, `count record of ${value.length} bytes in a --ties first keyspace, not ${COUNT_SIZE + ORDER_SIZE}`);
    return indexSuffixFromCount(value, key);
  }
  const count = await countInView(state, view, key);
  if (count === undefined) return undefined;
  const suffix = Buffer.allocUnsafe(RANK_COUNT_SIZE + key.length);
  writeRankCount(suffix, 0, count);
  key.copy(suffix, RANK_COUNT_SIZE);
  return suffix;
}

/**
 * The number of keys with a count of at least `min`: the entries before
 * the first whose rank count is that of min - 1. The fences' prefix sums
 * count every block before the bound's; one block is searched. O(log n + B).
 */
export async function countAtLeastInView(state: StoreState, view: View, min: bigint): Promise<number> {
  const bound = minCountBound(min);
  if (bound === undefined) return view.fences.total;
  if (view.fences.total === 0) return 0;
  const b = view.fences.blockOf(bound);
  let inBlock = 0;
  await visitBlocks(state, view, b, (block) => {
    inBlock = block.lowerBound(bound);
    return false;
  });
  return view.fences.prefix[b]! + inBlock;
}

/**
 * Dense rank of `key` (0-based: the number of distinct counts above its
 * count), or undefined if absent. Walks the block summaries (distinct counts
 * per block, kept with each cached block) from the top to the key's count:
 * O(n/B) summaries plus one block when the blocks are cached; blocks not
 * cached are read once (docs/storage-format.md, "Dense rank").
 */
export async function denseRankInView(state: StoreState, view: View, key: Buffer): Promise<{ rank: number; dense: number; count: bigint } | undefined> {
  const suffix = await suffixInView(state, view, key);
  if (suffix === undefined) return undefined;
  const rank = await rankOfSuffix(state, view, suffix);
  const bound = suffix.subarray(0, RANK_COUNT_SIZE);
  // The block holding the first entry of the key's count.
  const last = view.fences.blockOf(bound);
  let distinct = 0;
  let before: RankBlock | undefined;
  let b = 0;
  await visitBlocks(state, view, 0, (block) => {
    // Blocks before the key's count's block count whole; in that block, the entries above its count.
    const n = b < last ? block.length : block.lowerBound(bound);
    if (n > 0) {
      distinct += block.distinctCounts(n);
      if (before !== undefined && block.continues(before)) distinct--;
    }
    before = block;
    return b++ < last;
  });
  return { rank, dense: distinct, count: readRankCount(suffix, 0) };
}

/** The count of `key` as of the view: from the count cache while the view is current, else read. */
async function countInView(state: StoreState, view: View, key: Buffer): Promise<bigint | undefined> {
  // (Not while an apply is in flight: the cache already holds its counts.)
  if (state.countCache.enabled && state.epoch === view.epoch && state.inflight === undefined && view.info.name.length < PAIR_NAME_LIMIT) {
    const cached = state.countCache.get(pairKeyString(view.info.name, key));
    if (cached !== undefined) return cached;
  }
  // A synchronous point read: it comes from LevelDB's block cache or the OS
  // page cache in microseconds, where a trip through the thread pool costs
  // ~0.1 ms of latency on an otherwise idle server (bench:pages, rank).
  const value = state.db.getSync(withPrefix(idPrefix(TAG_COUNT, view.info.id), key), { snapshot: view.snapshot });
  return value === undefined ? undefined : state.decodeCountValue(value);
}

/**
 * Hand the rank blocks first, first + 1, ... of the view's keyspace to
 * `visit` until it returns false or the blocks run out. Each comes from the
 * block cache while the view is current, or is read from the view's
 * snapshot (one iterator for consecutive misses) and cached if still current.
 */
async function visitBlocks(state: StoreState, view: View, first: number, visit: (block: RankBlock) => boolean): Promise<void> {
  const { fences, info } = view;
  const cache = state.blockCache;
  const prefix = idPrefix(TAG_INDEX, info.id);
  let iterator: KeyIterator<Db, Buffer> | undefined;
  /** The block the iterator stands at the start of, or -1. */
  let at = -1;
  try {
    for (let b = first; b < fences.keys.length; b++) {
      const current = state.epoch === view.epoch;
      let block = current ? cache.get(info.id, fences.keys[b]!) : undefined;
      if (block !== undefined) metrics.rankBlockHits.inc();
      else {
        metrics.rankBlockMisses.inc();
        iterator ??= state.db.keys({ gte: withPrefix(prefix, fences.keys[b]!), lt: prefixEnd(prefix), snapshot: view.snapshot, highWaterMarkBytes: WHOLE_BLOCK_BYTES });
        if (at !== b && at !== -1) iterator.seek(withPrefix(prefix, fences.keys[b]!));
        block = await readBlock(state, iterator, view, b);
        at = b + 1;
        if (state.epoch === view.epoch) cache.set(info.id, fences.keys[b]!, block);
      }
      if (!visit(block)) return;
    }
  } finally {
    await iterator?.close();
  }
}

/** Rank block b, read with `iterator` standing at its first entry; its entry count is checked against its fence. */
async function readBlock(state: StoreState, iterator: KeyIterator<Db, Buffer>, view: View, b: number): Promise<RankBlock> {
  const want = view.fences.counts[b]!;
  const suffixes: Buffer[] = [];
  while (suffixes.length < want) {
    const keys = await iterator.nextv(want - suffixes.length);
    if (keys.length === 0) break;
    for (const key of keys) suffixes.push(key.subarray(PREFIX_SIZE));
  }
  const next = b + 1 < view.fences.keys.length ? view.fences.keys[b + 1]! : undefined;
  // Keys come sorted: the block ends before the next fence iff its last entry does.
  if (suffixes.length !== want || (next !== undefined && want > 0 && compareBytes(suffixes[want - 1]!, next) >= 0)) {
    throw corruption(state.location, `rank fence ${b} counts ${want} entries where the index holds others (keyspace id ${view.info.id}); run a rank index rebuild`);
  }
  return RankBlock.of(suffixes);
}
