// Store: ranked counters in one classic-level (LevelDB) database. The record
// layout is specified in docs/storage-format.md; encoding.ts builds the bytes.
//
// Concurrency: the worker (apply) and the reader share one Store in one
// process. Writes (apply, deleteKeyspace, rebuildRankIndex) run one at a time
// (a promise-chain mutex). Each write commits ONE LevelDB batch and then swaps
// its in-memory state (directory, rank fences, count cache: count-cache.ts);
// while that happens `writing` is set. One overlap: an apply releases the
// mutex once its batch is handed to LevelDB, so the next apply prepares its
// batch while that one is written and fsynced (inflight-apply.ts); every
// other write first waits for the apply in flight. A read waits until `writing` is clear,
// then in the same synchronous step captures the in-memory state and a
// LevelDB snapshot, so everything it reads afterwards belongs to one state
// between two writes. Readers never block writers for longer than that
// synchronous step.

import { ClassicLevel, type ChainedBatch, type KeyIterator } from 'classic-level';
import { CountdError, ErrorCodes, invalidArgument } from '../errors.js';
import { checkFieldSizes, nameBytes, type FieldSizes } from '../protocol/fields.js';
import { INT64_MAX, INT64_MIN } from '../protocol/write-frame.js';
import { silentLogger, type Logger } from '../util/log.js';
import { metrics } from '../metrics.js';
import {
  COUNT_SIZE,
  EMPTY,
  compareBytes,
  FENCE_VALUE_SIZE,
  KEYSPACE_VALUE_SIZE,
  NEXT_ID_KEY,
  PREFIX_SIZE,
  RANK_COUNT_SIZE,
  TAG_COUNT,
  TAG_DEAD,
  TAG_FENCE,
  TAG_INDEX,
  TAG_KEYSPACE,
  TAG_MARK,
  VERSION_KEY,
  decodeIndexSuffix,
  encodeCount,
  encodeFenceValue,
  encodeKeyspaceValue,
  idPrefix,
  prefixEnd,
  readId,
  taggedName,
  withPrefix,
  writeId,
  readRankCount,
  writeRankCount,
} from './encoding.js';
import { corruption, translateDbError } from './errors.js';
import { IncrementBatch, PAIR_LENGTHS_SIZE, assemblePairKey, type PendingIncrement } from './increment-batch.js';
import { BlockCache, RankBlock } from './block-cache.js';
import { CountCache } from './count-cache.js';
import { InflightApply, type DirRecord } from './inflight-apply.js';
import { Lru } from './lru.js';
import { Fences, cutBlock, mergeSmallBlocks } from './rank-fences.js';
import {
  DEFAULT_BLOCK_CACHE_BYTES,
  DEFAULT_COUNT_CACHE_BYTES,
  DEFAULT_RANK_CACHE_KEYSPACES,
  DEFAULT_RANK_FENCE_SIZE,
  FENCE_CONCURRENCY,
  LEVEL_OPTIONS,
  MAX_MARK_NAME,
  MAX_RANK_FENCE_SIZE,
  MIN_WRITE_BUFFER_SIZE,
  SCAN_CHUNK,
  STORE_FORMAT,
  WHOLE_BLOCK_BYTES,
  STORE_VERSION,
  versionValue,
} from './schema.js';

export { IncrementBatch } from './increment-batch.js';

export interface Entry {
  key: Buffer;
  count: bigint;
}

export interface Mark {
  name: string;
  value: Buffer;
}

export interface StoreOptions {
  /** Directory of the LevelDB database (`<data-dir>/db`). */
  location: string;
  sizes: FieldSizes;
  logger?: Logger;
  /** B: target entries per rank-fence block (default 128). */
  rankFenceSize?: number;
  /** Keyspaces whose rank fences stay in memory (default 1024). */
  rankCacheKeyspaces?: number;
  /** fsync every write batch (default true: the worker recycles a commit log once its apply returns). */
  sync?: boolean;
  /**
   * Bytes (estimated) of recently written counts kept in memory, so applies
   * skip reading them back (default 64 MiB; 0 disables).
   */
  countCacheBytes?: number;
  /**
   * Bytes (estimated) of decoded count-index blocks kept in memory for
   * page, rank and around (block-cache.ts; default 32 MiB; 0 disables).
   */
  blockCacheBytes?: number;
  /** LevelDB block cache, bytes (default 64 MiB). */
  cacheSize?: number;
  /** LevelDB write buffer (memtable), bytes (default 64 MiB). Up to about twice this is in memory. */
  writeBufferSize?: number;
}

/** What Store.tally read: see there. */
export interface KeyspaceTally {
  /** Index entries read. */
  keys: number;
  /** Exact sum of their counts. */
  sum: bigint;
  /** Highest and lowest count (undefined when empty). */
  max: bigint | undefined;
  min: bigint | undefined;
}

export interface ApplyResult {
  /** Distinct (keyspace, key) pairs applied. */
  keys: number;
  /** Keys whose count was clamped to the signed 64-bit range. */
  saturated: number;
}

type KeyspaceInfo = DirRecord;

type Db = ClassicLevel<Buffer, Buffer>;
type Snapshot = ReturnType<Db['snapshot']>;
type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };
type Chained = ChainedBatch<Db, Buffer, Buffer>;
/** What a committed apply swaps into memory for one keyspace. */
type StateSwap = { ks: string; info: KeyspaceInfo; fences: Fences; touched: Buffer[] };

/** What a read works on: one consistent state between two writes. */
interface View {
  info: KeyspaceInfo;
  fences: Fences;
  snapshot: Snapshot;
  /** Store epoch when captured: in-memory caches answer for the view only while it is unchanged. */
  epoch: number;
}

/** One keyspace of an apply: its increments, then its index changes and fence writes. */
interface ApplyGroup {
  /** latin1 name: the directory key. */
  ks: string;
  /** A copy, swapped into the directory once committed. */
  info: KeyspaceInfo;
  /**
   * The directory record as committed before this apply (undefined if
   * created). The fences on disk add up to ITS size: `info.size` already
   * counts the keys this apply creates.
   */
  committed: KeyspaceInfo | undefined;
  /** New in this apply: a fresh id, so no record of it exists yet. */
  created: boolean;
  items: PendingIncrement[];
  /** Index suffixes added and removed by this apply. */
  inserted: Buffer[];
  removed: Buffer[];
  fenceOps: BatchOp[];
  fences: Fences | undefined;
  /** Fence keys (of the fences before this apply) whose blocks this apply changes: see block-cache.ts. */
  touched: Buffer[];
}

/**
 * Run task(0..count-1) with at most `limit` in flight. Waits for every started
 * task even when one fails (so none outlives the caller's mutex), then
 * throws the first error.
 */
async function runLimited(count: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (failure === undefined && next < count) {
      const i = next++;
      try {
        await task(i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
  if (failure !== undefined) throw failure.error;
}

/** `C id key` of a pending increment, its key copied from the batch's key bytes. */
function countKeyOf(prefix: Buffer, keyBytes: Buffer, p: PendingIncrement): Buffer {
  const countKey = Buffer.allocUnsafe(PREFIX_SIZE + p.keyLength);
  for (let i = 0; i < PREFIX_SIZE; i++) countKey[i] = prefix[i]!;
  keyBytes.copy(countKey, PREFIX_SIZE, p.keyStart, p.keyStart + p.keyLength);
  return countKey;
}

/** `I id rankcount key` for a count known as a bigint (from the count cache), the key taken from its count key. */
function indexKeyOf(indexPrefix: Buffer, count: bigint, countKey: Buffer): Buffer {
  const value = Buffer.allocUnsafe(COUNT_SIZE);
  value.writeBigInt64BE(count, 0);
  return indexKeyFromCountKey(indexPrefix, value, countKey);
}

/**
 * `I id rankcount key` from a count value's bytes, as encoding.ts's
 * indexKeyFromCount, with the key read in place from its count key (no view
 * object per key).
 */
function indexKeyFromCountKey(indexPrefix: Buffer, countValue: Buffer, countKey: Buffer): Buffer {
  const keyLength = countKey.length - PREFIX_SIZE;
  const buf = Buffer.allocUnsafe(PREFIX_SIZE + RANK_COUNT_SIZE + keyLength);
  for (let i = 0; i < PREFIX_SIZE; i++) buf[i] = indexPrefix[i]!;
  buf[PREFIX_SIZE] = countValue[0]! ^ 0x7f;
  for (let i = 1; i < RANK_COUNT_SIZE; i++) buf[PREFIX_SIZE + i] = ~countValue[i]! & 0xff;
  if (keyLength <= 64) for (let i = 0; i < keyLength; i++) buf[PREFIX_SIZE + RANK_COUNT_SIZE + i] = countKey[PREFIX_SIZE + i]!;
  else countKey.copy(buf, PREFIX_SIZE + RANK_COUNT_SIZE, PREFIX_SIZE);
  return buf;
}

/** suffixes[i] belongs to block blocks[i]: group them per block. */
function bucketByBlock(suffixes: Buffer[], blocks: Int32Array, count: number): Buffer[][] {
  const out: Buffer[][] = Array.from({ length: count }, () => []);
  for (let i = 0; i < suffixes.length; i++) out[blocks[i]].push(suffixes[i]);
  return out;
}

function latin1(buf: Buffer): string {
  return buf.toString('latin1');
}

function checkBytes(value: number | undefined, fallback: number, what: string, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) throw invalidArgument(`${what} must be an integer of at least ${min}, got ${String(value)}`);
  return value;
}

function checkCount(value: number | bigint, what: string): number {
  if (typeof value === 'bigint') {
    if (value < 0n) throw invalidArgument(`${what} must not be negative, got ${value}`);
    return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw invalidArgument(`${what} must be a non-negative integer, got ${String(value)}`);
  }
  return Math.min(value, Number.MAX_SAFE_INTEGER);
}

export class Store {
  readonly location: string;
  readonly sizes: FieldSizes;
  private readonly db: Db;
  private readonly logger: Logger;
  private readonly fenceSize: number;
  private readonly minBlock: number;
  private readonly sync: boolean;
  /** LevelDB's open options, for reopen(). */
  private readonly levelOptions: { cacheSize: number; writeBufferSize: number };
  /** latin1 keyspace name -> directory record. Every keyspace is here (one small record each). */
  private readonly dir = new Map<string, KeyspaceInfo>();
  private readonly fenceCache: Lru<number, Fences>;
  private readonly countCache: CountCache;
  private readonly blockCache: BlockCache;
  private nextId = 1;
  /** Bumped by every committed write: a fence load from an older snapshot is not cached. */
  private epoch = 0;

  /**
   * A number that grows with every committed write. A result computed after
   * reading `version` == v is still exact while `version` is still v: the
   * reader's page cache relies on this (lib/roles/read/page-cache.ts).
   */
  get version(): number {
    return this.epoch;
  }
  /** Set while a write batch is in flight and its in-memory state not yet swapped in. */
  private writing: Promise<void> | null = null;
  private mutex: Promise<unknown> = Promise.resolve();
  /** The apply whose write is in flight (handed to LevelDB, mutex released), if any. */
  private inflight: InflightApply | undefined;
  /** Applies called and not yet handed to LevelDB: see `preparing`. */
  private applyQueue = 0;
  /** Clearing of deleted keyspaces' records, in the background. */
  private collecting: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(db: Db, options: Required<Omit<StoreOptions, 'logger'>> & { logger: Logger }) {
    this.db = db;
    this.location = options.location;
    this.sizes = options.sizes;
    this.logger = options.logger;
    this.fenceSize = options.rankFenceSize;
    this.minBlock = Math.max(1, Math.floor(options.rankFenceSize / 2));
    this.sync = options.sync;
    this.levelOptions = { cacheSize: options.cacheSize, writeBufferSize: options.writeBufferSize };
    this.fenceCache = new Lru(options.rankCacheKeyspaces);
    this.countCache = new CountCache(options.countCacheBytes);
    this.blockCache = new BlockCache(options.blockCacheBytes);
  }

  /** Open (creating if missing) the database. COUNTD_LOCKED if another process holds it. */
  static async open(options: StoreOptions): Promise<Store> {
    if (options === null || typeof options !== 'object') throw invalidArgument('store options must be an object');
    if (typeof options.location !== 'string' || options.location === '') throw invalidArgument('store location must be a non-empty string');
    const sizes = checkFieldSizes(options.sizes);
    const rankFenceSize = options.rankFenceSize ?? DEFAULT_RANK_FENCE_SIZE;
    if (!Number.isInteger(rankFenceSize) || rankFenceSize < 2 || rankFenceSize > MAX_RANK_FENCE_SIZE) {
      throw invalidArgument(`rankFenceSize must be an integer from 2 to ${MAX_RANK_FENCE_SIZE}, got ${String(rankFenceSize)}`);
    }
    const rankCacheKeyspaces = options.rankCacheKeyspaces ?? DEFAULT_RANK_CACHE_KEYSPACES;
    if (!Number.isInteger(rankCacheKeyspaces) || rankCacheKeyspaces < 1) {
      throw invalidArgument(`rankCacheKeyspaces must be a positive integer, got ${String(rankCacheKeyspaces)}`);
    }
    const countCacheBytes = checkBytes(options.countCacheBytes, DEFAULT_COUNT_CACHE_BYTES, 'countCacheBytes', 0);
    const blockCacheBytes = checkBytes(options.blockCacheBytes, DEFAULT_BLOCK_CACHE_BYTES, 'blockCacheBytes', 0);
    const cacheSize = checkBytes(options.cacheSize, LEVEL_OPTIONS.cacheSize, 'cacheSize', 0);
    const writeBufferSize = checkBytes(options.writeBufferSize, LEVEL_OPTIONS.writeBufferSize, 'writeBufferSize', MIN_WRITE_BUFFER_SIZE);
    const location = options.location;
    const db: Db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    try {
      await db.open({ createIfMissing: true, ...LEVEL_OPTIONS, cacheSize, writeBufferSize });
    } catch (err) {
      throw translateDbError(err, 'open', location);
    }
    const store = new Store(db, {
      location,
      sizes,
      logger: options.logger ?? silentLogger,
      rankFenceSize,
      rankCacheKeyspaces,
      sync: options.sync ?? true,
      countCacheBytes,
      blockCacheBytes,
      cacheSize,
      writeBufferSize,
    });
    try {
      await store.load();
    } catch (err) {
      await db.close().catch(() => {});
      throw translateDbError(err, 'open', location);
    }
    return store;
  }

  // ---------------------------------------------------------------- writes

  /**
   * Apply every increment of `batch` and write `marks`, in ONE atomic batch
   * with the counts, index entries, sizes and rank fences. The caller must not
   * touch `batch` until the promise settles.
   */
  async apply(batch: IncrementBatch, marks: Mark[] = []): Promise<ApplyResult> {
    this.checkOpen();
    if (!(batch instanceof IncrementBatch)) throw invalidArgument('apply needs an IncrementBatch');
    const markOps = this.markOps(marks);
    const keySize = this.sizes.keySize;
    // One memchr over every key's bytes; per-pair checks only if some key holds a NUL.
    const someNul = batch.keyBytes.indexOf(0) !== -1;
    for (const group of batch.keyspaces()) {
      nameBytes(group.name, 'keyspace', this.sizes.keyspaceSize);
      const keyOffset = PAIR_LENGTHS_SIZE + group.name.length;
      for (const p of group.items) {
        const length = p.keyLength;
        if (length === 0) throw invalidArgument('key must not be empty');
        if (length > keySize) throw invalidArgument(`key is ${length} bytes, above the field size of ${keySize}`);
        if (someNul && p.pair.indexOf('\0', keyOffset) !== -1) throw invalidArgument('key must not contain a NUL byte');
        if (typeof p.delta !== 'bigint') throw invalidArgument('increments must be bigints');
      }
    }
    this.applyQueue++;
    let written: Promise<ApplyResult>;
    try {
      ({ written } = await this.exclusive(() => this.applyInternal(batch, markOps), true));
    } finally {
      this.applyQueue--;
    }
    return written;
  }

  /**
   * An apply is being prepared (counts read, its batch built) or waits to
   * be: an apply called now would wait for that. Once an apply's batch is
   * being written, this is false and the next apply's preparation overlaps
   * that write (the worker hands its next batch over then).
   */
  get preparing(): boolean {
    return this.applyQueue > 0;
  }

  async getMark(name: string): Promise<Buffer | undefined> {
    this.checkOpen();
    const key = taggedName(TAG_MARK, this.markName(name));
    try {
      return await this.db.get(key);
    } catch (err) {
      throw translateDbError(err, 'read mark', this.location);
    }
  }

  /**
   * Create keyspace `keyspace` holding exactly `keys[i]` with count
   * `counts[i]` (at least one key), and write `marks`, in ONE atomic batch.
   * The keyspace must not exist. A bulk load for `countd migrate`: nothing
   * is read, no IncrementBatch is built, and the rank index and its fences
   * are written in one sorted pass. The arrays are the caller's again once
   * this settles.
   */
  async createKeyspace(keyspace: string | Uint8Array, keys: Buffer[], counts: bigint[], marks: Mark[] = []): Promise<void> {
    this.checkOpen();
    const name = nameBytes(keyspace, 'keyspace', this.sizes.keyspaceSize);
    if (!Array.isArray(keys) || !Array.isArray(counts) || keys.length !== counts.length || keys.length === 0) {
      throw invalidArgument('createKeyspace needs non-empty arrays of keys and counts of one length');
    }
    const keySize = this.sizes.keySize;
    const seen = new Set<string>();
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      if (!(key instanceof Uint8Array) || key.length === 0 || key.length > keySize) throw invalidArgument(`key ${i} must be a Buffer of 1 to ${keySize} bytes`);
      if (key.indexOf(0) !== -1) throw invalidArgument('key must not contain a NUL byte');
      const count = counts[i];
      if (typeof count !== 'bigint' || count > INT64_MAX || count < INT64_MIN) throw invalidArgument(`count ${i} must be a signed 64-bit bigint`);
      const id = latin1(key as Buffer);
      if (seen.has(id)) throw invalidArgument(`key ${i} appears twice`);
      seen.add(id);
    }
    const markOps = this.markOps(marks);
    return this.exclusive(() => this.createKeyspaceInternal(name, keys, counts, markOps));
  }

  /** Delete a keyspace and write `marks`, atomically. Its records are cleared in the background. */
  async deleteKeyspace(keyspace: string | Uint8Array, marks: Mark[] = []): Promise<void> {
    this.checkOpen();
    const name = nameBytes(keyspace, 'keyspace', this.sizes.keyspaceSize);
    const markOps = this.markOps(marks);
    return this.exclusive(() => this.deleteKeyspaceInternal(name, markOps));
  }

  /** Verify the persisted rank fences of a keyspace against a full scan of its count index. */
  async checkRankIndex(keyspace: string | Uint8Array): Promise<boolean> {
    this.checkOpen();
    const name = nameBytes(keyspace, 'keyspace', this.sizes.keyspaceSize);
    return this.exclusive(() => this.checkRankIndexInternal(name));
  }

  /** Rebuild the rank fences of a keyspace from its count index. */
  async rebuildRankIndex(keyspace: string | Uint8Array): Promise<void> {
    this.checkOpen();
    const name = nameBytes(keyspace, 'keyspace', this.sizes.keyspaceSize);
    return this.exclusive(() => this.rebuildRankIndexInternal(name));
  }

  // ---------------------------------------------------------------- reads

  /** `length` entries from rank position `offset`, in rank order. */
  async page(keyspace: string | Uint8Array, offset: number | bigint, length: number): Promise<Entry[]> {
    this.checkOpen();
    const name = nameBytes(keyspace, 'keyspace', this.sizes.keyspaceSize);
    const off = checkCount(offset, 'offset');
    const len = checkCount(length, 'length');
    return this.withView(name, [], (view) => this.pageInternal(view, off, len));
  }

  /** Every entry from rank position `offset` on, in rank order, in constant memory, from one snapshot. */
  async *iterate(keyspace: string | Uint8Array, options: { offset?: number | bigint } = {}): AsyncIterable<Entry> {
    this.checkOpen();
    const name = nameBytes(keyspace, 'keyspace', this.sizes.keyspaceSize);
    const off = checkCount(options?.offset ?? 0, 'offset');
    const view = await this.openView(name);
    if (view === undefined) return;
    try {
      if (off >= view.fences.total) return;
      const it = this.blockIterator(view, off);
      try {
        let skip = it.skip;
        for (;;) {
          const keys = await it.iterator.nextv(SCAN_CHUNK);
          if (keys.length === 0) return;
          for (let i = skip; i < keys.length; i++) yield decodeIndexSuffix(keys[i].subarray(PREFIX_SIZE));
          skip = Math.max(0, skip - keys.length);
        }
      } finally {
        await it.iterator.close();
      }
    } catch (err) {
      throw translateDbError(err, 'iterate', this.location);
    } finally {
      await view.snapshot.close();
    }
  }

  /**
   * The number of keys and the exact sum of the counts of a keyspace, read
   * from its count index in one snapshot: every entry is read (a scan, not
   * the directory's size), SCAN_CHUNK keys a native call, without an Entry
   * or a bigint per key (about half the cost of iterate). `max` and `min`
   * are the first and last counts in rank order. For `countd migrate`'s
   * verification (docs/legacy-format.md).
   */
  async tally(keyspace: string | Uint8Array): Promise<KeyspaceTally> {
    this.checkOpen();
    const name = nameBytes(keyspace, 'keyspace', this.sizes.keyspaceSize);
    const empty: KeyspaceTally = { keys: 0, sum: 0n, max: undefined, min: undefined };
    return this.withView(name, empty, async (view) => {
      const prefix = idPrefix(TAG_INDEX, view.info.id);
      const it = this.db.keys({ gte: prefix, lt: prefixEnd(prefix), snapshot: view.snapshot, highWaterMarkBytes: WHOLE_BLOCK_BYTES });
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
    });
  }

  async get(keyspace: string | Uint8Array, key: string | Uint8Array): Promise<bigint | undefined> {
    this.checkOpen();
    const name = nameBytes(keyspace, 'keyspace', this.sizes.keyspaceSize);
    const k = nameBytes(key, 'key', this.sizes.keySize);
    await this.settled();
    const info = this.dir.get(latin1(name));
    if (info === undefined) return undefined;
    try {
      const value = await this.db.get(withPrefix(idPrefix(TAG_COUNT, info.id), k));
      return value === undefined ? undefined : this.decodeCountValue(value);
    } catch (err) {
      throw translateDbError(err, 'get', this.location);
    }
  }

  async size(keyspace: string | Uint8Array): Promise<number> {
    this.checkOpen();
    const name = nameBytes(keyspace, 'keyspace', this.sizes.keyspaceSize);
    await this.settled();
    return this.dir.get(latin1(name))?.size ?? 0;
  }

  /** Every keyspace with its size, sorted by name bytes. */
  async keyspaces(): Promise<Array<{ name: Buffer; size: number }>> {
    this.checkOpen();
    await this.settled();
    const list = [...this.dir.values()].map((info) => ({ name: info.name, size: info.size }));
    return list.sort((a, b) => a.name.compare(b.name));
  }

  /** 0-based position of `key` in rank order, or undefined if absent. */
  async rank(keyspace: string | Uint8Array, key: string | Uint8Array): Promise<number | undefined> {
    this.checkOpen();
    const name = nameBytes(keyspace, 'keyspace', this.sizes.keyspaceSize);
    const k = nameBytes(key, 'key', this.sizes.keySize);
    return this.withView(name, undefined, (view) => this.rankInternal(view, k));
  }

  /** A page of up to `n` entries with `key` in the middle (shifted to stay inside the keyspace). */
  async around(keyspace: string | Uint8Array, key: string | Uint8Array, n: number): Promise<{ offset: number; entries: Entry[] } | undefined> {
    this.checkOpen();
    const name = nameBytes(keyspace, 'keyspace', this.sizes.keyspaceSize);
    const k = nameBytes(key, 'key', this.sizes.keySize);
    const len = checkCount(n, 'n');
    return this.withView(name, undefined, async (view) => {
      const r = await this.rankInternal(view, k);
      if (r === undefined) return undefined;
      const offset = Math.max(0, Math.min(r - Math.floor(len / 2), view.fences.total - len));
      return { offset, entries: await this.pageInternal(view, offset, len) };
    });
  }

  /**
   * Close and reopen the database, then reload what the store keeps in
   * memory. LevelDB keeps some write errors (a failed compaction or sync, as
   * on a full disk) until it is reopened: the worker reopens before retrying
   * after one. Reads that start meanwhile wait; reads in flight on the old
   * handle fail (the reader closes their connections).
   */
  async reopen(): Promise<void> {
    this.checkOpen();
    await this.exclusive(async () => {
      let release!: () => void;
      this.writing = new Promise((resolve) => (release = resolve));
      try {
        await this.collecting;
        await this.db.close().catch(() => {}); // a close that fails leaves it closed: open again below
        try {
          await this.db.open({ createIfMissing: false, ...LEVEL_OPTIONS, ...this.levelOptions });
        } catch (err) {
          throw translateDbError(err, 'reopen', this.location);
        }
        // A failed write may have committed after all (its sync failed, not its write): forget everything.
        this.dir.clear();
        this.fenceCache.clear();
        this.countCache.clear();
        this.blockCache.clear();
        this.epoch++;
        try {
          await this.load();
        } catch (err) {
          throw translateDbError(err, 'reopen', this.location);
        }
      } finally {
        this.writing = null;
        release();
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.mutex.catch(() => {});
    await this.inflight?.done.catch(() => {});
    await this.collecting;
    try {
      await this.db.close();
    } catch (err) {
      throw translateDbError(err, 'close', this.location);
    }
  }

  // ---------------------------------------------------------------- internals: open

  private async load(): Promise<void> {
    const version = await this.db.get(VERSION_KEY);
    if (version === undefined) {
      const any = await this.db.keys({ limit: 1 }).all();
      if (any.length > 0) throw corruption(this.location, 'records without a format record (V)');
      const next = Buffer.alloc(8);
      writeId(next, 0, 1);
      await this.db.batch([{ type: 'put', key: VERSION_KEY, value: versionValue() }, { type: 'put', key: NEXT_ID_KEY, value: next }], { sync: this.sync });
    } else {
      let parsed: { format?: unknown; version?: unknown };
      try {
        parsed = JSON.parse(version.toString('utf8'));
      } catch {
        throw corruption(this.location, 'unreadable format record (V)');
      }
      if (parsed.format !== STORE_FORMAT) throw corruption(this.location, `format record names ${String(parsed.format)}, not ${STORE_FORMAT}`);
      if (parsed.version !== STORE_VERSION) {
        throw new CountdError(ErrorCodes.DATA_DIR_MISMATCH, `database ${this.location} has store format version ${String(parsed.version)}; this countd reads version ${STORE_VERSION}`);
      }
    }
    const next = await this.db.get(NEXT_ID_KEY);
    if (next === undefined || next.length !== 8) throw corruption(this.location, 'missing or malformed next-id record (N)');
    this.nextId = readId(next, 0);
    const start = Buffer.from([TAG_KEYSPACE]);
    for await (const [key, value] of this.db.iterator({ gte: start, lt: prefixEnd(start) })) {
      if (value.length !== KEYSPACE_VALUE_SIZE || key.length < 2) throw corruption(this.location, `malformed keyspace record (${value.length} value bytes)`);
      const name = Buffer.from(key.subarray(1));
      const id = readId(value, 0);
      if (id >= this.nextId) throw corruption(this.location, `keyspace id ${id} is not below the next id ${this.nextId}`);
      this.dir.set(latin1(name), { name, id, size: readId(value, 8) });
    }
    const dead = Buffer.from([TAG_DEAD]);
    for await (const key of this.db.keys({ gte: dead, lt: prefixEnd(dead) })) {
      if (key.length === PREFIX_SIZE) this.collect(readId(key, 1));
    }
  }

  // ---------------------------------------------------------------- internals: writes

  /**
   * Run `fn` alone among writes. Only an apply (`overlapsInflight`) may start
   * while the apply before it is still being written: it prepares on top of
   * it (inflight-apply.ts). Every other write waits for that write first.
   */
  private exclusive<T>(fn: () => Promise<T>, overlapsInflight = false): Promise<T> {
    const run = this.mutex.then(async () => {
      if (!overlapsInflight) await this.inflight?.done.catch(() => {});
      return fn();
    });
    this.mutex = run.catch(() => {});
    return run;
  }

  /**
   * Write one batch (operations, or a chained batch already filled); swap
   * in-memory state only once it is committed. The batch is closed either way.
   */
  private async commit(ops: BatchOp[] | Chained, onCommitted: () => void, what: string): Promise<void> {
    let release!: () => void;
    this.writing = new Promise((resolve) => (release = resolve));
    try {
      // A chained batch: abstract-level's array form clones every operation
      // and costs ~10x more per operation (measured: 300,000 puts, 10 s vs 1 s).
      let batch: Chained;
      if (Array.isArray(ops)) {
        batch = this.db.batch();
        try {
          for (const op of ops) {
            if (op.type === 'put') batch.put(op.key, op.value);
            else batch.del(op.key);
          }
        } catch (err) {
          await batch.close();
          throw err;
        }
      } else {
        batch = ops;
      }
      await batch.write({ sync: this.sync });
      onCommitted();
      this.epoch++;
    } catch (err) {
      throw translateDbError(err, what, this.location);
    } finally {
      this.writing = null;
      release();
    }
  }

  /** Prepare an apply and hand its batch to LevelDB; `written` settles when it is committed (or failed). */
  private async applyInternal(batch: IncrementBatch, markOps: BatchOp[]): Promise<{ written: Promise<ApplyResult> }> {
    try {
      return await this.applyUnsafe(batch, markOps);
    } catch (err) {
      throw translateDbError(err, 'apply', this.location);
    }
  }

  private async applyUnsafe(batch: IncrementBatch, markOps: BatchOp[]): Promise<{ written: Promise<ApplyResult> }> {
    // An apply still being written: this one prepares on top of its results (inflight-apply.ts).
    const prev = this.inflight;
    if (prev !== undefined) metrics.appliesOverlapped.inc();
    // The batch arrives grouped by keyspace; new keyspaces get ids now, committed with the batch.
    const groups: ApplyGroup[] = [];
    let nextId = prev?.nextIdAfter ?? this.nextId;
    for (const pending of batch.keyspaces()) {
      // After `prev` commits, the directory holds these very records (prev.dirAfter's objects).
      const known = prev?.dirAfter.get(pending.id) ?? this.dir.get(pending.id);
      groups.push(
        known
          ? { ks: pending.id, info: { ...known }, committed: known, created: false, items: pending.items, inserted: [], removed: [], fenceOps: [], fences: undefined, touched: [] }
          : { ks: pending.id, info: { name: pending.name, id: nextId++, size: 0 }, committed: undefined, created: true, items: pending.items, inserted: [], removed: [], fenceOps: [], fences: undefined, touched: [] },
      );
    }

    // Current counts come from the count cache (or, without one, from the
    // apply in flight), or are known absent (a keyspace created now has a
    // fresh id, so no records; one whose keys are all cached has no others),
    // or are read: all with one getMany. A pair the apply in flight writes is
    // never read: it is in the cache (not trimmed before that apply commits)
    // or in the apply's own list.
    const total = batch.keys;
    const cachedOld: Array<bigint | undefined> = new Array(total);
    /** Per pair: 1 in the count cache now; 2 unknown until this apply commits (count-cache.ts record()). */
    const wasCached = new Uint8Array(total);
    const cacheFlag = prev === undefined ? 1 : 2;
    /** Per pair: its slot in readKeys, or -1 if not read. */
    const readSlot = new Int32Array(total).fill(-1);
    const readKeys: Buffer[] = [];
    const cache = this.countCache;
    const keyBytes = batch.keyBytes;
    let n = 0;
    for (const group of groups) {
      if (group.created) {
        n += group.items.length;
        continue;
      }
      // The cache holds the counts after `prev` (recorded when its write was
      // handed over), so it goes with the record after prev. Without a cache,
      // prev's own pairs are looked up in it; a keyspace prev creates has no
      // others. (size > 0: a record claiming 0 keys would be corrupt; read
      // rather than trust it.)
      const complete = cache.enabled
        ? group.info.size > 0 && cache.cachedIn(group.ks) === group.info.size
        : prev !== undefined && !this.dir.has(group.ks);
      let prefix: Buffer | undefined;
      for (const p of group.items) {
        const cached = cache.enabled ? cache.get(p.pair) : prev?.finalOf(p.pair);
        if (cached !== undefined) {
          cachedOld[n] = cached;
          wasCached[n] = cacheFlag;
        } else if (!complete) {
          prefix ??= idPrefix(TAG_COUNT, group.info.id);
          readSlot[n] = readKeys.push(countKeyOf(prefix, keyBytes, p)) - 1;
        }
        n++;
      }
    }
    const current = readKeys.length > 0 ? await this.db.getMany(readKeys) : [];

    // Operations go straight into a chained batch (no operation objects):
    // per changed key, put `C id key`, del the old `I` entry, put the new one.
    const chained = this.db.batch();
    let submitted = false;
    try {
      /** Every pair's count after this apply (each exists afterwards), for the count cache. */
      const finals: bigint[] = new Array(total);
      let saturated = 0;
      let firstSaturated: { keyspace: Buffer; key: Buffer } | undefined;
      let cursor = 0;
      for (const group of groups) {
        const countPrefix = idPrefix(TAG_COUNT, group.info.id);
        const indexPrefix = idPrefix(TAG_INDEX, group.info.id);
        const { inserted, removed } = group;
        for (const p of group.items) {
          const slot = readSlot[cursor]!;
          const value = slot >= 0 ? current[slot] : undefined;
          const old = value !== undefined ? this.decodeCountValue(value) : cachedOld[cursor];
          let next = (old ?? 0n) + p.delta;
          if (next > INT64_MAX || next < INT64_MIN) {
            next = next > INT64_MAX ? INT64_MAX : INT64_MIN;
            saturated++;
            firstSaturated ??= { keyspace: group.info.name, key: Buffer.from(keyBytes.subarray(p.keyStart, p.keyStart + p.keyLength)) };
          }
          finals[cursor++] = next;
          if (old === next) continue;
          const countKey = slot >= 0 ? readKeys[slot]! : countKeyOf(countPrefix, keyBytes, p);
          const nextValue = encodeCount(next);
          chained.put(countKey, nextValue);
          if (old === undefined) {
            group.info.size++;
          } else {
            const oldIndex = value !== undefined ? indexKeyFromCountKey(indexPrefix, value, countKey) : indexKeyOf(indexPrefix, old, countKey);
            chained.del(oldIndex);
            removed.push(oldIndex.subarray(PREFIX_SIZE));
          }
          const newIndex = indexKeyFromCountKey(indexPrefix, nextValue, countKey);
          chained.put(newIndex, EMPTY);
          inserted.push(newIndex.subarray(PREFIX_SIZE));
        }
      }

      // From here on this apply needs `prev` committed: fences and blocks read
      // from disk must hold its writes.
      if (prev !== undefined) await this.afterInflight(prev);

      // Rank fences, several keyspaces at a time: a keyspace whose blocks split
      // waits on LevelDB reads (thread pool) while others compute.
      const changed = groups.filter((g) => g.inserted.length > 0);
      await runLimited(changed.length, FENCE_CONCURRENCY, async (i) => {
        const group = changed[i]!;
        // The fences before this apply, checked against the size before it (group.committed), not group.info.
        const before = group.committed === undefined ? Fences.empty() : await this.fencesForWrite(group.committed);
        group.fences = await this.updateFences(group.info.id, before, group.inserted, group.removed, group.fenceOps, group.touched);
      });
      const put = (op: BatchOp): void => void (op.type === 'put' ? chained.put(op.key, op.value) : chained.del(op.key));
      for (const group of changed) {
        for (const op of group.fenceOps) put(op);
        chained.put(taggedName(TAG_KEYSPACE, group.info.name), encodeKeyspaceValue(group.info.id, group.info.size));
      }
      if (nextId !== this.nextId) {
        const value = Buffer.allocUnsafe(8);
        writeId(value, 0, nextId);
        chained.put(NEXT_ID_KEY, value);
      }
      for (const op of markOps) put(op);

      this.recordCounts(groups, finals, wasCached);
      const swaps: StateSwap[] = changed.map((g) => ({ ks: g.ks, info: g.info, fences: g.fences!, touched: g.touched }));
      const saturation = saturated > 0 ? { keys: saturated, keyspace: firstSaturated!.keyspace, key: firstSaturated!.key } : undefined;
      // Without a count cache the next apply looks this one's counts up in its own list.
      const overlay = this.countCache.enabled ? undefined : { groups, finals };
      submitted = true;
      return { written: this.submitApply(chained, swaps, nextId, batch.keys, saturation, overlay) };
    } finally {
      // Abandoned by an error before it was handed over (submitApply closes it): close is idempotent.
      if (!submitted) await chained.close();
    }
  }

  /**
   * Hand an apply's batch to LevelDB. From here the batch is commit()'s to
   * close, and the next apply may prepare on top of this one (the counts are
   * already in the count cache; trimmed once committed; a read uses the
   * cache only while no apply is in flight). A function of its own so that
   * what stays alive during the write is only what the swap needs, not the
   * apply's per-key state.
   */
  private submitApply(
    chained: Chained,
    swaps: StateSwap[],
    nextId: number,
    keys: number,
    saturation: { keys: number; keyspace: Buffer; key: Buffer } | undefined,
    overlay: { groups: ApplyGroup[]; finals: bigint[] } | undefined,
  ): Promise<ApplyResult> {
    const onCommitted = (): void => {
      this.nextId = nextId;
      for (const g of swaps) {
        this.dir.set(g.ks, g.info);
        this.fenceCache.set(g.info.id, g.fences);
        this.blockCache.invalidate(g.info.id, g.touched);
      }
      this.countCache.trim();
    };
    const result = (): ApplyResult => {
      if (saturation !== undefined) {
        this.logger.warn('counts saturated at the signed 64-bit range', {
          keys: saturation.keys,
          keyspace: saturation.keyspace.toString('utf8'),
          key: saturation.key.toString('utf8'),
        });
      }
      return { keys, saturated: saturation?.keys ?? 0 };
    };
    if (chained.length === 0) {
      onCommitted();
      return chained.close().then(result);
    }
    const done = this.commit(chained, onCommitted, 'apply');
    const inflight = new InflightApply(done, new Map(swaps.map((g) => [g.ks, g.info])), nextId, overlay);
    this.inflight = inflight;
    done.then(
      () => {
        if (this.inflight === inflight) this.inflight = undefined;
      },
      () => {
        // Counts that were never written: no cached count may survive them.
        this.countCache.clear();
        if (this.inflight === inflight) this.inflight = undefined;
      },
    );
    return done.then(result);
  }

  /** Wait until the apply in flight has committed; its failure fails the apply prepared on top of it. */
  private async afterInflight(prev: InflightApply): Promise<void> {
    try {
      await prev.done;
    } catch (err) {
      const cause = translateDbError(err, 'apply', this.location);
      throw new CountdError(cause.code, `the apply before this one failed, and this one was prepared on top of it (nothing of either was written): ${cause.message}`, { cause });
    }
  }

  /**
   * An apply handed to LevelDB: once it commits, every pair of it exists
   * with its final count. Recorded before the commit (see applyUnsafe), and
   * not trimmed before it: the next apply must find every one of them.
   */
  private recordCounts(groups: ApplyGroup[], finals: bigint[], wasCached: Uint8Array): void {
    const cache = this.countCache;
    if (!cache.enabled) return;
    let at = 0;
    for (const group of groups) {
      cache.record(group.ks, group.items, finals, wasCached, at);
      at += group.items.length;
    }
  }

  /**
   * New fences after `inserted` and `removed` index suffixes, pushing the
   * fence writes onto `ops`: counts of touched blocks, merges of blocks below
   * B/2, splits of blocks above 2B (which read the block's current entries).
   */
  private async updateFences(id: number, before: Fences, inserted: Buffer[], removed: Buffer[], ops: BatchOp[], touched: Buffer[]): Promise<Fences> {
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
    const merged = mergeSmallBlocks(before.keys, counts, this.minBlock);
    // Splits need the changes per block: bucket them once, only if some block splits.
    let buckets: { inserted: Buffer[][]; removed: Buffer[][] } | undefined;
    const indexPrefix = idPrefix(TAG_INDEX, id);
    let reader: KeyIterator<Db, Buffer> | undefined;
    try {
      for (const block of merged) {
        for (let i = block.first + 1; i <= block.last; i++) ops.push({ type: 'del', key: withPrefix(fencePrefix, before.keys[i]) });
        if (block.first !== block.last) changedBlocks.fill(1, block.first, block.last + 1);
        if (block.count <= 2 * this.fenceSize) {
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
        const openReader = (): KeyIterator<Db, Buffer> => (reader ??= this.db.keys({ gte: indexPrefix, lt: prefixEnd(indexPrefix), highWaterMarkBytes: WHOLE_BLOCK_BYTES }));
        const entries = await this.blockEntries(openReader, indexPrefix, before, block.first, block.last, buckets.inserted, buckets.removed);
        if (entries.length !== block.count) {
          throw corruption(this.location, `rank fence counts ${block.count} entries where the index holds ${entries.length} (keyspace id ${id}); run a rank index rebuild`);
        }
        for (const piece of cutBlock(block.key, entries.length, this.fenceSize, (start) => entries[start]!)) {
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

  /**
   * The index suffixes of blocks first..last as they will be after this
   * apply: on disk (read with `reader`, seeked to the block), minus removed,
   * plus inserted.
   */
  private async blockEntries(
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

  private async createKeyspaceInternal(name: Buffer, keys: Buffer[], counts: bigint[], markOps: BatchOp[]): Promise<void> {
    const ks = latin1(name);
    if (this.dir.has(ks)) throw invalidArgument(`keyspace ${name.toString('utf8')} exists`);
    const id = this.nextId;
    const n = keys.length;
    const countPrefix = idPrefix(TAG_COUNT, id);
    const indexPrefix = idPrefix(TAG_INDEX, id);
    const chained = this.db.batch();
    try {
      const index: Buffer[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const countKey = withPrefix(countPrefix, keys[i]!);
        const value = encodeCount(counts[i]!);
        chained.put(countKey, value);
        index[i] = indexKeyFromCountKey(indexPrefix, value, countKey);
      }
      // The fences need rank order (legacy files come sorted: then this is one pass).
      index.sort(compareBytes);
      for (let i = 0; i < n; i++) chained.put(index[i]!, EMPTY);
      // Blocks as updateFences cuts a split block: floor(n / B) pieces of at least B entries.
      const pieces = cutBlock(EMPTY, n, this.fenceSize, (start) => index[start]!.subarray(PREFIX_SIZE));
      const fenceKeys = pieces.map((p) => p.key);
      const fenceCounts = pieces.map((p) => p.count);
      const fencePrefix = idPrefix(TAG_FENCE, id);
      for (let b = 0; b < fenceKeys.length; b++) chained.put(withPrefix(fencePrefix, fenceKeys[b]!), encodeFenceValue(fenceCounts[b]!));
      chained.put(taggedName(TAG_KEYSPACE, name), encodeKeyspaceValue(id, n));
      const next = Buffer.allocUnsafe(8);
      writeId(next, 0, id + 1);
      chained.put(NEXT_ID_KEY, next);
      for (const op of markOps) void (op.type === 'put' ? chained.put(op.key, op.value) : chained.del(op.key));
      const info: KeyspaceInfo = { name: Buffer.from(name), id, size: n };
      const fences = new Fences(fenceKeys, fenceCounts);
      await this.commit(
        chained,
        () => {
          this.nextId = id + 1;
          this.dir.set(ks, info);
          this.fenceCache.set(id, fences);
          // A fresh id: the count cache and the block cache hold nothing of it.
        },
        'create keyspace',
      );
    } catch (err) {
      throw translateDbError(err, 'create keyspace', this.location);
    } finally {
      await chained.close();
    }
  }

  private async deleteKeyspaceInternal(name: Buffer, markOps: BatchOp[]): Promise<void> {
    const ks = latin1(name);
    const info = this.dir.get(ks);
    const ops: BatchOp[] = [...markOps];
    if (info !== undefined) {
      ops.push({ type: 'del', key: taggedName(TAG_KEYSPACE, name) });
      ops.push({ type: 'put', key: idPrefix(TAG_DEAD, info.id), value: EMPTY });
    }
    if (ops.length === 0) return;
    await this.commit(
      ops,
      () => {
        if (info === undefined) return;
        this.dir.delete(ks);
        this.fenceCache.delete(info.id);
        this.blockCache.dropKeyspace(info.id);
        // Its name may come back as a new, empty keyspace: no entry of the old one may survive.
        this.countCache.clear();
      },
      'delete keyspace',
    );
    if (info !== undefined) this.collect(info.id);
  }

  /** Clear a deleted keyspace's records, then its `X` record. Unreferenced ids are invisible, so this need not be atomic. */
  private collect(id: number): void {
    this.collecting = this.collecting.then(async () => {
      try {
        for (const tag of [TAG_COUNT, TAG_INDEX, TAG_FENCE]) {
          const prefix = idPrefix(tag, id);
          await this.db.clear({ gte: prefix, lt: prefixEnd(prefix) });
        }
        await this.db.del(idPrefix(TAG_DEAD, id));
      } catch (err) {
        this.logger.warn('could not clear a deleted keyspace; will retry on next open', { id, error: translateDbError(err, 'clear', this.location).message });
      }
    });
  }

  private async checkRankIndexInternal(name: Buffer): Promise<boolean> {
    const info = this.dir.get(latin1(name));
    if (info === undefined) return true;
    try {
      const disk = await this.readFences(info.id);
      const fail = (why: string): boolean => {
        this.logger.warn('rank index check failed', { keyspace: name.toString('utf8'), reason: why });
        return false;
      };
      if (disk.keys.length === 0 || disk.keys[0].length !== 0) return fail('no first fence');
      const prefix = idPrefix(TAG_INDEX, info.id);
      const actual = new Array<number>(disk.keys.length).fill(0);
      let block = 0;
      let total = 0;
      for await (const key of this.scanKeys({ gte: prefix, lt: prefixEnd(prefix) })) {
        const suffix = key.subarray(PREFIX_SIZE);
        while (block + 1 < disk.keys.length && disk.keys[block + 1].compare(suffix) <= 0) block++;
        actual[block]++;
        total++;
      }
      for (let i = 0; i < actual.length; i++) if (actual[i] !== disk.counts[i]) return fail(`block ${i} holds ${actual[i]} entries, its fence says ${disk.counts[i]}`);
      if (total !== info.size) return fail(`index holds ${total} entries, the keyspace size is ${info.size}`);
      const cached = this.fenceCache.get(info.id);
      if (cached !== undefined && cached.persisted) {
        const same = cached.keys.length === disk.keys.length && cached.keys.every((k, i) => k.equals(disk.keys[i]) && cached.counts[i] === disk.counts[i]);
        if (!same) return fail('fences in memory differ from the fences on disk');
      }
      return true;
    } catch (err) {
      throw translateDbError(err, 'check rank index', this.location);
    }
  }

  private async rebuildRankIndexInternal(name: Buffer): Promise<void> {
    const info = this.dir.get(latin1(name));
    if (info === undefined) return;
    try {
      const disk = await this.readFences(info.id);
      const rebuilt = await this.fencesFromIndex(info.id);
      const fencePrefix = idPrefix(TAG_FENCE, info.id);
      const ops: BatchOp[] = disk.keys.map((k) => ({ type: 'del', key: withPrefix(fencePrefix, k) }) as BatchOp);
      for (let i = 0; i < rebuilt.keys.length; i++) ops.push({ type: 'put', key: withPrefix(fencePrefix, rebuilt.keys[i]), value: encodeFenceValue(rebuilt.counts[i]) });
      const fences = new Fences(rebuilt.keys, rebuilt.counts);
      await this.commit(
        ops,
        () => {
          this.fenceCache.set(info.id, fences);
          this.blockCache.dropKeyspace(info.id);
        },
        'rebuild rank index',
      );
      this.logger.info('rank index rebuilt', { keyspace: name.toString('utf8'), entries: fences.total, fences: fences.keys.length });
    } catch (err) {
      throw translateDbError(err, 'rebuild rank index', this.location);
    }
  }

  // ---------------------------------------------------------------- internals: rank fences

  /** Fences for an apply (under the mutex, so the current database state is the base). */
  private async fencesForWrite(info: KeyspaceInfo): Promise<Fences> {
    const cached = this.fenceCache.get(info.id);
    if (cached !== undefined) return cached;
    const fences = await this.loadFences(info, undefined);
    this.fenceCache.set(info.id, fences);
    return fences;
  }

  /**
   * Load a keyspace's fences; if they are missing or do not add up to its
   * size, rebuild them in memory from the index (the next apply persists them).
   */
  private async loadFences(info: KeyspaceInfo, snapshot: Snapshot | undefined): Promise<Fences> {
    const disk = await this.readFences(info.id, snapshot);
    const sum = disk.counts.reduce((a, b) => a + b, 0);
    if (disk.keys.length > 0 && disk.keys[0].length === 0 && sum === info.size) return new Fences(disk.keys, disk.counts);
    if (disk.keys.length === 0 && info.size === 0) return Fences.empty();
    this.logger.warn('rank fences missing or inconsistent; rebuilding from the count index', { keyspaceId: info.id, fences: disk.keys.length, fenced: sum, size: info.size });
    // Cached blocks were cut by fences that no longer hold.
    this.blockCache.dropKeyspace(info.id);
    const rebuilt = await this.fencesFromIndex(info.id, snapshot);
    return new Fences(rebuilt.keys, rebuilt.counts, disk.keys);
  }

  private async readFences(id: number, snapshot?: Snapshot): Promise<{ keys: Buffer[]; counts: number[] }> {
    const prefix = idPrefix(TAG_FENCE, id);
    const keys: Buffer[] = [];
    const counts: number[] = [];
    const it = this.db.iterator({ gte: prefix, lt: prefixEnd(prefix), snapshot });
    try {
      for (;;) {
        const entries = await it.nextv(SCAN_CHUNK);
        if (entries.length === 0) break;
        for (const [key, value] of entries) {
          if (value.length !== FENCE_VALUE_SIZE) throw corruption(this.location, `malformed rank fence value (${value.length} bytes)`);
          keys.push(key.subarray(PREFIX_SIZE));
          counts.push(value.readUInt32BE(0));
        }
      }
    } finally {
      await it.close();
    }
    return { keys, counts };
  }

  private async fencesFromIndex(id: number, snapshot?: Snapshot): Promise<{ keys: Buffer[]; counts: number[] }> {
    const prefix = idPrefix(TAG_INDEX, id);
    const keys: Buffer[] = [EMPTY];
    const counts: number[] = [0];
    const target = this.fenceSize;
    for await (const key of this.scanKeys({ gte: prefix, lt: prefixEnd(prefix), snapshot })) {
      if (counts[counts.length - 1] >= target) {
        keys.push(key.subarray(PREFIX_SIZE));
        counts.push(0);
      }
      counts[counts.length - 1]++;
    }
    return { keys, counts };
  }

  // ---------------------------------------------------------------- internals: reads

  /** Resolves when no write is between its batch and its in-memory swap. Capture state synchronously after it. */
  private async settled(): Promise<void> {
    while (this.writing !== null) await this.writing;
  }

  /** Capture a consistent view of one keyspace (undefined if it does not exist). The caller closes view.snapshot. */
  private async openView(name: Buffer): Promise<View | undefined> {
    await this.settled();
    // From here to the snapshot: synchronous, so no write lands in between.
    const info = this.dir.get(latin1(name));
    if (info === undefined) return undefined;
    const snapshot = this.db.snapshot();
    const epoch = this.epoch;
    const cached = this.fenceCache.get(info.id);
    if (cached !== undefined) return { info, fences: cached, snapshot, epoch };
    try {
      const fences = await this.loadFences(info, snapshot);
      // Cache only if no write committed meanwhile (the load saw the snapshot's state).
      if (this.epoch === epoch) this.fenceCache.set(info.id, fences);
      return { info, fences, snapshot, epoch };
    } catch (err) {
      await snapshot.close();
      throw err;
    }
  }

  private async withView<T>(name: Buffer, absent: T, fn: (view: View) => Promise<T>): Promise<T> {
    let view: View | undefined;
    try {
      view = await this.openView(name);
      if (view === undefined) return absent;
      return await fn(view);
    } catch (err) {
      throw translateDbError(err, 'read', this.location);
    } finally {
      await view?.snapshot.close();
    }
  }

  /** A keys iterator positioned at the start of the block holding `offset`, and how many keys to skip. */
  private blockIterator(view: View, offset: number) {
    const b = view.fences.blockAt(offset);
    const prefix = idPrefix(TAG_INDEX, view.info.id);
    const iterator = this.db.keys({ gte: withPrefix(prefix, view.fences.keys[b]), lt: prefixEnd(prefix), snapshot: view.snapshot, highWaterMarkBytes: WHOLE_BLOCK_BYTES });
    return { iterator, skip: offset - view.fences.prefix[b] };
  }

  private async pageInternal(view: View, offset: number, length: number): Promise<Entry[]> {
    const out: Entry[] = [];
    if (length === 0 || offset >= view.fences.total) return out;
    const first = view.fences.blockAt(offset);
    let skip = offset - view.fences.prefix[first]!;
    await this.visitBlocks(view, first, (block) => {
      // Keys are copied: the block stays in the cache, and callers own what they get.
      block.pushEntries(skip, Math.min(block.length, skip + length - out.length), out);
      skip = 0;
      return out.length < length;
    });
    return out;
  }

  private async rankInternal(view: View, key: Buffer): Promise<number | undefined> {
    const count = await this.countInView(view, key);
    if (count === undefined) return undefined;
    const suffix = Buffer.allocUnsafe(RANK_COUNT_SIZE + key.length);
    writeRankCount(suffix, 0, count);
    key.copy(suffix, RANK_COUNT_SIZE);
    const b = view.fences.blockOf(suffix);
    let at = -1;
    await this.visitBlocks(view, b, (block) => {
      at = block.indexOf(suffix);
      return false;
    });
    if (at < 0) throw corruption(this.location, `a key with a count record has no count index entry (keyspace id ${view.info.id})`);
    return view.fences.prefix[b]! + at;
  }

  /** The count of `key` as of the view: from the count cache while the view is current, else read. */
  private async countInView(view: View, key: Buffer): Promise<bigint | undefined> {
    // (Not while an apply is in flight: the cache already holds its counts.)
    if (this.countCache.enabled && this.epoch === view.epoch && this.inflight === undefined && view.info.name.length < 0x10000) {
      const cached = this.countCache.get(assemblePairKey(view.info.name, key));
      if (cached !== undefined) return cached;
    }
    // A synchronous point read: it comes from LevelDB's block cache or the OS
    // page cache in microseconds, where a trip through the thread pool costs
    // ~0.1 ms of latency on an otherwise idle server (bench:pages, rank).
    const value = this.db.getSync(withPrefix(idPrefix(TAG_COUNT, view.info.id), key), { snapshot: view.snapshot });
    return value === undefined ? undefined : this.decodeCountValue(value);
  }

  /**
   * Hand the rank blocks first, first + 1, ... of the view's keyspace to
   * `visit` until it returns false or the blocks run out. Each comes from the
   * block cache while the view is current, or is read from the view's
   * snapshot (one iterator for consecutive misses) and cached if still current.
   */
  private async visitBlocks(view: View, first: number, visit: (block: RankBlock) => boolean): Promise<void> {
    const { fences, info } = view;
    const cache = this.blockCache;
    const prefix = idPrefix(TAG_INDEX, info.id);
    let iterator: KeyIterator<Db, Buffer> | undefined;
    /** The block the iterator stands at the start of, or -1. */
    let at = -1;
    try {
      for (let b = first; b < fences.keys.length; b++) {
        const current = this.epoch === view.epoch;
        let block = current ? cache.get(info.id, fences.keys[b]!) : undefined;
        if (block !== undefined) metrics.rankBlockHits.inc();
        else {
          metrics.rankBlockMisses.inc();
          iterator ??= this.db.keys({ gte: withPrefix(prefix, fences.keys[b]!), lt: prefixEnd(prefix), snapshot: view.snapshot, highWaterMarkBytes: WHOLE_BLOCK_BYTES });
          if (at !== b && at !== -1) iterator.seek(withPrefix(prefix, fences.keys[b]!));
          block = await this.readBlock(iterator, view, b);
          at = b + 1;
          if (this.epoch === view.epoch) cache.set(info.id, fences.keys[b]!, block);
        }
        if (!visit(block)) return;
      }
    } finally {
      await iterator?.close();
    }
  }

  /** Rank block b, read with `iterator` standing at its first entry; its entry count is checked against its fence. */
  private async readBlock(iterator: KeyIterator<Db, Buffer>, view: View, b: number): Promise<RankBlock> {
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
      throw corruption(this.location, `rank fence ${b} counts ${want} entries where the index holds others (keyspace id ${view.info.id}); run a rank index rebuild`);
    }
    return RankBlock.of(suffixes);
  }

  private async *scanKeys(range: { gte: Buffer; lt: Buffer; snapshot?: Snapshot | undefined }): AsyncGenerator<Buffer> {
    const it = this.db.keys(range);
    try {
      for (;;) {
        const keys = await it.nextv(SCAN_CHUNK);
        if (keys.length === 0) return;
        yield* keys;
      }
    } finally {
      await it.close();
    }
  }

  // ---------------------------------------------------------------- internals: helpers

  private decodeCountValue(value: Buffer): bigint {
    if (value.length !== COUNT_SIZE) throw corruption(this.location, `count record of ${value.length} bytes, not ${COUNT_SIZE}`);
    return value.readBigInt64BE(0);
  }

  private markName(name: string): Buffer {
    if (typeof name !== 'string' || name === '') throw invalidArgument('mark name must be a non-empty string');
    const bytes = Buffer.from(name, 'utf8');
    if (bytes.length > MAX_MARK_NAME) throw invalidArgument(`mark name is ${bytes.length} bytes, above ${MAX_MARK_NAME}`);
    return bytes;
  }

  private markOps(marks: Mark[]): BatchOp[] {
    if (!Array.isArray(marks)) throw invalidArgument('marks must be an array of { name, value }');
    return marks.map((mark) => {
      if (mark === null || typeof mark !== 'object') throw invalidArgument('a mark must be { name, value }');
      const key = taggedName(TAG_MARK, this.markName(mark.name));
      if (!(mark.value instanceof Uint8Array)) throw invalidArgument(`mark ${mark.name}: value must be a Buffer`);
      return { type: 'put', key, value: Buffer.from(mark.value) } as BatchOp;
    });
  }

  private checkOpen(): void {
    if (this.closed) throw new CountdError(ErrorCodes.CLOSED, `store ${this.location} is closed`);
  }
}
