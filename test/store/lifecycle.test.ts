// Sets and deletes in the Store (issue 17): seeded random batches mixing
// increments, sets, key deletes and keyspace deletes, applied to the Store
// and to a plain in-order model, compared after every batch, the rank index
// checked exactly every time. Values stay far from the int64 bounds, so
// applying in order and summing per batch must agree exactly.

import assert from 'node:assert/strict';
import { OP_CREATE_KEYSPACE, OP_DELETE_KEY, OP_DELETE_KEYSPACE, OP_INCREMENT, OP_SET, writeOpEntry } from '../../lib/commitlog/format.js';
import { PairSums } from '../../lib/roles/work/pair-sums.js';
import { batchFromSummed } from '../../lib/roles/work/summed-batch.js';
import { Operator } from '../../lib/store/combine.js';
import type { CountCache } from '../../lib/store/count-cache.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { modelKeyOp, random, removeDir, tempDir, type ModelEntry } from './helpers.js';

const sizes = { keyspaceSize: 8, keySize: 8 };
const KEYSPACES = ['a', 'b', 'c'].map((s) => Buffer.from(s, 'latin1'));

type Op =
  | { kind: 'write'; ks: Buffer; key: Buffer; value: bigint }
  | { kind: 'set'; ks: Buffer; key: Buffer; value: bigint }
  | { kind: 'deleteKey'; ks: Buffer; key: Buffer }
  | { kind: 'deleteKeyspace'; ks: Buffer }
  | { kind: 'create'; ks: Buffer; operator: number };

/** The plain model: operations applied one at a time, in order, each keyspace by its operator. */
class OrderedModel {
  readonly spaces = new Map<string, Map<string, bigint>>();
  readonly operators = new Map<string, number>();

  apply(op: Op): void {
    const ks = op.ks.toString('latin1');
    if (op.kind === 'deleteKeyspace' || op.kind === 'create') {
      this.spaces.delete(ks);
      if (op.kind === 'create') this.operators.set(ks, op.operator);
      else this.operators.delete(ks);
      return;
    }
    const space = this.spaces.get(ks) ?? new Map<string, bigint>();
    modelKeyOp(space, op.key.toString('latin1'), op.kind, op.kind === 'deleteKey' ? 0n : op.value, this.operators.get(ks) ?? Operator.sum);
    if (space.size === 0) this.spaces.delete(ks);
    else this.spaces.set(ks, space);
  }

  ranked(ks: Buffer): ModelEntry[] {
    const list = [...(this.spaces.get(ks.toString('latin1')) ?? [])].map(([k, count]) => ({ key: Buffer.from(k, 'latin1'), count }));
    return list.sort((a, b) => (a.count !== b.count ? (a.count > b.count ? -1 : 1) : Buffer.compare(a.key, b.key)));
  }
}

/** `writesOnly`: the share of batches that hold increments alone (no lifecycle op), so that applies overlap. */
function randomOps(rand: () => number, keys: Buffer[], creates: boolean, writesOnly = 0): Op[] {
  const ops: Op[] = [];
  const n = 1 + Math.floor(rand() * 40);
  const onlyWrites = rand() < writesOnly;
  for (let i = 0; i < n; i++) {
    const ks = KEYSPACES[Math.floor(rand() * KEYSPACES.length)]!;
    const key = keys[Math.floor(rand() * keys.length)]!;
    const r = onlyWrites ? 0 : rand();
    if (r < 0.6) ops.push({ kind: 'write', ks, key, value: BigInt(Math.floor(rand() * 2000) - 500) * (rand() < 0.5 ? 1n : 0n) + BigInt(Math.floor(rand() * 9) - 3) });
    else if (r < 0.75) ops.push({ kind: 'set', ks, key, value: BigInt(Math.floor(rand() * 2000) - 500) });
    else if (r < 0.96) ops.push({ kind: 'deleteKey', ks, key });
    else if (creates && r < 0.985) ops.push({ kind: 'create', ks, operator: 1 + Math.floor(rand() * 4) });
    else ops.push({ kind: 'deleteKeyspace', ks });
  }
  return ops;
}

/** The ops as an IncrementBatch (the store's own summing). */
function incrementBatch(ops: Op[], declared: ReadonlyMap<string, number>): IncrementBatch {
  const batch = new IncrementBatch(declared);
  for (const op of ops) {
    if (op.kind === 'write') batch.add(op.ks, op.key, op.value);
    else if (op.kind === 'set') batch.set(op.ks, op.key, op.value);
    else if (op.kind === 'deleteKey') batch.deleteKey(op.ks, op.key);
    else if (op.kind === 'deleteKeyspace') batch.deleteKeyspace(op.ks);
    else batch.createKeyspace(op.ks, op.operator);
  }
  return batch;
}

/** The ops as one OPS commit-log payload summed by the worker's PairSums, as the summing thread does. */
function summedBatch(ops: Op[], declared: ReadonlyMap<string, number>): IncrementBatch {
  const codes = { write: OP_INCREMENT, set: OP_SET, deleteKey: OP_DELETE_KEY, deleteKeyspace: OP_DELETE_KEYSPACE, create: OP_CREATE_KEYSPACE };
  const payload = Buffer.alloc(ops.length * 64);
  let p = 0;
  for (const op of ops) {
    const value = op.kind === 'write' || op.kind === 'set' ? op.value : op.kind === 'create' ? BigInt(op.operator) : 0n;
    if (op.kind === 'write' && op.value === 0n) continue; // the writer logs no increment of 0
    const key = op.kind === 'deleteKeyspace' || op.kind === 'create' ? Buffer.alloc(0) : op.key;
    const names = Buffer.concat([op.ks, key]);
    p = writeOpEntry(payload, p, codes[op.kind], value, names, 0, op.ks.length, op.ks.length, key.length);
  }
  const table = new PairSums(declared);
  if (p > 0) table.addOps(payload.subarray(0, p));
  return batchFromSummed(table.toSummed());
}

/**
 * Override the count cache's admission (count-cache.ts MIN_HIT_RATIO) on an
 * open Store: `admit()` is asked once per apply whether it adds its new
 * pairs. Those not added must be found in the apply's own list by the apply
 * prepared on top of it (inflight-apply.ts finalOf).
 */
function forceAdmission(store: Store, admit: () => boolean): void {
  const cache = (store as unknown as { state: { countCache: CountCache } }).state.countCache;
  Object.defineProperty(cache, 'admitting', { get: admit, configurable: true });
}

async function compare(store: Store, model: OrderedModel): Promise<void> {
  const expected = [...model.spaces.keys()].sort().map((k) => [Buffer.from(k, 'latin1'), model.spaces.get(k)!.size]);
  assert.deepEqual((await store.keyspaces()).map((k) => [k.name, k.size]), expected);
  assert.deepEqual(
    store.declaredKeyspaces().map((d) => [d.name.toString('latin1'), d.operator]),
    [...model.operators].sort((a, b) => Buffer.compare(Buffer.from(a[0], 'latin1'), Buffer.from(b[0], 'latin1'))),
  );
  for (const ks of KEYSPACES) {
    const ranked = model.ranked(ks);
    const got: ModelEntry[] = [];
    for await (const e of store.iterate(ks)) got.push(e);
    assert.deepEqual(got, ranked, `keyspace ${ks.toString()}`);
    assert.equal(await store.size(ks), ranked.length);
    for (let r = 0; r < ranked.length; r += 7) assert.equal(await store.rank(ks, ranked[r]!.key), r);
    assert.equal(await store.checkRankIndex(ks), true);
  }
}

describe('Store: sets and deletes against an in-order model (seeded)', function () {
  this.timeout(60000);
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  const variants: Array<{ seed: number; label: string; countCacheBytes?: number; overlap?: boolean; creates?: boolean; summed?: boolean; admission?: 'never' | 'coin'; writesOnly?: number }> = [
    { seed: 11, label: 'default caches' },
    { seed: 12, countCacheBytes: 0, label: 'no count cache' },
    { seed: 13, overlap: true, label: 'overlapped applies' },
    { seed: 14, overlap: true, countCacheBytes: 0, label: 'overlapped applies, no count cache' },
    { seed: 15, creates: true, label: 'keyspaces created with sum, max, min and set' },
    { seed: 16, creates: true, summed: true, label: 'keyspaces created with every operator, summed by PairSums from OPS payloads' },
    { seed: 17, creates: true, summed: true, overlap: true, label: 'every operator, PairSums, overlapped applies' },
    { seed: 18, creates: true, overlap: true, admission: 'never', writesOnly: 0.75, label: 'every operator, overlapped applies, count cache admitting no new pair' },
    { seed: 19, creates: true, summed: true, overlap: true, admission: 'coin', writesOnly: 0.75, label: 'every operator, PairSums, overlapped applies, count cache admitting new pairs in a random half of the applies' },
  ];
  for (const v of variants) {
    it(`seed ${v.seed}: ${v.label}; reopened at the end`, async () => {
      const rand = random(v.seed);
      const dir = tempDir();
      dirs.push(dir);
      const keys = Array.from({ length: 60 }, (_, i) => Buffer.from(`k${i}`));
      const model = new OrderedModel();
      let store = await Store.open({ location: dir, sizes, rankFenceSize: 4, countCacheBytes: v.countCacheBytes });
      if (v.admission !== undefined) {
        const coin = random(v.seed * 101);
        forceAdmission(store, v.admission === 'never' ? () => false : () => coin() < 0.5);
      }
      for (let round = 0; round < 60; round++) {
        // Batches summed with the operators the store has when they are built (the worker's settings barrier).
        const next = (): IncrementBatch => {
          const ops = randomOps(rand, keys, v.creates === true, v.writesOnly);
          for (const op of ops) model.apply(op);
          return v.summed === true ? summedBatch(ops, store.operators()) : incrementBatch(ops, store.operators());
        };
        if (v.overlap === true) {
          const applies: Array<Promise<unknown>> = [];
          for (let i = 0; i < 3; i++) {
            const batch = next();
            const applying = store.apply(batch);
            applies.push(applying);
            if (batch.hasLifecycleOps) await applying;
          }
          await Promise.all(applies);
        } else {
          await store.apply(next());
        }
        await compare(store, model);
      }
      await store.close();
      store = await Store.open({ location: dir, sizes, rankFenceSize: 4 });
      await compare(store, model);
      await store.close();
    });
  }

  it('a set, then increments, then a delete, then an increment, in one batch: the last increment counts from 0', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const store = await Store.open({ location: dir, sizes });
    const ks = Buffer.from('a');
    const key = Buffer.from('x');
    const first = new IncrementBatch();
    first.add(ks, key, 5n);
    await store.apply(first);
    const batch = new IncrementBatch();
    batch.add(ks, key, 3n);
    batch.set(ks, key, 100n);
    batch.add(ks, key, 2n);
    assert.equal(batch.hasLifecycleOps, true);
    await store.apply(batch);
    assert.equal(await store.get(ks, key), 102n);
    const second = new IncrementBatch();
    second.deleteKey(ks, key);
    second.add(ks, key, 4n);
    await store.apply(second);
    assert.equal(await store.get(ks, key), 4n);
    const third = new IncrementBatch();
    third.deleteKeyspace(ks);
    await store.apply(third);
    assert.equal(await store.get(ks, key), undefined);
    assert.deepEqual(await store.keyspaces(), []);
    await store.close();
  });
});
