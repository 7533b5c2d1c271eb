// Versioning and tunables of the store's database (docs/storage-format.md).

/** Value of the `V` record: the store format and its version. */
export const STORE_FORMAT = 'countd-store';
/** 2 since 0.5.0 (declared keyspaces, deletes); a version 1 database is upgraded in place at open (upgrade.ts). */
export const STORE_VERSION = 2;

/**
 * B: target entries per rank-fence block. Blocks split above 2B and merge
 * below B/2. A page at a deep offset skips up to 2B index entries inside its
 * block; at 128 that keeps a deep 100-entry page within ~1.5-2x of a shallow
 * one (bench:pages), where 512 measured 5x. Memory: ~n/128 fences.
 */
export const DEFAULT_RANK_FENCE_SIZE = 128;
/** Keyspaces whose rank fences stay in memory (LRU). */
export const DEFAULT_RANK_CACHE_KEYSPACES = 1024;
/** Largest accepted rankFenceSize: fence values are unsigned 32-bit counts. */
export const MAX_RANK_FENCE_SIZE = 1 << 20;
/** Longest mark name, in UTF-8 bytes. */
export const MAX_MARK_NAME = 255;
/**
 * Iterator buffer of a page or rank read: big enough that skipping to an
 * offset inside a block (< 2B entries) and reading the page take one native
 * call, not one per 16 KiB (classic-level's default).
 */
export const WHOLE_BLOCK_BYTES = 1 << 20;
/** Entries fetched per native call when scanning the index. */
export const SCAN_CHUNK = 1024;

/**
 * Keyspaces whose rank fences an apply updates at once: a keyspace whose
 * blocks split waits on index reads in LevelDB's thread pool (libuv's 4
 * threads) while others compute.
 */
export const FENCE_CONCURRENCY = 4;

/**
 * Default bytes of the count cache (count-cache.ts): at ~100 bytes an entry,
 * about 650,000 keys.
 */
export const DEFAULT_COUNT_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * Default bytes of the key filter (key-filter.ts): new keys of keyspaces the
 * store created are not read back. 32 MiB holds ~22,000,000 keys at under
 * 1% false positives.
 */
export const DEFAULT_KEY_FILTER_BYTES = 32 * 1024 * 1024;

/**
 * Default bytes of the rank-block cache (block-cache.ts): decoded count-index
 * blocks for pages, ranks and arounds; at ~40 bytes an entry (a 30-byte key),
 * about 800,000 ranked entries.
 */
export const DEFAULT_BLOCK_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * LevelDB tuning (StoreOptions cacheSize and writeBufferSize override the
 * first two): a write buffer that takes an apply of hundreds of thousands
 * of keys without stalling on memtable flushes, and a block cache for the
 * reads of counts and of split blocks.
 */
export const LEVEL_OPTIONS = {
  writeBufferSize: 64 * 1024 * 1024,
  cacheSize: 64 * 1024 * 1024,
  maxFileSize: 8 * 1024 * 1024,
};
/** LevelDB's own lower bound for the write buffer. */
export const MIN_WRITE_BUFFER_SIZE = 64 * 1024;

export function versionValue(version: number = STORE_VERSION): Buffer {
  return Buffer.from(JSON.stringify({ format: STORE_FORMAT, version }), 'utf8');
}
