// Seeded randomized model test: random batches against the Store and a plain
// in-memory model, comparing every read after every batch. A small
// rankFenceSize and a tiny fence cache stress splits, merges and reloads.

import assert from 'node:assert/strict';
import { ClassicLevel } from 'classic-level';
import { INT64_MAX, INT64_MIN } from '../../lib/protocol/fields.js';
import { TAG_COUNT, TAG_FENCE, TAG_INDEX } from '../../lib/store/encoding.js';
import { CountdError, ErrorCodes } from '../../lib/errors.js';
import { metrics } from '../../lib/metrics.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { Model, random, removeDir, tempDir, type ModelEntry } from './helpers.js';
import { countAtLeast, denseRankOf } from './ordered-model.js';

const sizes = { keyspaceSize: 8, keySize: 8 };
const KEYSPACES = ['a', 'ab', 'b', '\xfe'].map((s) => Buffer.from(s, 'latin1'));

function keyPool(rand: () => number): Buffer[] {
  const pool = ['a', 'ab', 'abc', 'abcd', 'b', '\x01', '\xff', '\xff\xff'].map((s) => Buffer.from(s, 'latin1'));
  while (pool.length < 70) {
    pool.push(Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 3) }, () => 1 + Math.floor(rand() * 255))));
  }
  return pool;
}

function randomDelta(rand: () => number): bigint {
  const r = rand();
  if (r < 0.1) return 0n;
  if (r < 0.7) return BigInt(Math.floor(rand() * 7) - 3); // many ties
  if (r < 0.85) return BigInt(Math.floor(rand() * 2000) - 1000); // moves across many fences
  if (r < 0.95) return BigInt(Math.floor(rand() * 2 ** 30)) * BigInt(Math.floor(rand() * 2 ** 30)) * (rand() < 0.5 ? -1n : 1n); // past 2^53
  return rand() < 0.5 ? INT64_MAX : INT64_MIN; // saturation
}

async function all(store: Store, ks: Buffer): Promise<ModelEntry[]> {
  const out: ModelEntry[] = [];
  for await (const e of store.iterate(ks)) out.push(e);
  return out;
}

async function compare(store: Store, model: Model, rand: () => number, pool: Buffer[], full: boolean): Promise<void> {
  const expectedSpaces = [...model.spaces.keys()].map((k) => Buffer.from(k, 'latin1')).sort(Buffer.compare);
  assert.deepEqual(
    (await store.keyspaces()).map((k) => [k.name, k.size]),
    expectedSpaces.map((ks) => [ks, model.ranked(ks).length]),
  );
  for (const ks of KEYSPACES) {
    const ranked = model.ranked(ks);
    assert.equal(await store.size(ks), ranked.length);
    for (let i = 0; i < 3; i++) {
      const offset = Math.floor(rand() * (ranked.length + 3));
      const length = Math.floor(rand() * 12);
      assert.deepEqual(await store.page(ks, offset, length), ranked.slice(offset, offset + length), `page ${offset}+${length}`);
    }
    for (let i = 0; i < 4; i++) {
      const key = pool[Math.floor(rand() * pool.length)];
      const r = ranked.findIndex((e) => e.key.equals(key));
      assert.equal(await store.rank(ks, key), r < 0 ? undefined : r, `rank of ${key.toString('hex')}`);
      assert.equal(await store.get(ks, key), r < 0 ? undefined : ranked[r].count);
      assert.deepEqual(await store.denseRank(ks, key), r < 0 ? undefined : { rank: r, dense: denseRankOf(ranked, r), count: ranked[r].count }, `dense rank of ${key.toString('hex')}`);
      const near = r >= 0 ? ranked[r].count + BigInt(Math.floor(rand() * 3) - 1) : 0n;
      const min = r >= 0 && rand() < 0.7 && near <= INT64_MAX && near >= INT64_MIN ? near : randomDelta(rand);
      assert.equal(await store.countKeys(ks, { min }), countAtLeast(ranked, min), `count --min ${min}`);
      const n = 1 + Math.floor(rand() * 6);
      const around = await store.around(ks, key, n);
      if (r < 0) assert.equal(around, undefined);
      else {
        const offset = Math.max(0, Math.min(r - Math.floor(n / 2), ranked.length - n));
        assert.deepEqual(around, { offset, entries: ranked.slice(offset, offset + n) });
      }
    }
    if (full) {
      assert.deepEqual(await all(store, ks), ranked);
      for (let r = 0; r < ranked.length; r++) assert.equal(await store.rank(ks, ranked[r].key), r);
      assert.equal(await store.checkRankIndex(ks), true);
    }
  }
}

/**
 * Make the Store's next chained-batch write take 50 ms longer (so the next
 * apply is prepared meanwhile), and fail instead of writing if `fail`.
 */
function slowNextWrite(store: Store, fail: boolean): void {
  const db = (store as unknown as { state: { db: ClassicLevel<Buffer, Buffer> } }).state.db;
  const batchFn = db.batch.bind(db) as () => ReturnType<typeof db.batch>;
  let armed = true;
  (db as unknown as { batch: () => unknown }).batch = () => {
    const chained = batchFn();
    if (armed) {
      armed = false;
      const write = chained.write.bind(chained);
      chained.write = async (options?: Parameters<typeof write>[0]) => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        if (!fail) return options === undefined ? write() : write(options);
        await chained.close();
        throw new Error('simulated EIO');
      };
    }
    return chained;
  };
}

/** countd_store_applies_overlapped_total so far (the registry is process-wide: compare differences). */
async function overlappedApplies(): Promise<number> {
  return (await metrics.appliesOverlapped.get()).values[0]?.value ?? 0;
}

async function countRecords(location: string, tag: number): Promise<number> {
  const db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  let n = 0;
  for await (const _ of db.keys({ gte: Buffer.from([tag]), lt: Buffer.from([tag + 1]) })) n++;
  await db.close();
  return n;
}

async function deleteAllFences(location: string): Promise<number> {
  const db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  const keys = await db.keys({ gte: Buffer.from([TAG_FENCE]), lt: Buffer.from([TAG_FENCE + 1]) }).all();
  await db.batch(keys.map((key) => ({ type: 'del' as const, key })));
  await db.close();
  return keys.length;
}

describe('Store against an in-memory model (seeded)', function () {
  this.timeout(60000);
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  // The rank-block cache: default (32 MiB: every block stays), a few hundred
  // bytes (constant eviction) and off (every read from LevelDB).
  // Overlapped: several applies are called without waiting, so each is
  // prepared while the one before it is written (inflight-apply.ts), with the
  // count cache on, evicting all the time (a few hundred bytes), or off.
  const variants: Array<{ seed: number; blockCacheBytes?: number; countCacheBytes?: number; overlap?: boolean; label: string }> = [
    { seed: 1, label: 'default caches' },
    { seed: 2, label: 'default caches' },
    { seed: 3, label: 'default caches' },
    { seed: 4, blockCacheBytes: 600, label: 'a tiny rank-block cache' },
    { seed: 5, blockCacheBytes: 0, label: 'no rank-block cache' },
    { seed: 6, overlap: true, label: 'overlapped applies' },
    { seed: 7, overlap: true, countCacheBytes: 500, label: 'overlapped applies, a tiny count cache' },
    { seed: 8, overlap: true, countCacheBytes: 0, label: 'overlapped applies, no count cache' },
  ];
  for (const { seed, blockCacheBytes, countCacheBytes, overlap, label } of variants) {
    it(`agrees after every batch, across reopen and rank index rebuilds (seed ${seed}, ${label})`, async () => {
      const rand = random(seed);
      const pool = keyPool(rand);
      const location = tempDir();
      dirs.push(location);
      // sync: false: durability is not under test here, and fsync per batch only slows the test.
      const options = { location, sizes, rankFenceSize: 4, rankCacheKeyspaces: 2, sync: false, blockCacheBytes, countCacheBytes };
      let store = await Store.open(options);
      const model = new Model();
      const overlappedBefore = await overlappedApplies();
      const round = async (i: number): Promise<void> => {
        if (rand() < 0.03) {
          const ks = KEYSPACES[Math.floor(rand() * KEYSPACES.length)];
          await store.deleteKeyspace(ks);
          model.spaces.delete(ks.toString('latin1'));
        } else {
          const applies: Array<Promise<unknown>> = [];
          const n = overlap ? 1 + Math.floor(rand() * 3) : 1;
          for (let a = 0; a < n; a++) {
            const batch = new IncrementBatch();
            const items = 1 + Math.floor(rand() * (rand() < 0.2 ? 200 : 30));
            for (let j = 0; j < items; j++) {
              const ks = KEYSPACES[Math.floor(rand() * KEYSPACES.length)];
              const key = pool[Math.floor(rand() * pool.length)];
              const delta = randomDelta(rand);
              batch.add(ks, key, delta);
              model.add(ks, key, delta);
            }
            applies.push(store.apply(batch));
            model.clampAll();
          }
          await Promise.all(applies);
        }
        await compare(store, model, rand, pool, i % 10 === 9);
      };
      for (let i = 0; i < 120; i++) await round(i);

      // Reopen: fences come back from disk and still agree.
      await store.close();
      store = await Store.open(options);
      await compare(store, model, rand, pool, true);

      // Drop every fence: reads rebuild them from the count index, applies persist them.
      await store.close();
      assert.ok((await deleteAllFences(location)) > 0);
      store = await Store.open(options);
      await compare(store, model, rand, pool, false);
      for (let i = 0; i < 20; i++) await round(i);
      await compare(store, model, rand, pool, true);
      for (const ks of KEYSPACES) await store.rebuildRankIndex(ks);
      await compare(store, model, rand, pool, true);

      // Deleted keyspaces leave no records behind once cleared.
      for (const ks of KEYSPACES) await store.deleteKeyspace(ks);
      // (A close stops the paced clear, which the next open resumes: wait for it here.)
      await (store as unknown as { state: { collecting: Promise<void> } }).state.collecting;
      await store.close();
      for (const tag of [TAG_COUNT, TAG_INDEX, TAG_FENCE]) assert.equal(await countRecords(location, tag), 0);
      // The overlapped variants did overlap (so the model checked the overlay), the others never do.
      const overlapped = (await overlappedApplies()) - overlappedBefore;
      if (overlap) assert.ok(overlapped >= 20, `only ${overlapped} applies overlapped`);
      else assert.equal(overlapped, 0);
    });
  }

  it('fails an apply prepared on top of one whose write fails; nothing of either is written, and both can be retried', async () => {
    const location = tempDir();
    dirs.push(location);
    const store = await Store.open({ location, sizes, rankFenceSize: 4 });
    const model = new Model();
    const ks = Buffer.from('ks');
    const batchOf = (seed: number, fresh: string): IncrementBatch => {
      const rand = random(seed);
      const batch = new IncrementBatch();
      for (let j = 0; j < 60; j++) {
        const key = Buffer.from(`k${Math.floor(rand() * 40)}`);
        const delta = BigInt(Math.floor(rand() * 200) - 100);
        batch.add(ks, key, delta);
      }
      batch.add(Buffer.from(fresh), Buffer.from('only'), 5n); // a keyspace created by this apply
      return batch;
    };
    const addToModel = (seed: number, fresh: string): void => {
      const rand = random(seed);
      for (let j = 0; j < 60; j++) model.add(ks, Buffer.from(`k${Math.floor(rand() * 40)}`), BigInt(Math.floor(rand() * 200) - 100));
      model.add(Buffer.from(fresh), Buffer.from('only'), 5n);
      model.clampAll();
    };
    await store.apply(batchOf(1, 'x1'));
    addToModel(1, 'x1');
    const before = await store.page(ks, 0, 100);
    assert.deepEqual(before, model.ranked(ks));

    // The next chained batch's write fails, slowly, so the apply after it is prepared meanwhile.
    slowNextWrite(store, true);
    const overlappedBefore = await overlappedApplies();
    const first = store.apply(batchOf(2, 'x2'));
    const second = store.apply(batchOf(3, 'x3'));
    await assert.rejects(first, (err: CountdError) => err.code === ErrorCodes.DATABASE && /simulated EIO/.test(err.message));
    await assert.rejects(second, (err: CountdError) => err.code === ErrorCodes.DATABASE && /the apply before this one failed/.test(err.message) && /simulated EIO/.test(err.message));
    assert.equal((await overlappedApplies()) - overlappedBefore, 1);
    assert.deepEqual(await store.page(ks, 0, 100), before);
    assert.deepEqual((await store.keyspaces()).map((k) => k.name.toString()), ['ks', 'x1']);

    // Retried (as the worker does): both apply exactly once, with the right counts and new keyspaces.
    await Promise.all([store.apply(batchOf(2, 'x2')), store.apply(batchOf(3, 'x3'))]);
    addToModel(2, 'x2');
    addToModel(3, 'x3');
    for (const name of ['ks', 'x1', 'x2', 'x3']) assert.deepEqual(await store.page(name, 0, 100), model.ranked(Buffer.from(name)), name);
    assert.equal(await store.checkRankIndex(ks), true);
    await store.close();
    // And so after reopening (fences, directory, next id from disk).
    const reopened = await Store.open({ location, sizes, rankFenceSize: 4 });
    for (const name of ['ks', 'x1', 'x2', 'x3']) assert.deepEqual(await reopened.page(name, 0, 100), model.ranked(Buffer.from(name)), name);
    assert.deepEqual((await reopened.keyspaces()).map((k) => k.name.toString()), ['ks', 'x1', 'x2', 'x3']);
    await reopened.close();
  });

  it('runs a keyspace deletion, a rank index rebuild and close after the apply in flight, never beside it', async () => {
    const location = tempDir();
    dirs.push(location);
    let store = await Store.open({ location, sizes, rankFenceSize: 4 });
    const ks = Buffer.from('ks');
    const batchOf = (delta: bigint, keys: number): IncrementBatch => {
      const batch = new IncrementBatch();
      for (let j = 0; j < keys; j++) batch.add(ks, Buffer.from(`k${j}`), delta + BigInt(j));
      return batch;
    };
    await store.apply(batchOf(10n, 30));
    // An apply in flight, then a deletion and an apply that recreates the keyspace: in that order.
    slowNextWrite(store, false);
    const a = store.apply(batchOf(100n, 30));
    const d = store.deleteKeyspace(ks);
    const b = store.apply(batchOf(1n, 5));
    await Promise.all([a, d, b]);
    const expected = Array.from({ length: 5 }, (_, j) => ({ key: Buffer.from(`k${j}`), count: 1n + BigInt(j) })).reverse();
    assert.deepEqual(await store.page(ks, 0, 100), expected);
    for (let j = 0; j < 5; j++) assert.equal(await store.rank(ks, Buffer.from(`k${j}`)), 4 - j);
    assert.equal(await store.rank(ks, Buffer.from('k9')), undefined);

    // A rebuild and close() behind an apply in flight: the apply is committed first, and survives reopening.
    slowNextWrite(store, false);
    const c = store.apply(batchOf(1000n, 3));
    const r = store.rebuildRankIndex(ks);
    await store.close();
    await Promise.all([c, r]);
    store = await Store.open({ location, sizes, rankFenceSize: 4 });
    const after = [
      ...[2, 1, 0].map((j) => ({ key: Buffer.from(`k${j}`), count: 1n + BigInt(j) + 1000n + BigInt(j) })),
      ...[4, 3].map((j) => ({ key: Buffer.from(`k${j}`), count: 1n + BigInt(j) })),
    ];
    assert.deepEqual(await store.page(ks, 0, 100), after);
    assert.equal(await store.checkRankIndex(ks), true);
    await store.close();
  });

  it('detects a damaged fence and rebuilds it', async () => {
    const location = tempDir();
    dirs.push(location);
    let store = await Store.open({ location, sizes, rankFenceSize: 4 });
    const batch = new IncrementBatch();
    for (let i = 0; i < 40; i++) batch.add(Buffer.from('ks'), Buffer.from(`k${i}`), BigInt(i % 7));
    await store.apply(batch);
    const before = await store.page('ks', 0, 100);
    await store.close();
    const db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    const [[key]] = await db.iterator({ gte: Buffer.from([TAG_FENCE]), lt: Buffer.from([TAG_FENCE + 1]), limit: 1 }).all();
    await db.put(key, Buffer.from([0, 0, 0, 99]));
    await db.close();
    store = await Store.open({ location, sizes, rankFenceSize: 4 });
    assert.equal(await store.checkRankIndex('ks'), false);
    await store.rebuildRankIndex('ks');
    assert.equal(await store.checkRankIndex('ks'), true);
    assert.deepEqual(await store.page('ks', 0, 100), before);
    for (let r = 0; r < before.length; r++) assert.equal(await store.rank('ks', before[r].key), r);
    await store.close();
  });

  it('serves pages consistent with a state between applies while applies run', async () => {
    const location = tempDir();
    dirs.push(location);
    const store = await Store.open({ location, sizes, rankFenceSize: 4, rankCacheKeyspaces: 1 });
    const rand = random(99);
    const model = new Model();
    const ks = Buffer.from('ks');
    const show = (e: ModelEntry): string => `${e.key.toString('hex')}=${e.count}`;
    // Every state between two applies, as its ranked entries.
    const states: string[][] = [[]];
    const reads: Array<Promise<void>> = [];
    const failures: unknown[] = [];
    let checked = 0;
    for (let i = 0; i < 40; i++) {
      const batch = new IncrementBatch();
      for (let j = 0; j < 20; j++) {
        const key = Buffer.from(`k${Math.floor(rand() * 30)}`);
        const delta = BigInt(Math.floor(rand() * 200) - 100);
        batch.add(ks, key, delta);
        model.add(ks, key, delta);
      }
      // Read continuously while the apply runs, so some reads land between its batch and its swap.
      let done = false;
      const applying = store.apply(batch).finally(() => (done = true));
      const reader = async (): Promise<void> => {
        while (!done) {
          // A page of a missing keyspace settles in microtasks only: yield so the apply can run.
          await new Promise((resolve) => setImmediate(resolve));
          const offset = Math.floor(rand() * 10);
          const page = await store.page(ks, offset, 100);
          const got = page.map(show).join(' ');
          assert.ok(states.some((s) => s.slice(offset, offset + 100).join(' ') === got), `page at ${offset} matches no state: ${got}`);
          checked++;
        }
      };
      // Failures are collected, not left as unhandled rejections while the loop goes on.
      reads.push(reader().catch((err: unknown) => void failures.push(err)), reader().catch((err: unknown) => void failures.push(err)));
      await applying;
      states.push(model.ranked(ks).map(show));
    }
    await Promise.all(reads);
    await store.close();
    if (failures.length > 0) throw failures[0];
    assert.ok(checked >= 40);
  });
});
