// Applying an IncrementBatch: read the current counts, combine (combine.ts),
// and write counts, count index, rank fences (fence-update.ts), directory
// records and marks in ONE LevelDB batch; then swap the in-memory state.
// The arguments were validated by Store#apply (store.ts).
//
// An apply overlaps the one before it: once that one's batch is handed to
// LevelDB the mutex is released, and this one prepares on top of its results
// (inflight-apply.ts explains why that is exact).

import { CountdError } from '../errors.js';
import { metrics } from '../metrics.js';
import { ORDER_KEY, ORDER_SIZE, Ties, encodeCountOrder } from './encoding.js';
import { EMPTY, NEXT_ID_KEY, PREFIX_SIZE, TAG_COUNT, TAG_DEAD, TAG_INDEX, TAG_KEYSPACE, TAG_SETTINGS, encodeSettingsValue, encodeKeyspaceValue, idPrefix, taggedName, writeId } from './encoding.js';
import { Operator, PairMode, combineValues, saturate } from './combine.js';
import { translateDbError } from './errors.js';
import { updateFences } from './fence-update.js';
import type { IncrementBatch, PendingIncrement, PendingKeyspace } from './increment-batch.js';
import { InflightApply } from './inflight-apply.js';
import { KeyScratch, suffixOf } from './apply-scratch.js';
import { RawOps } from './raw-batch.js';
import { Fences } from './rank-fences.js';
import { FENCE_CONCURRENCY } from './schema.js';
import type { BatchOp, Chained, KeyspaceInfo, StoreState } from './state.js';
import { governingKeyspace, isPeriodOf, isWindowed, parsePeriodId, type WindowSettings } from './windows.js';

export interface ApplyResult {
  /** Distinct (keyspace, key) pairs applied. */
  keys: number;
  /** Keys whose count was clamped to the signed 64-bit range. */
  saturated: number;
}

/**
 * What a committed apply swaps into memory for one keyspace: its record,
 * fences and changed blocks; `gone`: the id whose records are now dead (a
 * deleted keyspace, or one whose last key was deleted), `info` null when
 * the name no longer exists.
 */
type StateSwap = { ks: string; info: KeyspaceInfo | null; fences: Fences | undefined; touched: Buffer[]; gone?: number };

type Saturation = { keys: number; keyspace: Buffer; key: Buffer };

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
  /** The batch deletes the stored keyspace: its id (records collected once committed). */
  droppedId: number | undefined;
  /** How values combine with the stored counts (combine.ts Operator). */
  operator: number;
  /** The batch creates (operator) or deletes (0) the keyspace: its settings record changes. */
  declare: number | undefined;
  /** With `declare`: the keyspace's time window, if it has one (windows.ts). */
  window: WindowSettings | undefined;
  /** `--ties first`: count values carry the apply order, index suffixes are `rankcount order key`. */
  tiesFirst: boolean;
  items: PendingIncrement[];
  /** Index suffixes added and removed by this apply. */
  inserted: Buffer[];
  removed: Buffer[];
  fenceOps: BatchOp[];
  fences: Fences | undefined;
  /** Fence keys (of the fences before this apply) whose blocks this apply changes: see block-cache.ts. */
  touched: Buffer[];
}

/** Where each pair's current count comes from (see lookupCounts). */
interface Lookup {
  /** Per pair: its count from the count cache or the apply in flight. */
  cachedOld: Array<bigint | undefined>;
  /** Per pair: 1 in the count cache now; 2 unknown until this apply commits (count-cache.ts record()). */
  wasCached: Uint8Array;
  /** Per pair: its slot in readKeys, or -1 if not read. */
  readSlot: Int32Array;
  readKeys: Buffer[];
  /** The values read for readKeys. */
  current: Array<Buffer | undefined>;
}

/** Buffers reused by every apply for what only goes into its batch (writeCounts runs without awaiting). */
const scratch = new KeyScratch();

/** Prepare an apply and hand its batch to LevelDB; `written` settles when it is committed (or failed). */
export async function applyBatch(state: StoreState, batch: IncrementBatch, markOps: BatchOp[]): Promise<{ written: Promise<ApplyResult> }> {
  try {
    return await prepare(state, batch, markOps);
  } catch (err) {
    throw translateDbError(err, 'apply', state.location);
  }
}

async function prepare(state: StoreState, batch: IncrementBatch, markOps: BatchOp[]): Promise<{ written: Promise<ApplyResult> }> {
  // Sets and deletes remove keys and keyspaces, which the count cache and
  // the overlay of inflight-apply.ts cannot express: such an apply runs
  // alone (after the one in flight commits, and before the next prepares).
  const lifecycle = batch.hasLifecycleOps;
  // So does one that writes a `--ties first` keyspace: it reads every old
  // count value (with its order) from the database, never from the cache or
  // an apply in flight, and hands out the next apply order.
  const ties = touchesTiesFirst(state, batch);
  if ((lifecycle || ties) && state.inflight !== undefined) await afterInflight(state, state.inflight);
  // An apply still being written: this one prepares on top of its results (inflight-apply.ts).
  const prev = state.inflight;
  if (prev !== undefined) metrics.appliesOverlapped.inc();
  const { groups, nextId } = groupsOf(state, batch, prev);
  const lookup = await lookupCounts(state, batch, groups, prev);
  // Operations go straight into a chained batch (no operation objects).
  const chained = state.db.batch();
  let submitted = false;
  try {
    const { finals, saturation, ordered, order } = writeCounts(state, chained, batch.keyBytes, groups, lookup, state.order + 1, batch.orderEachPair);
    if (ordered) chained.put(ORDER_KEY, encodeOrder(order));
    // From here on this apply needs `prev` committed: fences and blocks read
    // from disk must hold its writes.
    if (prev !== undefined) await afterInflight(state, prev);
    const changed = await writeFences(state, chained, groups);
    if (nextId !== state.nextId) {
      const value = Buffer.allocUnsafe(8);
      writeId(value, 0, nextId);
      chained.put(NEXT_ID_KEY, value);
    }
    for (const op of markOps) putOp(chained, op);

    const admit = state.countCache.admitting;
    // A lifecycle apply clears the cache once committed (submitApply): nothing to record.
    if (!lifecycle) recordCounts(state, groups, finals as bigint[], lookup.wasCached, admit);
    const swaps: StateSwap[] = changed.map((g) => ({ ks: g.ks, info: g.info, fences: g.fences!, touched: g.touched }));
    swaps.push(...removedKeyspaces(chained, groups));
    const settings = settingsChanges(chained, groups);
    // Pairs not in the count cache (no cache, or new pairs not admitted): the
    // next apply looks them up in this one's own list. A lifecycle apply runs
    // alone (awaited below), so no apply prepares on top of it.
    const overlay = admit || lifecycle ? undefined : { groups, finals: finals as bigint[] };
    submitted = true;
    const created = groups.filter((g) => g.created).map((g) => g.info.id);
    const written = submitApply(state, chained, swaps, { nextId, order: ordered ? order : undefined, created }, batch.keys, saturation, overlay, lifecycle, settings);
    if (lifecycle) await written.catch(() => {});
    return { written };
  } finally {
    // Abandoned by an error before it was handed over (submitApply closes it): close is idempotent.
    if (!submitted) await chained.close();
  }
}

/**
 * Keyspaces this apply deletes (a keyspace delete, or its last key
 * deleted): the directory record goes (unless the batch refills the name
 * under a new id) and the id is recorded dead (`X`), its records collected
 * in the background once committed (state.ts collect).
 */
function removedKeyspaces(chained: Chained, groups: ApplyGroup[]): StateSwap[] {
  const swaps: StateSwap[] = [];
  for (const g of groups) {
    const emptied = g.info.size === 0 && !g.created;
    if (g.droppedId === undefined && !emptied) continue;
    const dead = g.droppedId ?? g.info.id;
    chained.put(idPrefix(TAG_DEAD, dead), EMPTY);
    if (g.info.size === 0) chained.del(taggedName(TAG_KEYSPACE, g.info.name));
    // A refilled name's new record and fences were swapped in by writeFences' group.
    swaps.push({ ks: g.ks, info: g.info.size === 0 ? null : g.info, fences: undefined, touched: [], gone: dead });
  }
  return swaps;
}

/** Settings records of the keyspaces the batch creates (put `S name`) or deletes (del); what to swap in once committed. */
function settingsChanges(chained: Chained, groups: ApplyGroup[]): SettingsChange[] {
  const changes: SettingsChange[] = [];
  for (const g of groups) {
    if (g.declare === undefined) continue;
    const key = taggedName(TAG_SETTINGS, g.info.name);
    const window = isWindowed(g.window) ? g.window : undefined;
    if (g.declare === 0) chained.del(key);
    else chained.put(key, encodeSettingsValue({ operator: g.declare, ties: g.tiesFirst ? Ties.first : Ties.key, window }));
    changes.push([g.ks, g.declare, g.tiesFirst, window]);
  }
  return changes;
}

/** A settings record the apply changes: name, operator (0: deleted), ties first, window. */
type SettingsChange = [string, number, boolean, WindowSettings | undefined];

/** Whether the batch writes a `--ties first` keyspace (declared so now, or by this batch's create; a period by its keyspace's rule). */
function touchesTiesFirst(state: StoreState, batch: IncrementBatch): boolean {
  const byId = pendingsById(batch);
  for (const pending of byId.values()) if (tiesFirstOf(state, pending, byId)) return true;
  return false;
}

function pendingsById(batch: IncrementBatch): Map<string, PendingKeyspace> {
  const byId = new Map<string, PendingKeyspace>();
  for (const pending of batch.keyspaces()) byId.set(pending.id, pending);
  return byId;
}

/**
 * The pending keyspace whose settings govern `pending`: itself, or for a
 * period (windows.ts) its keyspace's, when the batch declares that one.
 */
function governingPending(pending: PendingKeyspace, byId: Map<string, PendingKeyspace>): PendingKeyspace | undefined {
  if (pending.declare !== undefined) return pending;
  const governing = governingKeyspace(pending.id);
  const g = governing === pending.id ? undefined : byId.get(governing);
  return g?.declare !== undefined ? g : undefined;
}

/** Whether `pending` ranks ties first: by its keyspace's rule (a period by its keyspace's name). */
function tiesFirstOf(state: StoreState, pending: PendingKeyspace, byId: Map<string, PendingKeyspace>): boolean {
  const declared = governingPending(pending, byId);
  return declared !== undefined ? declared.declare !== 0 && declared.ties === Ties.first : state.ranksTiesFirst(pending.id);
}

/** How `pending` combines with the stored counts (combine.ts Operator): its keyspace's operator (a period by its keyspace's name). */
function operatorOf(state: StoreState, pending: PendingKeyspace, byId: Map<string, PendingKeyspace>): number {
  const declared = governingPending(pending, byId);
  return declared !== undefined ? declared.declare || Operator.sum : (state.settings.get(governingKeyspace(pending.id)) ?? Operator.sum);
}

function encodeOrder(order: number): Buffer {
  const value = Buffer.allocUnsafe(ORDER_SIZE);
  writeId(value, 0, order);
  return value;
}

function putOp(chained: Chained, op: BatchOp): void {
  if (op.type === 'put') chained.put(op.key, op.value);
  else chained.del(op.key);
}

/** The batch's keyspaces as apply groups; new keyspaces get ids now, committed with the batch. */
function groupsOf(state: StoreState, batch: IncrementBatch, prev: InflightApply | undefined): { groups: ApplyGroup[]; nextId: number } {
  const groups: ApplyGroup[] = [];
  let nextId = prev?.nextIdAfter ?? state.nextId;
  const pendings = [...batch.keyspaces()];
  const byId = pendingsById(batch);
  for (const pending of pendings) {
    // After `prev` commits, the directory holds these very records (prev.dirAfter's objects).
    const stored = prev?.dirAfter.get(pending.id) ?? state.dir.get(pending.id);
    // A deleted keyspace's pairs start a new keyspace under a fresh id.
    const droppedId = pending.dropped === true ? stored?.id : undefined;
    const known = pending.dropped === true ? undefined : stored;
    const info = known ? { ...known } : { name: pending.name, id: nextId++, size: 0 };
    // A fresh id: every key it will hold goes through this store's applies (key-filter.ts).
    if (!known) state.keyFilter.track(info.id);
    const declare = pending.declare;
    // A period of a windowed keyspace combines and ranks ties by its keyspace's settings (windows.ts).
    const operator = operatorOf(state, pending, byId);
    const tiesFirst = tiesFirstOf(state, pending, byId);
    groups.push({ ks: pending.id, info, committed: known, created: !known, droppedId, operator, declare, window: pending.window, tiesFirst, items: pending.items, inserted: [], removed: [], fenceOps: [], fences: undefined, touched: [] });
  }
  groups.push(...droppedPeriods(state, pendings));
  return { groups, nextId };
}

/**
 * A keyspace deleted or re-created by the batch takes its stored periods
 * (windows.ts) with it: those the batch does not write to are dropped here
 * (those it writes to are groups marked dropped already). Lifecycle applies
 * run alone, so the committed directory is current.
 */
function droppedPeriods(state: StoreState, pendings: PendingKeyspace[]): ApplyGroup[] {
  const dropped = pendings.filter((p) => p.dropped === true && parsePeriodId(p.id) === undefined);
  if (dropped.length === 0) return [];
  const inBatch = new Set(pendings.map((p) => p.id));
  const out: ApplyGroup[] = [];
  for (const [ks, info] of state.dir) {
    if (inBatch.has(ks) || !dropped.some((p) => isPeriodOf(ks, p.id))) continue;
    out.push({ ks, info: { ...info, size: 0 }, committed: info, created: false, droppedId: info.id, operator: Operator.sum, declare: undefined, window: undefined, tiesFirst: false, items: [], inserted: [], removed: [], fenceOps: [], fences: undefined, touched: [] });
  }
  return out;
}

/**
 * Current counts come from the count cache (or, without one, from the
 * apply in flight), or are known absent (a keyspace created now has a
 * fresh id, so no records; one whose keys are all cached has no others),
 * or are read: all with one getMany. A pair the apply in flight writes is
 * never read: it is in the cache (not trimmed before that apply commits)
 * or in the apply's own list.
 */
async function lookupCounts(state: StoreState, batch: IncrementBatch, groups: ApplyGroup[], prev: InflightApply | undefined): Promise<Lookup> {
  const total = batch.keys;
  const lookup: Lookup = { cachedOld: new Array(total), wasCached: new Uint8Array(total), readSlot: new Int32Array(total).fill(-1), readKeys: [], current: [] };
  const cacheFlag = prev === undefined ? 1 : 2;
  const cache = state.countCache;
  const keyBytes = batch.keyBytes;
  let n = 0;
  let hits = 0;
  let looked = 0;
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
    // A `--ties first` keyspace's counts are never cached (their order is in the record): read.
    const useCache = !group.tiesFirst;
    // A keyspace this store created: a key the filter never saw is new (key-filter.ts), nothing to look up.
    const filtered = state.keyFilter.covers(group.info.id);
    const complete = !useCache ? false : cache.enabled ? group.info.size > 0 && cache.cachedIn(group.ks) === group.info.size : prev !== undefined && !state.dir.has(group.ks);
    let prefix: Buffer | undefined;
    looked += group.items.length;
    for (const p of group.items) {
      if (filtered && !state.keyFilter.mayContain(group.info.id, keyBytes, p.keyStart, p.keyLength)) {
        n++;
        continue;
      }
      // A pair the apply in flight writes is in the cache, or (not admitted) in its own list.
      const cached = !useCache ? undefined : ((cache.enabled ? cache.get(p.pair) : undefined) ?? prev?.finalOf(p.pair));
      if (cached !== undefined) {
        lookup.cachedOld[n] = cached;
        lookup.wasCached[n] = cacheFlag;
        hits++;
      } else if (!complete) {
        prefix ??= idPrefix(TAG_COUNT, group.info.id);
        lookup.readSlot[n] = lookup.readKeys.push(countKeyOf(prefix, keyBytes, p)) - 1;
      }
      n++;
    }
  }
  cache.noteLookups(hits, looked);
  if (lookup.readKeys.length > 0) lookup.current = await state.db.getMany(lookup.readKeys);
  return lookup;
}

/**
 * Per changed key: put `C id key`, del the old `I` entry, put the new one;
 * note the index changes on the groups. Returns every pair's count after
 * this apply (each exists afterwards), for the count cache.
 */
function writeCounts(
  state: StoreState,
  chained: Chained,
  keyBytes: Buffer,
  groups: ApplyGroup[],
  lookup: Lookup,
  order: number,
  each: boolean,
): { finals: Array<bigint | undefined>; saturation: Saturation | undefined; ordered: boolean; order: number } {
  const { cachedOld, readSlot, readKeys, current } = lookup;
  const finals: Array<bigint | undefined> = new Array(cachedOld.length);
  let saturated = 0;
  let firstSaturated: { keyspace: Buffer; key: Buffer } | undefined;
  let cursor = 0;
  let ordered = false;
  /** The last apply order handed out: `order` for every pair, or (`each`: a restore) one more per pair. */
  let handed = each ? order - 1 : order;
  const raw = new RawOps(chained);
  for (const group of groups) {
    const countPrefix = idPrefix(TAG_COUNT, group.info.id);
    const indexPrefix = idPrefix(TAG_INDEX, group.info.id);
    const { inserted, removed } = group;
    const filter = state.keyFilter.tracks(group.info.id) ? state.keyFilter : undefined;
    for (const p of group.items) {
      const slot = readSlot[cursor]!;
      const value = slot >= 0 ? current[slot] : undefined;
      const old = value !== undefined ? state.decodeCountValue(value) : cachedOld[cursor];
      if (p.mode === PairMode.deleted) {
        // combine.ts: the key goes (or stays absent).
        finals[cursor++] = undefined;
        if (old === undefined) continue;
        raw.del(slot >= 0 ? readKeys[slot]! : scratch.countKey(countPrefix, keyBytes, p.keyStart, p.keyLength));
        const oldSuffix = suffixOf(value ?? scratch.oldValue(old), keyBytes, p.keyStart, p.keyLength);
        raw.del(scratch.prefixed(indexPrefix, oldSuffix));
        removed.push(oldSuffix);
        group.info.size--;
        continue;
      }
      // combine.ts countAfter, with the exact value kept to tell a saturated sum.
      const sum = p.mode === PairMode.reset || old === undefined ? p.delta : combineValues(group.operator, old, p.delta);
      const next = saturate(sum);
      if (next !== sum) {
        saturated++;
        firstSaturated ??= { keyspace: group.info.name, key: Buffer.from(keyBytes.subarray(p.keyStart, p.keyStart + p.keyLength)) };
      }
      finals[cursor++] = next;
      if (old === next) continue;
      // `--ties first`: the key reached this count at this apply (its order), whichever way it moved.
      if (group.tiesFirst && each) handed++;
      // Keys and values that only go into the batch are reused buffers (apply-scratch.ts).
      const nextValue = group.tiesFirst ? encodeCountOrder(next, handed) : scratch.nextValue(next);
      ordered ||= group.tiesFirst;
      raw.put(slot >= 0 ? readKeys[slot]! : scratch.countKey(countPrefix, keyBytes, p.keyStart, p.keyLength), nextValue);
      if (old === undefined) {
        group.info.size++;
        filter?.add(group.info.id, keyBytes, p.keyStart, p.keyLength);
      } else {
        const oldSuffix = suffixOf(value ?? scratch.oldValue(old), keyBytes, p.keyStart, p.keyLength);
        raw.del(scratch.prefixed(indexPrefix, oldSuffix));
        removed.push(oldSuffix);
      }
      const newSuffix = suffixOf(nextValue, keyBytes, p.keyStart, p.keyLength);
      raw.put(scratch.prefixed(indexPrefix, newSuffix), EMPTY);
      inserted.push(newSuffix);
    }
  }
  const saturation = firstSaturated === undefined ? undefined : { keys: saturated, ...firstSaturated };
  return { finals, saturation, ordered, order: handed };
}

/**
 * Rank fences and directory records of the keyspaces whose index changed,
 * several keyspaces at a time: a keyspace whose blocks split waits on
 * LevelDB reads (thread pool) while others compute. Returns those groups.
 */
async function writeFences(state: StoreState, chained: Chained, groups: ApplyGroup[]): Promise<ApplyGroup[]> {
  // A keyspace left without keys has no fences to move: removedKeyspaces() collects it.
  const changed = groups.filter((g) => (g.inserted.length > 0 || g.removed.length > 0) && g.info.size > 0);
  await runLimited(changed.length, FENCE_CONCURRENCY, async (i) => {
    const group = changed[i]!;
    // The fences before this apply, checked against the size before it (group.committed), not group.info.
    const before = group.committed === undefined ? Fences.empty() : await state.fencesForWrite(group.committed);
    group.fences = await updateFences(state, group.info.id, before, group, group.fenceOps, group.touched);
  });
  for (const group of changed) {
    for (const op of group.fenceOps) putOp(chained, op);
    chained.put(taggedName(TAG_KEYSPACE, group.info.name), encodeKeyspaceValue(group.info.id, group.info.size));
  }
  return changed;
}

/**
 * Hand an apply's batch to LevelDB. From here the batch is commit()'s to
 * close, and the next apply may prepare on top of this one (the counts are
 * already in the count cache; trimmed once committed; a read uses the
 * cache only while no apply is in flight). A function of its own so that
 * what stays alive during the write is only what the swap needs, not the
 * apply's per-key state.
 */
function submitApply(
  state: StoreState,
  chained: Chained,
  swaps: StateSwap[],
  after: { nextId: number; order: number | undefined; created: number[] },
  keys: number,
  saturation: Saturation | undefined,
  overlay: { groups: ApplyGroup[]; finals: bigint[] } | undefined,
  lifecycle: boolean,
  settings: SettingsChange[],
): Promise<ApplyResult> {
  const nextId = after.nextId;
  const onCommitted = (): void => {
    state.nextId = nextId;
    if (after.order !== undefined) state.order = after.order;
    for (const id of after.created) state.keyFilter.cover(id);
    for (const [ks, operator, tiesFirst, window] of settings) {
      if (operator === 0) state.settings.delete(ks);
      else state.settings.set(ks, operator);
      if (tiesFirst) state.tiesFirst.add(ks);
      else state.tiesFirst.delete(ks);
      if (window === undefined) state.windows.delete(ks);
      else state.windows.set(ks, window);
    }
    for (const g of swaps) {
      if (g.gone !== undefined) {
        if (g.info === null) state.dir.delete(g.ks);
        state.fenceCache.delete(g.gone);
        state.blockCache.dropKeyspace(g.gone);
        state.keyFilter.uncover(g.gone);
        state.collect(g.gone);
        continue;
      }
      state.dir.set(g.ks, g.info!);
      state.fenceCache.set(g.info!.id, g.fences!);
      state.blockCache.invalidate(g.info!.id, g.touched);
    }
    // Deleted keys are not in the cache's terms (it maps pairs to counts): start it over.
    if (lifecycle) state.countCache.clear();
    else state.countCache.trim();
  };
  const result = (): ApplyResult => {
    if (saturation !== undefined) {
      state.logger.warn('counts saturated at the signed 64-bit range', {
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
  const done = state.commit(chained, onCommitted, 'apply');
  const inflight = new InflightApply(done, new Map(swaps.filter((g) => g.info !== null).map((g) => [g.ks, g.info!])), nextId, overlay);
  state.inflight = inflight;
  done.then(
    () => {
      if (state.inflight === inflight) state.inflight = undefined;
    },
    () => {
      // Counts that were never written: no cached count may survive them.
      state.countCache.clear();
      if (state.inflight === inflight) state.inflight = undefined;
    },
  );
  return done.then(result);
}

/** Wait until the apply in flight has committed; its failure fails the apply prepared on top of it. */
async function afterInflight(state: StoreState, prev: InflightApply): Promise<void> {
  try {
    await prev.done;
  } catch (err) {
    const cause = translateDbError(err, 'apply', state.location);
    throw new CountdError(cause.code, `the apply before this one failed, and this one was prepared on top of it (nothing of either was written): ${cause.message}`, { cause });
  }
}

/**
 * An apply handed to LevelDB: once it commits, every pair of it exists
 * with its final count. Recorded before the commit (see prepare), and
 * not trimmed before it: the next apply must find every one of them.
 */
function recordCounts(state: StoreState, groups: ApplyGroup[], finals: bigint[], wasCached: Uint8Array, admit: boolean): void {
  const cache = state.countCache;
  if (!cache.enabled) return;
  let at = 0;
  for (const group of groups) {
    if (!group.tiesFirst) cache.record(group.ks, group.items, finals, wasCached, at, admit);
    at += group.items.length;
  }
}

/** `C id key` of a pending increment, its key copied from the batch's key bytes. */
function countKeyOf(prefix: Buffer, keyBytes: Buffer, p: PendingIncrement): Buffer {
  const countKey = Buffer.allocUnsafe(PREFIX_SIZE + p.keyLength);
  for (let i = 0; i < PREFIX_SIZE; i++) countKey[i] = prefix[i]!;
  keyBytes.copy(countKey, PREFIX_SIZE, p.keyStart, p.keyStart + p.keyLength);
  return countKey;
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
