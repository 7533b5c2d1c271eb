// Sets and deletes in the Store (issue 17): seeded random batches mixing
// increments, sets, key deletes and keyspace deletes, applied to the Store
// and to a plain in-order model, compared after every batch, the rank index
// checked exactly every time. Values stay far from the int64 bounds, so
// applying in order and summing per batch must agree exactly.

import assert from 'node:assert/strict';
import { OP_CREATE_KEYSPACE, OP_DELETE_KEY, OP_DELETE_KEYSPACE, OP_INCREMENT, OP_SET, writeOpEntry } from '../../lib/commitlog/format.js';
import { PairSums } from '../../lib/roles/work/pair-sums.js';
import { batchFromSummed } from '../../lib/roles/work/summed-batch.js';
import type { CountCache } from '../../lib/store/count-cache.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { random, removeDir, tempDir, type ModelEntry } from './helpers.js';
import { OrderedModel, countAtLeast, denseRankOf, type Op } from './ordered-model.js';

const sizes = { keyspaceSize: 8, keySize: 8 };
const KEYSPACES = ['a', 'b', 'c'].map((s) => Buffer.from(s, 'latin1'));

/** `writesOnly`: the share of batches that hold increments alone (no lifecycle op), so that applies overlap. */
function randomOps(rand: () => number, keys: Buffer[], creates: boolean, writesOnly = 0, ties = false): Op[] {
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
    else if (creates && r < 0.985) ops.push({ kind: 'create', ks, operator: 1 + Math.floor(rand() * 4), ties: ties && rand() < 0.7 ? 1 : 0 });
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
    else batch.createKeyspace(op.ks, op.operator, op.ties ?? 0);
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
    // A create's "key" is its settings bytes 1 … 15 (byte 1: ties), absent for today's rules.
    const key = op.kind === 'create' ? (op.ties === 1 ? Buffer.from([1]) : Buffer.alloc(0)) : op.kind === 'deleteKeyspace' ? Buffer.alloc(0) : op.key;
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
    store.declaredKeyspaces().map((d) => [d.name.toString('latin1'), d.operator, d.ties]),
    [...model.operators].map(([ks, op]) => [ks, op, model.tiesFirst.has(ks) ? 1 : 0]).sort((a, b) => Buffer.compare(Buffer.from(a[0] as string, 'latin1'), Buffer.from(b[0] as string, 'latin1'))),
  );
  for (const ks of KEYSPACES) {
    const ranked = model.ranked(ks);
    const got: ModelEntry[] = [];
    for await (const e of store.iterate(ks)) got.push(e);
    assert.deepEqual(got, ranked, `keyspace ${ks.toString()}`);
    assert.equal(await store.size(ks), ranked.length);
    for (let r = 0; r < ranked.length; r += 7) assert.equal(await store.rank(ks, ranked[r]!.key), r);
    for (let r = 0; r < ranked.length; r += 5) assert.deepEqual(await store.denseRank(ks, ranked[r]!.key), { rank: r, dense: denseRankOf(ranked, r), count: ranked[r]!.count }, `dense rank ${r}`);
    assert.equal(await store.denseRank(ks, 'absent'), undefined);
    const mins = [undefined, ...ranked.filter((_, i) => i % 9 === 0).flatMap((e) => [e.count, e.count + 1n, e.count - 1n])];
    for (const min of mins) assert.equal(await store.countKeys(ks, { min }), min === undefined ? ranked.length : countAtLeast(ranked, min), `count --min ${min}`);
    assert.equal(await store.checkRankIndex(ks), true);
  }
}

describe('Store: sets and deletes against an in-order model (seeded)', function () {
  this.timeout(60000);
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  const variants: Array<{ seed: number; label: string; countCacheBytes?: number; overlap?: boolean; creates?: boolean; summed?: boolean; admission?: 'never' | 'coin'; writesOnly?: number; ties?: boolean }> = [
    { seed: 11, label: 'default caches' },
    { seed: 12, countCacheBytes: 0, label: 'no count cache' },
    { seed: 13, overlap: true, label: 'overlapped applies' },
    { seed: 14, overlap: true, countCacheBytes: 0, label: 'overlapped applies, no count cache' },
    { seed: 15, creates: true, label: 'keyspaces created with sum, max, min and set' },
    { seed: 16, creates: true, summed: true, label: 'keyspaces created with every operator, summed by PairSums from OPS payloads' },
    { seed: 17, creates: true, summed: true, overlap: true, label: 'every operator, PairSums, overlapped applies' },
    { seed: 18, creates: true, overlap: true, admission: 'never', writesOnly: 0.75, label: 'every operator, overlapped applies, count cache admitting no new pair' },
    { seed: 19, creates: true, summed: true, overlap: true, admission: 'coin', writesOnly: 0.75, label: 'every operator, PairSums, overlapped applies, count cache admitting new pairs in a random half of the applies' },
    { seed: 20, creates: true, ties: true, label: 'keyspaces created --ties first with every operator' },
    { seed: 21, creates: true, ties: true, summed: true, overlap: true, writesOnly: 0.75, label: '--ties first, PairSums, overlapped applies' },
    { seed: 22, creates: true, ties: true, overlap: true, countCacheBytes: 0, writesOnly: 0.6, label: '--ties first, overlapped applies, no count cache' },
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
          const ops = randomOps(rand, keys, v.creates === true, v.writesOnly, v.ties === true);
          model.begin();
          for (const op of ops) model.apply(op);
          model.end();
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
