// Sets and deletes in the Store (issue 17): seeded random batches mixing
// increments, sets, key deletes and keyspace deletes, applied to the Store
// and to a plain in-order model, compared after every batch, the rank index
// checked exactly every time. Values stay far from the int64 bounds, so
// applying in order and summing per batch must agree exactly.

import assert from 'node:assert/strict';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { random, removeDir, tempDir, type ModelEntry } from './helpers.js';

const sizes = { keyspaceSize: 8, keySize: 8 };
const KEYSPACES = ['a', 'b', 'c'].map((s) => Buffer.from(s, 'latin1'));

/** The plain model: operations applied one at a time, in order. */
class OrderedModel {
  readonly spaces = new Map<string, Map<string, bigint>>();

  increment(ks: Buffer, key: Buffer, delta: bigint): void {
    if (delta === 0n) return;
    const space = this.space(ks);
    space.set(key.toString('latin1'), (space.get(key.toString('latin1')) ?? 0n) + delta);
  }

  set(ks: Buffer, key: Buffer, count: bigint): void {
    this.space(ks).set(key.toString('latin1'), count);
  }

  deleteKey(ks: Buffer, key: Buffer): void {
    const space = this.spaces.get(ks.toString('latin1'));
    space?.delete(key.toString('latin1'));
    if (space?.size === 0) this.spaces.delete(ks.toString('latin1'));
  }

  deleteKeyspace(ks: Buffer): void {
    this.spaces.delete(ks.toString('latin1'));
  }

  private space(ks: Buffer): Map<string, bigint> {
    let space = this.spaces.get(ks.toString('latin1'));
    if (space === undefined) this.spaces.set(ks.toString('latin1'), (space = new Map()));
    return space;
  }

  ranked(ks: Buffer): ModelEntry[] {
    const list = [...(this.spaces.get(ks.toString('latin1')) ?? [])].map(([k, count]) => ({ key: Buffer.from(k, 'latin1'), count }));
    return list.sort((a, b) => (a.count !== b.count ? (a.count > b.count ? -1 : 1) : Buffer.compare(a.key, b.key)));
  }
}

function randomBatch(rand: () => number, model: OrderedModel, keys: Buffer[]): IncrementBatch {
  const batch = new IncrementBatch();
  const n = 1 + Math.floor(rand() * 40);
  for (let i = 0; i < n; i++) {
    const ks = KEYSPACES[Math.floor(rand() * KEYSPACES.length)]!;
    const key = keys[Math.floor(rand() * keys.length)]!;
    const r = rand();
    if (r < 0.6) {
      const delta = BigInt(Math.floor(rand() * 9) - 3);
      batch.add(ks, key, delta);
      model.increment(ks, key, delta);
    } else if (r < 0.8) {
      const count = BigInt(Math.floor(rand() * 2000) - 500);
      batch.set(ks, key, count);
      model.set(ks, key, count);
    } else if (r < 0.97) {
      batch.deleteKey(ks, key);
      model.deleteKey(ks, key);
    } else {
      batch.deleteKeyspace(ks);
      model.deleteKeyspace(ks);
    }
  }
  return batch;
}

async function compare(store: Store, model: OrderedModel): Promise<void> {
  const expected = [...model.spaces.keys()].sort().map((k) => [Buffer.from(k, 'latin1'), model.spaces.get(k)!.size]);
  assert.deepEqual((await store.keyspaces()).map((k) => [k.name, k.size]), expected);
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

  const variants = [
    { seed: 11, label: 'default caches' },
    { seed: 12, countCacheBytes: 0, label: 'no count cache' },
    { seed: 13, overlap: true, label: 'overlapped applies' },
    { seed: 14, overlap: true, countCacheBytes: 0, label: 'overlapped applies, no count cache' },
  ];
  for (const v of variants) {
    it(`seed ${v.seed}: ${v.label}; reopened at the end`, async () => {
      const rand = random(v.seed);
      const dir = tempDir();
      dirs.push(dir);
      const keys = Array.from({ length: 60 }, (_, i) => Buffer.from(`k${i}`));
      const model = new OrderedModel();
      let store = await Store.open({ location: dir, sizes, rankFenceSize: 4, countCacheBytes: v.countCacheBytes });
      for (let round = 0; round < 60; round++) {
        if (v.overlap === true) {
          const batches = [0, 1, 2].map(() => randomBatch(rand, model, keys));
          await Promise.all(batches.map((b) => store.apply(b)));
        } else {
          await store.apply(randomBatch(rand, model, keys));
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
