// What bounds the memory of the store child of `countd start` (worker +
// reader + Store): every part is a setting, none is the number of keys or
// keyspaces. `npm run bench` compares the child's peak RSS with this sum.
//
// Per-key figures are measured, not guessed (bench:worker's machine): an
// apply of a 500,000-key batch raised a process's RSS by ~740 bytes a key at
// its peak (the summed batch, the record keys built for LevelDB's write batch
// and the write batch itself), and the NEXT batch is summed meanwhile (~230
// bytes a key on the summing thread, ~150 more once handed over): two batches
// live, ~1,120 bytes a key; 1,152 are budgeted. A Node.js process with
// nothing loaded holds ~60 MiB. LevelDB may hold two write buffers (the one
// filling and the one being flushed) besides its block cache.
//
// Since applies overlap (lib/store/inflight-apply.ts), a third batch can be
// partly alive: the LevelDB write batch of the apply being written (its JS
// state is dropped at the hand-over). Measured peaks were 4-7% above this sum
// after a 10 s overload, and far above it after a 20 s one (V8 collects
// late): an estimate to compare with, not a bound (BENCHMARKS.md).

import { DEFAULT_BLOCK_CACHE_BYTES, DEFAULT_COUNT_CACHE_BYTES, LEVEL_OPTIONS } from '../store/schema.js';
import { DEFAULT_PAGE_CACHE_BYTES } from './reader.js';
import { DEFAULT_MAX_BATCH_KEYS } from './worker.js';

export const BATCH_BYTES_PER_KEY = 1152;
export const NODE_BASELINE_BYTES = 64 * 1024 * 1024;

export interface StoreChildSettings {
  cacheSize: number;
  writeBufferSize: number;
  countCacheBytes: number;
  blockCacheBytes: number;
  pageCacheBytes: number;
  maxBatchKeys: number;
}

export const DEFAULT_STORE_CHILD_SETTINGS: StoreChildSettings = {
  cacheSize: LEVEL_OPTIONS.cacheSize,
  writeBufferSize: LEVEL_OPTIONS.writeBufferSize,
  countCacheBytes: DEFAULT_COUNT_CACHE_BYTES,
  blockCacheBytes: DEFAULT_BLOCK_CACHE_BYTES,
  pageCacheBytes: DEFAULT_PAGE_CACHE_BYTES,
  maxBatchKeys: DEFAULT_MAX_BATCH_KEYS,
};

/** The store child's memory budget, in bytes, part by part. */
export function storeChildMemoryBudget(s: StoreChildSettings = DEFAULT_STORE_CHILD_SETTINGS): { total: number; parts: Array<[string, number]> } {
  const parts: Array<[string, number]> = [
    ['Node.js baseline', NODE_BASELINE_BYTES],
    ['LevelDB block cache', s.cacheSize],
    ['LevelDB write buffers (2)', 2 * s.writeBufferSize],
    ['count cache', s.countCacheBytes],
    ['rank-block cache', s.blockCacheBytes],
    ['page cache', s.pageCacheBytes],
    [`worker batches (${s.maxBatchKeys.toLocaleString('en-US')} keys × ${BATCH_BYTES_PER_KEY} B)`, s.maxBatchKeys * BATCH_BYTES_PER_KEY],
  ];
  return { total: parts.reduce((sum, [, bytes]) => sum + bytes, 0), parts };
}
