// Versioning and tunables of the store's database (docs/storage-format.md).

/** Value of the `V` record: the store format and its version. */
export const STORE_FORMAT = 'countd-store';
export const STORE_VERSION = 1;

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

/** LevelDB tuning: bigger write buffer for applies of tens of thousands of keys. */
export const LEVEL_OPTIONS = {
  writeBufferSize: 16 * 1024 * 1024,
  cacheSize: 32 * 1024 * 1024,
  maxFileSize: 8 * 1024 * 1024,
} as const;

export function versionValue(): Buffer {
  return Buffer.from(JSON.stringify({ format: STORE_FORMAT, version: STORE_VERSION }), 'utf8');
}
