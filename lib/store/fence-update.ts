// How an apply moves a keyspace's rank fences (rank-fences.ts explains what
// fences are): counts of touched blocks change, blocks below B/2 merge with a
// neighbour, blocks above 2B split, which reads the block's current entries
// from the count index. Part of an apply (apply.ts), under the write mutex.

import { type KeyIterator } from 'classic-level';
import { TAG_FENCE, TAG_INDEX, PREFIX_SIZE, compareBytes, encodeFenceValue, idPrefix, prefixEnd, withPrefix } from './encoding.js';
import { corruption } from './errors.js';
import { Fences, cutBlock, mergeSmallBlocks } from './rank-fences.js';
import { WHOLE_BLOCK_BYTES } from './schema.js';
import { latin1, type BatchOp, type Db, type StoreState } from './state.js';

/** Index suffixes an apply adds to and removes from one keyspace. */
export interface IndexChanges {
  inserted: Buffer[];
  removed: Buffer[];
}

/**
 * New fences after `changes`, pushing the fence writes onto `ops` and the
 * fence keys (of `before`) whose blocks change onto `touched`.
 */
export async function updateFences(state: StoreState, id: number, before: Fences, changes: IndexChanges, ops: BatchOp[], touched: Buffer[]): Promise<Fences> {
  const { inserted, removed } = changes;
  const counts = before.counts.slice();
  const insertBlock = new Int32Array(inserted.length);
  const removeBlock = new Int32Array(removed.length);
  /** Old blocks whose entries this apply changes (an entry in or out, or a merge). */
  const changedBlocks = new Uint8Array(before.keys.length);
  for (let i = 0; i < removed.length; i++) counts[(removeBlock[i] = before.blockOf(removed[i]))]--;
  for (let i = 0; i < inserted.length; i++) counts[(insertBlock[i] = before.blockOf(inserted[i]))]++;
  for (let i = 0; i < removed.length; i++) changedBlocks[removeBlock[i]!] = 1;
  for (let i = 0; i < inserted.length; i++) changedBlocks[insertBlock[i]!] = 1;

  const fencePrefix = idPrefix(TAG_FENCE, id);
  const keys: Buffer[] = [];
  const newCounts: number[] = [];
  const writes: Array<[Buffer, number]> = [];
  if (!before.persisted) for (const k of before.diskKeys!) ops.push({ type: 'del', key: withPrefix(fencePrefix, k) });
  const merged = mergeSmallBlocks(before.keys, counts, state.minBlock);
  // Splits need the changes per block: bucket them once, only if some block splits.
  let buckets: { inserted: Buffer[][]; removed: Buffer[][] } | undefined;
  const indexPrefix = idPrefix(TAG_INDEX, id);
  let reader: KeyIterator<Db, Buffer> | undefined;
  try {
    for (const block of merged) {
      for (let i = block.first + 1; i <= block.last; i++) ops.push({ type: 'del', key: withPrefix(fencePrefix, before.keys[i]) });
      if (block.first !== block.last) changedBlocks.fill(1, block.first, block.last + 1);
      if (block.count <= 2 * state.fenceSize) {
        keys.push(block.key);
        newCounts.push(block.count);
        if (!before.persisted || block.first !== block.last || block.count !== before.counts[block.first]) writes.push([block.key, block.count]);
        continue;
      }
      buckets ??= {
        inserted: bucketByBlock(inserted, insertBlock, before.keys.length),
        removed: bucketByBlock(removed, removeBlock, before.keys.length),
      };
      // One iterator, seeked from split to split: a bulk apply may split
      // thousands of blocks. Opened only if a split block has entries on disk.
      const openReader = (): KeyIterator<Db, Buffer> => (reader ??= state.db.keys({ gte: indexPrefix, lt: prefixEnd(indexPrefix), highWaterMarkBytes: WHOLE_BLOCK_BYTES }));
      const entries = await blockEntries(openReader, indexPrefix, before, block.first, block.last, buckets.inserted, buckets.removed);
      if (entries.length !== block.count) {
        throw corruption(state.location, `rank fence counts ${block.count} entries where the index holds ${entries.length} (keyspace id ${id}); run a rank index rebuild`);
      }
      // New fence keys are slices of the apply's keys: the Fences built below copies them into memory of its own (rank-fences.ts, packed).
      for (const piece of cutBlock(block.key, entries.length, state.fenceSize, (start) => entries[start]!)) {
        keys.push(piece.key);
        newCounts.push(piece.count);
        writes.push([piece.key, piece.count]);
      }
    }
  } finally {
    await reader?.close();
  }
  for (const [key, count] of writes) ops.push({ type: 'put', key: withPrefix(fencePrefix, key), value: encodeFenceValue(count) });
  for (let b = 0; b < changedBlocks.length; b++) if (changedBlocks[b] === 1) touched.push(before.keys[b]!);
  return new Fences(keys, newCounts);
}

/** suffixes[i] belongs to block blocks[i]: group them per block. */
function bucketByBlock(suffixes: Buffer[], blocks: Int32Array, count: number): Buffer[][] {
  const out: Buffer[][] = Array.from({ length: count }, () => []);
  for (let i = 0; i < suffixes.length; i++) out[blocks[i]].push(suffixes[i]);
  return out;
}

/**
 * The index suffixes of blocks first..last as they will be after this
 * apply: on disk (read with `reader`, seeked to the block), minus removed,
 * plus inserted.
 */
async function blockEntries(
  openReader: () => KeyIterator<Db, Buffer>,
  indexPrefix: Buffer,
  fences: Fences,
  first: number,
  last: number,
  inserted: Buffer[][],
  removed: Buffer[][],
): Promise<Buffer[]> {
  const gone = new Set<string>();
  const added: Buffer[] = [];
  let onDisk = 0;
  for (let b = first; b <= last; b++) {
    for (const s of removed[b]) gone.add(latin1(s));
    for (const s of inserted[b]) added.push(s);
    onDisk += fences.counts[b];
  }
  added.sort(compareBytes);
  const out: Buffer[] = [];
  let a = 0;
  let read = 0;
  if (onDisk > 0) {
    const reader = openReader();
    const end = last + 1 < fences.keys.length ? withPrefix(indexPrefix, fences.keys[last + 1]) : prefixEnd(indexPrefix);
    reader.seek(withPrefix(indexPrefix, fences.keys[first]));
    scan: while (read < onDisk) {
      const keys = await reader.nextv(onDisk - read);
      if (keys.length === 0) break;
      // Keys come sorted: if the last is inside the block, all are.
      const allInside = compareBytes(keys[keys.length - 1]!, end) < 0;
      for (const key of keys) {
        if (!allInside && compareBytes(key, end) >= 0) break scan; // fewer entries than the fences say: caught by the caller
        read++;
        const suffix = key.subarray(PREFIX_SIZE);
        if (gone.size > 0 && gone.has(latin1(suffix))) continue;
        while (a < added.length && compareBytes(added[a]!, suffix) < 0) out.push(added[a++]!);
        out.push(suffix);
      }
    }
  }
  while (a < added.length) out.push(added[a++]);
  return out;
}
