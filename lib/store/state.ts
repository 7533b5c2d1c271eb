// The state every part of the Store shares, and the few operations on it that
// every part needs: opening the database, committing a batch and swapping
// in-memory state after it, the write mutex, and loading rank fences. The
// parts stand on it and never on each other: apply.ts (increments),
// views.ts (consistent reads), maintenance.ts (create, delete, collect,
// check, rebuild); store.ts is the validating front over all of them.
//
// Concurrency: the worker (apply) and the reader share one Store in one
// process. Writes (apply, deleteKeyspace, rebuildRankIndex) run one at a time
// (a promise-chain mutex: exclusive). Each write commits ONE LevelDB batch
// and then swaps its in-memory state (directory, rank fences, count cache:
// count-cache.ts); while the batch is written, `preWrite` holds a snapshot of before it. One overlap: an apply
// releases the mutex once its batch is handed to LevelDB, so the next apply
// prepares its batch while that one is written and fsynced
// (inflight-apply.ts); every other write first waits for the apply in
// flight. A read captures, in one synchronous step, the in-memory state and
// a LevelDB snapshot (views.ts, captureSnapshot): while a write is in flight
// that is the snapshot taken just before it, with the in-memory state not yet
// swapped, so a read never waits for a write's fsync, and everything it reads
// belongs to one state between two writes. Only a reopen makes reads wait.
// Readers never block writers for longer than that synchronous step.
//
// Everything here trusts its arguments: store.ts validates them.

import { ClassicLevel, type ChainedBatch } from 'classic-level';
import { CountdError, ErrorCodes } from '../errors.js';
import type { FieldSizes } from '../protocol/fields.js';
import type { Logger } from '../util/log.js';
import {
  COUNT_SIZE,
  EMPTY,
  FENCE_VALUE_SIZE,
  KEYSPACE_VALUE_SIZE,
  NEXT_ID_KEY,
  ORDER_KEY,
  ORDER_SIZE,
  PREFIX_SIZE,
  TAG_DEAD,
  TAG_FENCE,
  TAG_INDEX,
  TAG_KEYSPACE,
  TAG_SETTINGS,
  Ties,
  VERSION_KEY,
  decodeSettingsValue,
  idPrefix,
  prefixEnd,
  readId,
  writeId,
} from './encoding.js';
import { corruption, translateDbError } from './errors.js';
import { BlockCache } from './block-cache.js';
import { DEFAULT_CLEAR_PACE, clearDeadKeyspace } from './collect.js';
import { KeyFilter } from './key-filter.js';
import { CountCache } from './count-cache.js';
import type { DirRecord, InflightApply } from './inflight-apply.js';
import { Lru } from './lru.js';
import { Fences } from './rank-fences.js';
import { SCAN_CHUNK, STORE_FORMAT, STORE_VERSION, versionValue } from './schema.js';
import { canUpgrade, upgrade } from './upgrade.js';
import { governingKeyspace, type WindowSettings } from './windows.js';

export type KeyspaceInfo = DirRecord;
export type Db = ClassicLevel<Buffer, Buffer>;
export type Snapshot = ReturnType<Db['snapshot']>;
export type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };
export type Chained = ChainedBatch<Db, Buffer, Buffer>;

/** A Store's options once validated and defaulted (store.ts). */
export interface StateSettings {
  location: string;
  sizes: FieldSizes;
  logger: Logger;
  rankFenceSize: number;
  rankCacheKeyspaces: number;
  sync: boolean;
  countCacheBytes: number;
  blockCacheBytes: number;
  keyFilterBytes: number;
}

/** LevelDB's open options (schema.ts LEVEL_OPTIONS with the Store's cache and write buffer sizes). */
export type LevelOptions = { cacheSize: number; writeBufferSize: number } & Record<string, unknown>;

export function latin1(buf: Buffer): string {
  return buf.toString('latin1');
}

export class StoreState {
  readonly location: string;
  readonly sizes: FieldSizes;
  readonly db: Db;
  readonly logger: Logger;
  /** B: target entries per rank-fence block. */
  readonly fenceSize: number;
  /** Blocks below this many entries merge with a neighbour. */
  readonly minBlock: number;
  readonly sync: boolean;
  /** LevelDB's open options, for reopen(). */
  readonly level: LevelOptions;
  /** latin1 keyspace name -> directory record. Every keyspace is here (one small record each). */
  readonly dir = new Map<string, KeyspaceInfo>();
  readonly fenceCache: Lru<number, Fences>;
  readonly countCache: CountCache;
  /** Keys written to the keyspaces this store created: new keys are not read (key-filter.ts). */
  readonly keyFilter: KeyFilter;
  readonly blockCache: BlockCache;
  nextId = 1;
  /** Bumped by every committed write: a fence load from an older snapshot is not cached. */
  epoch = 0;
  /** Set while the database is closed and opened again (reopen): reads wait for it. */
  reopening: Promise<void> | null = null;
  /**
   * While a batch is being written: a snapshot taken just before it, shared
   * by the reads that start meanwhile (with the in-memory state, not swapped
   * yet, it is the state before the write), so no read waits for a write's
   * fsync. Closed when the write is done and its last read released it.
   */
  private preWrite: { snapshot: Snapshot; refs: number } | undefined;
  mutex: Promise<unknown> = Promise.resolve();
  /** The apply whose write is in flight (handed to LevelDB, mutex released), if any. */
  inflight: InflightApply | undefined;
  /** Applies called and not yet handed to LevelDB: see Store#preparing. */
  applyQueue = 0;
  /** Clearing of deleted keyspaces' records, in the background. */
  collecting: Promise<void> = Promise.resolve();
  /** Set while reopening: the clearing stops (load() starts it again from the `X` records). */
  stopCollecting = false;
  /** How the clearing is paced (collect.ts); tests make it fast or slow. */
  clearPace = DEFAULT_CLEAR_PACE;
  /** Declared keyspaces (latin1 name -> combine.ts Operator), from their `S` records. */
  readonly settings = new Map<string, number>();
  /** Windowed keyspaces (latin1 name -> window, lib/store/windows.ts), from their `S` records. */
  readonly windows = new Map<string, WindowSettings>();
  /** Declared keyspaces whose ties go to who reached the count first (`--ties first`, latin1 names). */
  readonly tiesFirst = new Set<string>();
  /** The last apply order handed out (`O` record): the "time" of `--ties first` keyspaces. */
  order = 0;
  closed = false;

  constructor(db: Db, settings: StateSettings, level: LevelOptions) {
    this.db = db;
    this.level = level;
    this.location = settings.location;
    this.sizes = settings.sizes;
    this.logger = settings.logger;
    this.fenceSize = settings.rankFenceSize;
    this.minBlock = Math.max(1, Math.floor(settings.rankFenceSize / 2));
    this.sync = settings.sync;
    this.fenceCache = new Lru(settings.rankCacheKeyspaces);
    this.countCache = new CountCache(settings.countCacheBytes);
    this.keyFilter = new KeyFilter(settings.keyFilterBytes);
    this.blockCache = new BlockCache(settings.blockCacheBytes);
  }

  checkOpen(): void {
    if (this.closed) throw new CountdError(ErrorCodes.CLOSED, `store ${this.location} is closed`);
  }

  // ---------------------------------------------------------------- open

  /**
   * Close and reopen the database, then reload the state (the caller holds
   * the write mutex: Store#reopen). A failed write may have committed after
   * all (its sync failed, not its write), so nothing kept in memory survives.
   */
  async reopen(): Promise<void> {
    let release!: () => void;
    this.reopening = new Promise((resolve) => (release = resolve));
    try {
      this.stopCollecting = true;
      await this.collecting;
      this.stopCollecting = false;
      await this.db.close().catch(() => {}); // a close that fails leaves it closed: open again below
      try {
        await this.db.open({ createIfMissing: false, ...this.level });
      } catch (err) {
        throw translateDbError(err, 'reopen', this.location);
      }
      this.dir.clear();
      this.settings.clear();
      this.windows.clear();
      this.tiesFirst.clear();
      this.fenceCache.clear();
      this.countCache.clear();
      this.keyFilter.clear();
      this.blockCache.clear();
      this.epoch++;
      try {
        await this.load();
      } catch (err) {
        throw translateDbError(err, 'reopen', this.location);
      }
    } finally {
      this.reopening = null;
      release();
    }
  }

  /** Read (or, in an empty database, write) the format record, the next id and the keyspace directory. */
  async load(): Promise<void> {
    await this.loadVersion();
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
    const declared = Buffer.from([TAG_SETTINGS]);
    for await (const [key, value] of this.db.iterator({ gte: declared, lt: prefixEnd(declared) })) {
      const settings = decodeSettingsValue(value);
      if (settings === null || key.length < 2) throw corruption(this.location, `malformed keyspace settings record (${value.length} value bytes)`);
      this.settings.set(latin1(key.subarray(1)), settings.operator);
      if (settings.window !== undefined) this.windows.set(latin1(key.subarray(1)), settings.window);
      if (settings.ties === Ties.first) this.tiesFirst.add(latin1(key.subarray(1)));
    }
    const order = await this.db.get(ORDER_KEY);
    if (order !== undefined && order.length !== ORDER_SIZE) throw corruption(this.location, `malformed apply order record (O, ${order.length} bytes)`);
    this.order = order === undefined ? 0 : readId(order, 0);
    const dead = Buffer.from([TAG_DEAD]);
    for await (const key of this.db.keys({ gte: dead, lt: prefixEnd(dead) })) {
      if (key.length === PREFIX_SIZE) this.collect(readId(key, 1));
    }
  }

  private async loadVersion(): Promise<void> {
    const version = await this.db.get(VERSION_KEY);
    if (version === undefined) {
      const any = await this.db.keys({ limit: 1 }).all();
      if (any.length > 0) throw corruption(this.location, 'records without a format record (V)');
      const next = Buffer.alloc(8);
      writeId(next, 0, 1);
      await this.db.batch([{ type: 'put', key: VERSION_KEY, value: versionValue() }, { type: 'put', key: NEXT_ID_KEY, value: next }], { sync: this.sync });
      return;
    }
    let parsed: { format?: unknown; version?: unknown };
    try {
      parsed = JSON.parse(version.toString('utf8'));
    } catch {
      throw corruption(this.location, 'unreadable format record (V)');
    }
    if (parsed.format !== STORE_FORMAT) throw corruption(this.location, `format record names ${String(parsed.format)}, not ${STORE_FORMAT}`);
    if (canUpgrade(parsed.version)) {
      await upgrade(parsed.version, (ops) => this.db.batch(ops, { sync: true }), this.location, this.logger);
      return;
    }
    if (parsed.version !== STORE_VERSION) {
      throw new CountdError(ErrorCodes.DATA_DIR_MISMATCH, `database ${this.location} has store format version ${String(parsed.version)}; this countd reads version ${STORE_VERSION}`);
    }
  }

  /** Whether store name `ks` (latin1) ranks ties first: by its keyspace's rule, a period (windows.ts) by its keyspace's name. */
  ranksTiesFirst(ks: string): boolean {
    return this.tiesFirst.has(governingKeyspace(ks));
  }

  /**
   * Clear a deleted keyspace's records, then its `X` record, paced
   * (collect.ts). Unreferenced ids are invisible, so this need not be
   * atomic; a close stops it (the next open resumes from `X`).
   */
  collect(id: number): void {
    this.collecting = this.collecting.then(async () => {
      try {
        await clearDeadKeyspace(this.db, id, { ...this.clearPace, stopped: () => this.closed || this.stopCollecting });
      } catch (err) {
        this.logger.warn('could not clear a deleted keyspace; will retry on next open', { id, error: translateDbError(err, 'clear', this.location).message });
      }
    });
  }

  // ---------------------------------------------------------------- writes

  /**
   * Run `fn` alone among writes. Only an apply (`overlapsInflight`) may start
   * while the apply before it is still being written: it prepares on top of
   * it (inflight-apply.ts). Every other write waits for that write first.
   */
  exclusive<T>(fn: () => Promise<T>, overlapsInflight = false): Promise<T> {
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
  async commit(ops: BatchOp[] | Chained, onCommitted: () => void, what: string): Promise<void> {
    let pre: { snapshot: Snapshot; refs: number } | undefined;
    try {
      const batch = Array.isArray(ops) ? await this.chain(ops) : ops;
      // Taken in the same synchronous step as the write starts: the state before it.
      pre = this.preWrite ??= { snapshot: this.db.snapshot(), refs: 1 };
      await batch.write({ sync: this.sync });
      // From here to the swap: synchronous, so a read sees the state before or after, never between.
      onCommitted();
      this.epoch++;
    } catch (err) {
      throw translateDbError(err, what, this.location);
    } finally {
      if (pre !== undefined && this.preWrite === pre) this.preWrite = undefined;
      if (pre !== undefined) void this.unref(pre);
    }
  }

  /**
   * A snapshot of the current state, for a read: its own, or while a write
   * is in flight the one taken before it (the in-memory state is that of
   * before the write until its swap). Call synchronously with reading the
   * in-memory state (after readable()); release it once done.
   */
  captureSnapshot(): { snapshot: Snapshot; release: () => Promise<void> } {
    const pre = this.preWrite;
    if (pre === undefined) {
      const snapshot = this.db.snapshot();
      return { snapshot, release: () => snapshot.close() };
    }
    pre.refs++;
    let released = false;
    return {
      snapshot: pre.snapshot,
      release: () => {
        if (released) return Promise.resolve();
        released = true;
        return this.unref(pre);
      },
    };
  }

  private async unref(pre: { snapshot: Snapshot; refs: number }): Promise<void> {
    if (--pre.refs === 0) await pre.snapshot.close().catch(() => {});
  }

  /**
   * Operations as a chained batch: abstract-level's array form clones every
   * operation and costs ~10x more per operation (measured: 300,000 puts,
   * 10 s vs 1 s).
   */
  private async chain(ops: BatchOp[]): Promise<Chained> {
    const batch = this.db.batch();
    try {
      for (const op of ops) {
        if (op.type === 'put') batch.put(op.key, op.value);
        else batch.del(op.key);
      }
    } catch (err) {
      await batch.close();
      throw err;
    }
    return batch;
  }

  // ---------------------------------------------------------------- reads

  /**
   * Resolves when a read may capture its state (captureSnapshot): at once,
   * unless the database is being reopened. Writes in flight are no reason
   * to wait: a read takes the state before them.
   */
  async readable(): Promise<void> {
    while (this.reopening !== null) await this.reopening;
  }

  /** A count record's count: 8 bytes, or 16 in a `--ties first` keyspace (the apply order follows). */
  decodeCountValue(value: Buffer): bigint {
    if (value.length !== COUNT_SIZE && value.length !== COUNT_SIZE + ORDER_SIZE) throw corruption(this.location, `count record of ${value.length} bytes, not ${COUNT_SIZE} or ${COUNT_SIZE + ORDER_SIZE}`);
    return value.readBigInt64BE(0);
  }

  async *scanKeys(range: { gte: Buffer; lt: Buffer; snapshot?: Snapshot | undefined }): AsyncGenerator<Buffer> {
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

  // ---------------------------------------------------------------- rank fences

  /** Fences for a write (under the mutex, so the current database state is the base). */
  async fencesForWrite(info: KeyspaceInfo): Promise<Fences> {
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
  async loadFences(info: KeyspaceInfo, snapshot: Snapshot | undefined): Promise<Fences> {
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

  async readFences(id: number, snapshot?: Snapshot): Promise<{ keys: Buffer[]; counts: number[] }> {
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

  /** Fences cut from a full scan of the count index: blocks of B entries (the last may hold fewer). */
  async fencesFromIndex(id: number, snapshot?: Snapshot): Promise<{ keys: Buffer[]; counts: number[] }> {
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
}

/** Open (creating if missing) the database at `settings.location` and load its state. */
export async function openState(settings: StateSettings, level: LevelOptions): Promise<StoreState> {
  const location = settings.location;
  const db: Db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  try {
    await db.open({ createIfMissing: true, ...level });
  } catch (err) {
    throw translateDbError(err, 'open', location);
  }
  const state = new StoreState(db, settings, level);
  try {
    await state.load();
  } catch (err) {
    await db.close().catch(() => {});
    throw translateDbError(err, 'open', location);
  }
  return state;
}

/** Wait for every write and background clearing, then close the database. */
export async function closeState(state: StoreState): Promise<void> {
  if (state.closed) return;
  state.closed = true;
  await state.mutex.catch(() => {});
  await state.inflight?.done.catch(() => {});
  await state.collecting;
  try {
    await state.db.close();
  } catch (err) {
    throw translateDbError(err, 'close', state.location);
  }
}
