// Store: ranked counters in one classic-level (LevelDB) database. The record
// layout is specified in docs/storage-format.md; encoding.ts builds the bytes.
//
// This is the validating front: every public method checks its arguments and
// then calls the inner layer, which trusts them. The inner layer is split
// along the state its parts share: state.ts at the bottom (the database, the
// keyspace directory, the caches, the epoch, commit and the write mutex,
// fence loading; it also explains how reads and writes interleave), and on it
// apply.ts (increments; fence-update.ts), views.ts (consistent reads) and
// maintenance.ts (create, delete, check, rebuild). None of those imports
// another part, only the state.

import { invalidArgument } from '../errors.js';
import { INT64_MIN, checkFieldSizes, nameBytes, type FieldSizes } from '../protocol/fields.js';
import { PAIR_LENGTHS_SIZE } from '../protocol/pair-key.js';
import { silentLogger, type Logger } from '../util/log.js';
import { SETTINGS_VALUE_SIZE, TAG_MARK, Ties, encodeSettingsValue, prefixEnd, taggedName } from './encoding.js';
import { translateDbError } from './errors.js';
import { applyBatch, type ApplyResult } from './apply.js';
import { exportKeyspaces, type ExportItem } from './export.js';
import { fitsInt64 } from './combine.js';
import { IncrementBatch } from './increment-batch.js';
import { checkRankIndex, createKeyspace, deleteKeyspace, rebuildRankIndex } from './maintenance.js';
import {
  DEFAULT_BLOCK_CACHE_BYTES,
  DEFAULT_COUNT_CACHE_BYTES,
  DEFAULT_KEY_FILTER_BYTES,
  DEFAULT_RANK_CACHE_KEYSPACES,
  DEFAULT_RANK_FENCE_SIZE,
  LEVEL_OPTIONS,
  MAX_MARK_NAME,
  MAX_RANK_FENCE_SIZE,
  MIN_WRITE_BUFFER_SIZE,
} from './schema.js';
import { checkPeriodChoice, expirePeriods, hasExpiredPeriods, listKeyspaces, periodStartToRead, periodToRead, storedPeriods, type PeriodChoice } from './periods.js';
import { PERIOD_SUFFIX_SIZE, parsePeriodId, type WindowSettings } from './windows.js';
import { closeState, latin1, openState, type BatchOp, type StoreState } from './state.js';
import { aroundInView, countAtLeastInView, denseRankInView, iterateEntries, readCount, readPage, rankInView, tallyView, withView, type Entry, type KeyspaceTally } from './views.js';

export { IncrementBatch } from './increment-batch.js';
export type { ApplyResult } from './apply.js';
export type { Entry, KeyspaceTally } from './views.js';
export type { ExportItem } from './export.js';
export { PeriodNotKeptError, type PeriodChoice } from './periods.js';

export interface Mark {
  name: string;
  /** null: the mark is removed (an expired producer's: lib/roles/work/producer-marks.ts). */
  value: Buffer | null;
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
  /**
   * Bytes of the key filter (key-filter.ts): new keys of the keyspaces this
   * store created are known absent without a read (default 32 MiB; under 64
   * disables; rounded down to a power of two).
   */
  keyFilterBytes?: number;
  /** LevelDB block cache, bytes (default 64 MiB). */
  cacheSize?: number;
  /** LevelDB write buffer (memtable), bytes (default 64 MiB). Up to about twice this is in memory. */
  writeBufferSize?: number;
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

function markName(name: string): Buffer {
  if (typeof name !== 'string' || name === '') throw invalidArgument('mark name must be a non-empty string');
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length > MAX_MARK_NAME) throw invalidArgument(`mark name is ${bytes.length} bytes, above ${MAX_MARK_NAME}`);
  return bytes;
}

function markOps(marks: Mark[]): BatchOp[] {
  if (!Array.isArray(marks)) throw invalidArgument('marks must be an array of { name, value }');
  return marks.map((mark) => {
    if (mark === null || typeof mark !== 'object') throw invalidArgument('a mark must be { name, value }');
    const key = taggedName(TAG_MARK, markName(mark.name));
    if (mark.value === null) return { type: 'del', key } as BatchOp;
    if (!(mark.value instanceof Uint8Array)) throw invalidArgument(`mark ${mark.name}: value must be a Buffer or null`);
    return { type: 'put', key, value: Buffer.from(mark.value) } as BatchOp;
  });
}

/** Validate and default StoreOptions. */
function settingsOf(options: StoreOptions) {
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
  const keyFilterBytes = checkBytes(options.keyFilterBytes, DEFAULT_KEY_FILTER_BYTES, 'keyFilterBytes', 0);
  const cacheSize = checkBytes(options.cacheSize, LEVEL_OPTIONS.cacheSize, 'cacheSize', 0);
  const writeBufferSize = checkBytes(options.writeBufferSize, LEVEL_OPTIONS.writeBufferSize, 'writeBufferSize', MIN_WRITE_BUFFER_SIZE);
  const state = { location: options.location, sizes, logger: options.logger ?? silentLogger, rankFenceSize, rankCacheKeyspaces, sync: options.sync ?? true, countCacheBytes, blockCacheBytes, keyFilterBytes };
  return { state, level: { ...LEVEL_OPTIONS, cacheSize, writeBufferSize } };
}

export class Store {
  readonly location: string;
  readonly sizes: FieldSizes;
  private readonly state: StoreState;

  private constructor(state: StoreState) {
    this.state = state;
    this.location = state.location;
    this.sizes = state.sizes;
  }

  /** Open (creating if missing) the database. COUNTD_LOCKED if another process holds it. */
  static async open(options: StoreOptions): Promise<Store> {
    const { state, level } = settingsOf(options);
    return new Store(await openState(state, level));
  }

  /**
   * A number that grows with every committed write. A result computed after
   * reading `version` == v is still exact while `version` is still v: the
   * reader's page cache relies on this (lib/roles/read/page-cache.ts).
   */
  get version(): number {
    return this.state.epoch;
  }

  /**
   * An apply is being prepared (counts read, its batch built) or waits to
   * be: an apply called now would wait for that. Once an apply's batch is
   * being written, this is false and the next apply's preparation overlaps
   * that write (the worker hands its next batch over then).
   */
  get preparing(): boolean {
    return this.state.applyQueue > 0;
  }

  private keyspaceName(keyspace: string | Uint8Array): Buffer {
    this.state.checkOpen();
    return nameBytes(keyspace, 'keyspace', this.sizes.keyspaceSize);
  }

  /** The stored keyspace a read of `keyspace` goes to: for a windowed one, the period `at` chooses (the current one by default; periods.ts). */
  private readName(keyspace: string | Uint8Array, at: PeriodChoice | undefined): Buffer {
    const name = this.keyspaceName(keyspace);
    const { ago, now } = checkPeriodChoice(at);
    return periodToRead(this.state, name, ago, now);
  }

  // ---------------------------------------------------------------- writes

  /**
   * Apply every increment of `batch` and write `marks`, in ONE atomic batch
   * with the counts, index entries, sizes and rank fences. The caller must not
   * touch `batch` until the promise settles.
   */
  async apply(batch: IncrementBatch, marks: Mark[] = []): Promise<ApplyResult> {
    this.state.checkOpen();
    if (!(batch instanceof IncrementBatch)) throw invalidArgument('apply needs an IncrementBatch');
    const ops = markOps(marks);
    this.checkBatch(batch);
    const state = this.state;
    state.applyQueue++;
    let written: Promise<ApplyResult>;
    try {
      ({ written } = await state.exclusive(() => applyBatch(state, batch, ops), true));
    } finally {
      state.applyQueue--;
    }
    return written;
  }

  private checkBatch(batch: IncrementBatch): void {
    const keySize = this.sizes.keySize;
    // One memchr over every key's bytes; per-pair checks only if some key holds a NUL.
    const someNul = batch.keyBytes.indexOf(0) !== -1;
    for (const group of batch.keyspaces()) {
      // A period of a windowed keyspace (windows.ts) is stored under its keyspace's name and a suffix.
      const period = parsePeriodId(group.id);
      nameBytes(period === undefined ? group.name : group.name.subarray(0, group.name.length - PERIOD_SUFFIX_SIZE), 'keyspace', this.sizes.keyspaceSize);
      const keyOffset = PAIR_LENGTHS_SIZE + group.name.length;
      for (const p of group.items) {
        const length = p.keyLength;
        if (length === 0) throw invalidArgument('key must not be empty');
        if (length > keySize) throw invalidArgument(`key is ${length} bytes, above the field size of ${keySize}`);
        if (someNul && p.pair.indexOf('\0', keyOffset) !== -1) throw invalidArgument('key must not contain a NUL byte');
        if (typeof p.delta !== 'bigint') throw invalidArgument('increments must be bigints');
      }
    }
  }

  /** Up to `limit` marks whose names start with `prefix` and sort after `after` (byte order), in name order. */
  async listMarks(prefix: string, after: string, limit: number): Promise<Array<{ name: string; value: Buffer }>> {
    this.state.checkOpen();
    const start = taggedName(TAG_MARK, markName(prefix));
    const from = after === '' ? start : taggedName(TAG_MARK, markName(after));
    if (!Number.isSafeInteger(limit) || limit < 1) throw invalidArgument(`limit must be a positive integer, got ${String(limit)}`);
    const out: Array<{ name: string; value: Buffer }> = [];
    try {
      for await (const [key, value] of this.state.db.iterator({ [after === '' ? 'gte' : 'gt']: from, lt: prefixEnd(start), limit })) {
        out.push({ name: key.subarray(1).toString('utf8'), value });
      }
    } catch (err) {
      throw translateDbError(err, 'list marks', this.location);
    }
    return out;
  }

  async getMark(name: string): Promise<Buffer | undefined> {
    this.state.checkOpen();
    const key = taggedName(TAG_MARK, markName(name));
    try {
      return await this.state.db.get(key);
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
    const name = this.keyspaceName(keyspace);
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
      if (typeof count !== 'bigint' || !fitsInt64(count)) throw invalidArgument(`count ${i} must be a signed 64-bit bigint`);
      const id = latin1(key as Buffer);
      if (seen.has(id)) throw invalidArgument(`key ${i} appears twice`);
      seen.add(id);
    }
    const ops = markOps(marks);
    return this.state.exclusive(() => createKeyspace(this.state, name, keys, counts, ops));
  }

  /** Delete a keyspace and write `marks`, atomically. Its records are cleared in the background. */
  async deleteKeyspace(keyspace: string | Uint8Array, marks: Mark[] = []): Promise<void> {
    const name = this.keyspaceName(keyspace);
    const ops = markOps(marks);
    return this.state.exclusive(() => deleteKeyspace(this.state, name, ops));
  }

  /** Verify the persisted rank fences of a keyspace (of a period of it: `at`) against a full scan of its count index. */
  async checkRankIndex(keyspace: string | Uint8Array, at?: PeriodChoice): Promise<boolean> {
    const name = this.readName(keyspace, at);
    return this.state.exclusive(() => checkRankIndex(this.state, name));
  }

  /** Rebuild the rank fences of a keyspace from its count index. */
  async rebuildRankIndex(keyspace: string | Uint8Array): Promise<void> {
    const name = this.keyspaceName(keyspace);
    return this.state.exclusive(() => rebuildRankIndex(this.state, name));
  }

  // ---------------------------------------------------------------- reads

  /** `length` entries from rank position `offset`, in rank order (of the period `at` of a windowed keyspace: the current one by default). */
  async page(keyspace: string | Uint8Array, offset: number | bigint, length: number, at?: PeriodChoice): Promise<Entry[]> {
    const name = this.readName(keyspace, at);
    const off = checkCount(offset, 'offset');
    const len = checkCount(length, 'length');
    return withView(this.state, name, [], (view) => readPage(this.state, view, off, len));
  }

  /** Every entry from rank position `offset` on, in rank order, in constant memory, from one snapshot. */
  async *iterate(keyspace: string | Uint8Array, options: { offset?: number | bigint } & PeriodChoice = {}): AsyncIterable<Entry> {
    const name = this.readName(keyspace, { ago: options?.ago, now: options?.now });
    const off = checkCount(options?.offset ?? 0, 'offset');
    yield* iterateEntries(this.state, name, off);
  }

  /**
   * The keyspaces `select` accepts and the marks whose names start with
   * `markPrefix`, all from ONE snapshot (export.ts): the marks first, then
   * each keyspace and its entries in rank order, in chunks.
   */
  exportKeyspaces(select: (name: Buffer) => boolean, markPrefix: string): AsyncGenerator<ExportItem> {
    this.state.checkOpen();
    if (typeof select !== 'function') throw invalidArgument('exportKeyspaces needs a select function');
    if (typeof markPrefix !== 'string' || markPrefix === '') throw invalidArgument('exportKeyspaces needs a non-empty mark prefix');
    return exportKeyspaces(this.state, select, markPrefix);
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
    const name = this.keyspaceName(keyspace);
    const empty: KeyspaceTally = { keys: 0, sum: 0n, max: undefined, min: undefined };
    return withView(this.state, name, empty, (view) => tallyView(this.state, view));
  }

  async get(keyspace: string | Uint8Array, key: string | Uint8Array, at?: PeriodChoice): Promise<bigint | undefined> {
    const name = this.readName(keyspace, at);
    const k = nameBytes(key, 'key', this.sizes.keySize);
    return readCount(this.state, name, k);
  }

  async size(keyspace: string | Uint8Array, at?: PeriodChoice): Promise<number> {
    const name = this.readName(keyspace, at);
    await this.state.readable();
    return this.state.dir.get(latin1(name))?.size ?? 0;
  }

  /** Every keyspace with its size, sorted by name bytes. */
  /** Declared keyspaces (latin1 name -> lib/store/combine.ts Operator), as of the last committed write. */
  operators(): ReadonlyMap<string, number> {
    return new Map(this.state.settings);
  }

  /** The declared keyspaces, their operators, tie rules (encoding.ts Ties) and windows, by name bytes (declared keyspaces may hold no key yet). */
  declaredKeyspaces(): Array<{ name: Buffer; operator: number; ties: number; window?: WindowSettings }> {
    const windows = this.state.windows;
    const ties = this.state.tiesFirst;
    return [...this.state.settings]
      .map(([ks, operator]) => ({ name: Buffer.from(ks, 'latin1'), operator, ties: ties.has(ks) ? Ties.first : Ties.key, ...(windows.has(ks) ? { window: windows.get(ks)! } : {}) }))
      .sort((a, b) => Buffer.compare(a.name, b.name));
  }

  /**
   * The start (ms since the epoch) of the period a read of `keyspace` at
   * `at` goes to; undefined for a keyspace without a window. Throws
   * PeriodNotKeptError (COUNTD_INVALID_ARGUMENT) for a period not kept.
   */
  periodStart(keyspace: string | Uint8Array, at?: PeriodChoice): number | undefined {
    const name = this.keyspaceName(keyspace);
    const { ago, now } = checkPeriodChoice(at);
    return periodStartToRead(this.state, name, ago, now);
  }

  /** Windowed keyspaces (latin1 name -> window, windows.ts), as of the last committed write. */
  windows(): ReadonlyMap<string, WindowSettings> {
    return new Map(this.state.windows);
  }

  /** The stored periods of a windowed keyspace, oldest first: each one's start (ms since the epoch) and number of keys. */
  async periods(keyspace: string | Uint8Array): Promise<Array<{ start: number; size: number }>> {
    const name = this.keyspaceName(keyspace);
    await this.state.readable();
    return storedPeriods(this.state, latin1(name));
  }

  /** Delete every period older than its keyspace's --keep at `now` (the worker runs it: lib/roles/work/expiry.ts); returns how many went. */
  async expirePeriods(now: number = Date.now()): Promise<number> {
    this.state.checkOpen();
    if (!Number.isSafeInteger(now) || now < 0) throw invalidArgument(`now must be ms since the epoch, got ${String(now)}`);
    // Looked at without the write mutex first: the worker asks every second, and nothing is due most of the time.
    if (!hasExpiredPeriods(this.state, now)) return 0;
    return this.state.exclusive(() => expirePeriods(this.state, now));
  }

  /**
   * Every keyspace that exists or is declared (periods as keyspaces()
   * lists them), by name bytes, with its number of keys and its settings
   * value (docs/storage-format.md settings-value; all zero bytes for an
   * undeclared keyspace), as of the last committed write: what the read
   * protocol's settings op carries.
   */
  async keyspaceSettings(at?: { now?: number }): Promise<Array<{ name: Buffer; size: number; settings: Buffer }>> {
    this.state.checkOpen();
    const { now } = checkPeriodChoice(at);
    await this.state.readable();
    const out = new Map<string, { name: Buffer; size: number; settings: Buffer }>();
    const none = Buffer.alloc(SETTINGS_VALUE_SIZE);
    for (const k of listKeyspaces(this.state, now ?? Date.now())) out.set(latin1(k.name), { name: k.name, size: k.size, settings: none });
    for (const d of this.declaredKeyspaces()) {
      const ks = latin1(d.name);
      out.set(ks, { name: d.name, size: out.get(ks)?.size ?? 0, settings: encodeSettingsValue({ operator: d.operator, ties: d.ties, ...(d.window === undefined ? {} : { window: d.window }) }) });
    }
    return [...out.values()].sort((a, b) => a.name.compare(b.name));
  }

  /**
   * Every keyspace with its size, sorted by name bytes. A windowed keyspace
   * is listed with the size of its current period at `at.now` (when that
   * holds keys); its other periods: periods().
   */
  async keyspaces(at?: { now?: number }): Promise<Array<{ name: Buffer; size: number }>> {
    this.state.checkOpen();
    const { now } = checkPeriodChoice(at);
    await this.state.readable();
    return listKeyspaces(this.state, now ?? Date.now());
  }

  /** 0-based position of `key` in rank order, or undefined if absent. */
  async rank(keyspace: string | Uint8Array, key: string | Uint8Array, at?: PeriodChoice): Promise<number | undefined> {
    const name = this.readName(keyspace, at);
    const k = nameBytes(key, 'key', this.sizes.keySize);
    return withView(this.state, name, undefined, (view) => rankInView(this.state, view, k));
  }

  /**
   * The rank of `key` (0-based position), its dense rank (0-based: the
   * number of distinct counts above its count) and its count, from one
   * snapshot; undefined if absent.
   */
  async denseRank(keyspace: string | Uint8Array, key: string | Uint8Array, at?: PeriodChoice): Promise<{ rank: number; dense: number; count: bigint } | undefined> {
    const name = this.readName(keyspace, at);
    const k = nameBytes(key, 'key', this.sizes.keySize);
    return withView(this.state, name, undefined, (view) => denseRankInView(this.state, view, k));
  }

  /** The number of keys of `keyspace` with a count of at least `min` (all of them without it), in O(log n + B). */
  async countKeys(keyspace: string | Uint8Array, options: { min?: bigint } = {}, at?: PeriodChoice): Promise<number> {
    const name = this.readName(keyspace, at);
    const min = options?.min;
    if (min !== undefined && (typeof min !== 'bigint' || !fitsInt64(min))) throw invalidArgument('min must be a signed 64-bit bigint');
    return withView(this.state, name, 0, (view) => countAtLeastInView(this.state, view, min ?? INT64_MIN));
  }

  /** A page of up to `n` entries with `key` in the middle (shifted to stay inside the keyspace). */
  async around(keyspace: string | Uint8Array, key: string | Uint8Array, n: number, at?: PeriodChoice): Promise<{ offset: number; entries: Entry[] } | undefined> {
    const name = this.readName(keyspace, at);
    const k = nameBytes(key, 'key', this.sizes.keySize);
    const len = checkCount(n, 'n');
    return withView(this.state, name, undefined, (view) => aroundInView(this.state, view, k, len));
  }

  /**
   * Close and reopen the database, then reload what the store keeps in
   * memory. LevelDB keeps some write errors (a failed compaction or sync, as
   * on a full disk) until it is reopened: the worker reopens before retrying
   * after one. Reads that start meanwhile wait; reads in flight on the old
   * handle fail (the reader closes their connections).
   */
  async reopen(): Promise<void> {
    this.state.checkOpen();
    await this.state.exclusive(() => this.state.reopen());
  }

  async close(): Promise<void> {
    await closeState(this.state);
  }
}
