// Writes other than an apply: creating a keyspace in bulk (countd migrate),
// deleting one (its records are collected in the background: state.ts), and
// checking or rebuilding a keyspace's rank fences from its count index. Each
// runs under the write mutex (StoreState#exclusive, taken by store.ts, which
// validated the arguments) and commits one batch.

import { invalidArgument } from '../errors.js';
import { ORDER_KEY, ORDER_SIZE, encodeCountOrder } from './encoding.js';
import { EMPTY, NEXT_ID_KEY, PREFIX_SIZE, TAG_COUNT, TAG_DEAD, TAG_FENCE, TAG_INDEX, TAG_KEYSPACE, TAG_SETTINGS } from './encoding.js';
import { compareBytes, encodeCount, encodeFenceValue, encodeKeyspaceValue, idPrefix, indexKeyFromCount, prefixEnd, taggedName, withPrefix, writeId } from './encoding.js';
import { translateDbError } from './errors.js';
import { Fences, cutBlock } from './rank-fences.js';
import { latin1, type BatchOp, type KeyspaceInfo, type StoreState } from './state.js';
import { isPeriodOf } from './windows.js';

/** Create keyspace `name` holding keys[i] with counts[i], with `markOps`, in one batch (see Store#createKeyspace). */
export async function createKeyspace(state: StoreState, name: Buffer, keys: Buffer[], counts: bigint[], markOps: BatchOp[]): Promise<void> {
  const ks = latin1(name);
  if (state.dir.has(ks)) throw invalidArgument(`keyspace ${name.toString('utf8')} exists`);
  const id = state.nextId;
  // Its keys do not go through an apply: never answered from the key filter (an apply that failed may have tracked this id).
  state.keyFilter.uncover(id);
  const n = keys.length;
  const countPrefix = idPrefix(TAG_COUNT, id);
  const indexPrefix = idPrefix(TAG_INDEX, id);
  const chained = state.db.batch();
  // A name declared `--ties first` (holding no key yet): every key reaches its count at this one order.
  const order = state.ranksTiesFirst(ks) ? state.order + 1 : undefined;
  try {
    const index: Buffer[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const countKey = withPrefix(countPrefix, keys[i]!);
      const value = order === undefined ? encodeCount(counts[i]!) : encodeCountOrder(counts[i]!, order);
      chained.put(countKey, value);
      index[i] = indexKeyFromCount(indexPrefix, value, countKey, PREFIX_SIZE);
    }
    // The fences need rank order (legacy files come sorted: then this is one pass).
    index.sort(compareBytes);
    for (let i = 0; i < n; i++) chained.put(index[i]!, EMPTY);
    // Blocks as fence-update.ts cuts a split block: floor(n / B) pieces of at least B entries.
    const pieces = cutBlock(EMPTY, n, state.fenceSize, (start) => index[start]!.subarray(PREFIX_SIZE));
    const fenceKeys = pieces.map((p) => p.key);
    const fenceCounts = pieces.map((p) => p.count);
    const fencePrefix = idPrefix(TAG_FENCE, id);
    for (let b = 0; b < fenceKeys.length; b++) chained.put(withPrefix(fencePrefix, fenceKeys[b]!), encodeFenceValue(fenceCounts[b]!));
    chained.put(taggedName(TAG_KEYSPACE, name), encodeKeyspaceValue(id, n));
    const next = Buffer.allocUnsafe(8);
    writeId(next, 0, id + 1);
    chained.put(NEXT_ID_KEY, next);
    if (order !== undefined) {
      const value = Buffer.allocUnsafe(ORDER_SIZE);
      writeId(value, 0, order);
      chained.put(ORDER_KEY, value);
    }
    for (const op of markOps) void (op.type === 'put' ? chained.put(op.key, op.value) : chained.del(op.key));
    const info: KeyspaceInfo = { name: Buffer.from(name), id, size: n };
    const fences = new Fences(fenceKeys, fenceCounts);
    await state.commit(
      chained,
      () => {
        state.nextId = id + 1;
        if (order !== undefined) state.order = order;
        state.dir.set(ks, info);
        state.fenceCache.set(id, fences);
        // A fresh id: the count cache and the block cache hold nothing of it.
      },
      'create keyspace',
    );
  } catch (err) {
    throw translateDbError(err, 'create keyspace', state.location);
  } finally {
    await chained.close();
  }
}

/** Delete keyspace `name` and write `markOps` atomically; its records are collected afterwards. */
export async function deleteKeyspace(state: StoreState, name: Buffer, markOps: BatchOp[]): Promise<void> {
  const ks = latin1(name);
  const ops: BatchOp[] = [...markOps];
  // A windowed keyspace's periods (windows.ts) go with it.
  const gone = [...state.dir].filter(([id]) => id === ks || isPeriodOf(id, ks)).map(([, record]) => record);
  ops.push(...dropOps(gone));
  const declared = state.settings.has(ks);
  if (declared) ops.push({ type: 'del', key: taggedName(TAG_SETTINGS, name) });
  if (ops.length === 0) return;
  await state.commit(
    ops,
    () => {
      state.settings.delete(ks);
      state.tiesFirst.delete(ks);
      state.windows.delete(ks);
      forgetKeyspaces(state, gone);
    },
    'delete keyspace',
  );
  for (const record of gone) state.collect(record.id);
}

/** The records that delete stored keyspaces at once: each name's `K` record goes, its id is recorded dead (`X`). */
export function dropOps(records: KeyspaceInfo[]): BatchOp[] {
  return records.flatMap((record): BatchOp[] => [
    { type: 'del', key: taggedName(TAG_KEYSPACE, record.name) },
    { type: 'put', key: idPrefix(TAG_DEAD, record.id), value: EMPTY },
  ]);
}

/** Once dropOps(records) committed: the keyspaces leave memory (directory, fences, blocks, counts); the caller then collects their ids. */
export function forgetKeyspaces(state: StoreState, records: KeyspaceInfo[]): void {
  if (records.length === 0) return;
  for (const record of records) {
    state.dir.delete(latin1(record.name));
    state.fenceCache.delete(record.id);
    state.blockCache.dropKeyspace(record.id);
  }
  // Their names may come back as new, empty keyspaces: no count of the old ones may survive.
  state.countCache.clear();
}

/** Whether the persisted rank fences of keyspace `name` match a full scan of its count index (a mismatch is logged). */
export async function checkRankIndex(state: StoreState, name: Buffer): Promise<boolean> {
  const info = state.dir.get(latin1(name));
  if (info === undefined) return true;
  try {
    const disk = await state.readFences(info.id);
    const fail = (why: string): boolean => {
      state.logger.warn('rank index check failed', { keyspace: name.toString('utf8'), reason: why });
      return false;
    };
    if (disk.keys.length === 0 || disk.keys[0].length !== 0) return fail('no first fence');
    const prefix = idPrefix(TAG_INDEX, info.id);
    const actual = new Array<number>(disk.keys.length).fill(0);
    let block = 0;
    let total = 0;
    for await (const key of state.scanKeys({ gte: prefix, lt: prefixEnd(prefix) })) {
      const suffix = key.subarray(PREFIX_SIZE);
      while (block + 1 < disk.keys.length && disk.keys[block + 1].compare(suffix) <= 0) block++;
      actual[block]++;
      total++;
    }
    for (let i = 0; i < actual.length; i++) if (actual[i] !== disk.counts[i]) return fail(`block ${i} holds ${actual[i]} entries, its fence says ${disk.counts[i]}`);
    if (total !== info.size) return fail(`index holds ${total} entries, the keyspace size is ${info.size}`);
    const cached = state.fenceCache.get(info.id);
    if (cached !== undefined && cached.persisted) {
      const same = cached.keys.length === disk.keys.length && cached.keys.every((k, i) => k.equals(disk.keys[i]) && cached.counts[i] === disk.counts[i]);
      if (!same) return fail('fences in memory differ from the fences on disk');
    }
    return true;
  } catch (err) {
    throw translateDbError(err, 'check rank index', state.location);
  }
}

/** Replace the rank fences of keyspace `name` by fences cut from its count index. */
export async function rebuildRankIndex(state: StoreState, name: Buffer): Promise<void> {
  const info = state.dir.get(latin1(name));
  if (info === undefined) return;
  try {
    const disk = await state.readFences(info.id);
    const rebuilt = await state.fencesFromIndex(info.id);
    const fencePrefix = idPrefix(TAG_FENCE, info.id);
    const ops: BatchOp[] = disk.keys.map((k) => ({ type: 'del', key: withPrefix(fencePrefix, k) }) as BatchOp);
    for (let i = 0; i < rebuilt.keys.length; i++) ops.push({ type: 'put', key: withPrefix(fencePrefix, rebuilt.keys[i]), value: encodeFenceValue(rebuilt.counts[i]) });
    const fences = new Fences(rebuilt.keys, rebuilt.counts);
    await state.commit(
      ops,
      () => {
        state.fenceCache.set(info.id, fences);
        state.blockCache.dropKeyspace(info.id);
      },
      'rebuild rank index',
    );
    state.logger.info('rank index rebuilt', { keyspace: name.toString('utf8'), entries: fences.total, fences: fences.keys.length });
  } catch (err) {
    throw translateDbError(err, 'rebuild rank index', state.location);
  }
}
