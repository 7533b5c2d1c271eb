// The key filter (lib/store/key-filter.ts): it may answer "absent" only for
// a key never added to a keyspace whose creating apply committed, and the
// Store must read every other pair. Counted by the reads that reach
// LevelDB's getMany.

import assert from 'node:assert/strict';
import { ClassicLevel } from 'classic-level';
import { KeyFilter, MAX_KEY_FILTER_BYTES } from '../../lib/store/key-filter.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { Model, random, removeDir, tempDir } from './helpers.js';

const sizes = { keyspaceSize: 16, keySize: 16 };
const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Count the keys the Store's next applies read back from LevelDB (getMany), and optionally fail its next batch write. */
function instrument(store: Store): { reads: () => number; failNextWrite: () => void } {
  const db = (store as unknown as { state: { db: ClassicLevel<Buffer, Buffer> } }).state.db;
  let reads = 0;
  let fail = false;
  const getMany = db.getMany.bind(db) as (keys: Buffer[]) => Promise<Array<Buffer | undefined>>;
  (db as unknown as { getMany: (keys: Buffer[]) => Promise<Array<Buffer | undefined>> }).getMany = (keys) => {
    reads += keys.length;
    return getMany(keys);
  };
  const batchFn = db.batch.bind(db) as () => ReturnType<typeof db.batch>;
  (db as unknown as { batch: () => unknown }).batch = () => {
    const chained = batchFn();
    if (fail) {
      fail = false;
      chained.write = async () => {
        await chained.close();
        throw new Error('simulated EIO');
      };
    }
    return chained;
  };
  return { reads: () => reads, failNextWrite: () => (fail = true) };
}

describe('key filter', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  it('answers "absent" only for keys never added, per keyspace id', () => {
    const f = new KeyFilter(1 << 16);
    const keys = Array.from({ length: 2000 }, (_, i) => b(`key${i}`));
    for (const k of keys) f.add(7, k, 0, k.length);
    for (const k of keys) assert.equal(f.mayContain(7, k, 0, k.length), true, k.toString());
    // Other keys, and the same keys under another id: almost all absent (false positives are allowed, rare at 262 bits a key).
    let positives = 0;
    for (let i = 0; i < 2000; i++) {
      const k = b(`other${i}`);
      if (f.mayContain(7, k, 0, k.length)) positives++;
      if (f.mayContain(8, keys[i]!, 0, keys[i]!.length)) positives++;
    }
    assert.ok(positives < 10, `${positives} false positives of 4000`);
    // A key inside a larger buffer is hashed by its bytes only.
    const inside = Buffer.concat([b('xx'), keys[5]!, b('yy')]);
    assert.equal(f.mayContain(7, inside, 2, keys[5]!.length), true);
  });

  it('covers a keyspace only once tracked and committed; forgets on uncover and clear; stops answering when saturated', () => {
    const f = new KeyFilter(64);
    assert.equal(f.bytes, 64);
    f.cover(1);
    assert.equal(f.covers(1), false, 'never tracked: its keys did not all go through add()');
    f.track(1);
    assert.equal(f.covers(1), false, 'tracked, not committed');
    f.cover(1);
    assert.equal(f.covers(1), true);
    f.uncover(1);
    assert.equal(f.covers(1), false);
    assert.equal(f.tracks(1), false);
    f.track(2);
    f.cover(2);
    // 512 bits: past 256 keys it stops answering.
    for (let i = 0; i < 256; i++) f.add(2, b(`k${i}`), 0, 2);
    assert.equal(f.covers(2), true);
    f.add(2, b('one more'), 0, 8);
    assert.equal(f.covers(2), false);
    f.clear();
    assert.equal(f.tracks(2), false);
    assert.equal(f.covers(2), false);
    const none = new KeyFilter(63);
    none.track(3);
    none.cover(3);
    assert.equal(none.enabled, false);
    assert.equal(none.covers(3), false);
    assert.equal(new KeyFilter(MAX_KEY_FILTER_BYTES * 4).bytes, MAX_KEY_FILTER_BYTES);
  });

  it('reads no new key of a keyspace the store created; reads every key of one it did not create; counts stay exact', async () => {
    const location = tempDir();
    dirs.push(location);
    // No count cache: every pair not answered by the filter is read.
    let store = await Store.open({ location, sizes, rankFenceSize: 4, countCacheBytes: 0, sync: false });
    let io = instrument(store);
    const model = new Model();
    const apply = async (ks: string, keys: string[], delta: bigint, applied = true): Promise<void> => {
      const batch = new IncrementBatch();
      for (const k of keys) {
        batch.add(b(ks), b(k), delta);
        if (applied) model.add(b(ks), b(k), delta);
      }
      await store.apply(batch);
    };
    const range = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `k${from + i}`);
    await apply('fresh', range(0, 100), 1n); // created: nothing to read
    assert.equal(io.reads(), 0);
    // New and existing keys in one batch: the 50 existing are read, the 50 new (almost all) not.
    await apply('fresh', range(50, 150), 2n);
    assert.ok(io.reads() >= 50 && io.reads() < 55, `read ${io.reads()} keys`);
    // A failed apply that creates a keyspace: its id is never covered, the next one reads.
    io.failNextWrite();
    await assert.rejects(apply('failed', range(0, 10), 1n, false), /simulated EIO/);
    assert.equal(await store.size('failed'), 0);
    await apply('failed', range(0, 10), 5n); // created (again) by this one: no reads
    const before = io.reads();
    await apply('failed', range(5, 15), 1n);
    assert.ok(io.reads() - before >= 5 && io.reads() - before < 8, `read ${io.reads() - before} keys`);
    // A bulk create after a failed apply takes the id that apply had given its new keyspace: its keys are read.
    io.failNextWrite();
    await assert.rejects(apply('bulk', range(0, 10), 1n, false), /simulated EIO/);
    await store.createKeyspace('bulk', range(0, 10).map(b), range(0, 10).map(() => 7n));
    for (const k of range(0, 10)) model.add(b('bulk'), b(k), 7n);
    const beforeBulk = io.reads();
    await apply('bulk', range(0, 10), 1n);
    assert.equal(io.reads() - beforeBulk, 10);
    // After a reopen nothing is covered: every pair is read.
    await store.close();
    store = await Store.open({ location, sizes, rankFenceSize: 4, countCacheBytes: 0, sync: false });
    io = instrument(store);
    await apply('fresh', range(140, 200), 1n);
    assert.equal(io.reads(), 60);
    // A deleted and re-created keyspace starts over under a new id: its old keys are new.
    await store.deleteKeyspace('fresh');
    model.spaces.delete('fresh');
    await apply('fresh', range(0, 20), 3n);
    await apply('fresh', range(10, 30), 3n);
    for (const ks of ['fresh', 'failed', 'bulk']) {
      assert.deepEqual(await store.page(ks, 0, 1000), model.ranked(b(ks)), ks);
      assert.equal(await store.checkRankIndex(ks), true);
    }
    await store.close();
  });

  it('matches a model on random batches of new and existing keys in keyspaces created as it goes, overlapped, with a tiny filter', async () => {
    for (const keyFilterBytes of [64, 4096]) {
      const location = tempDir();
      dirs.push(location);
      const store = await Store.open({ location, sizes, rankFenceSize: 4, countCacheBytes: 0, keyFilterBytes, sync: false });
      const model = new Model();
      const rand = random(keyFilterBytes);
      for (let round = 0; round < 40; round++) {
        const applies: Array<Promise<unknown>> = [];
        for (let a = 0; a < 1 + Math.floor(rand() * 3); a++) {
          const batch = new IncrementBatch();
          for (let j = 0; j < 1 + Math.floor(rand() * 80); j++) {
            // Keyspaces appear as rounds go; keys drift upwards: mostly new, some existing.
            const ks = `ks${Math.floor(rand() * (1 + round / 8))}`;
            const key = `k${Math.floor(rand() * 40) + round * 10}`;
            const delta = BigInt(Math.floor(rand() * 9) - 4);
            batch.add(b(ks), b(key), delta);
            model.add(b(ks), b(key), delta);
          }
          applies.push(store.apply(batch));
        }
        await Promise.all(applies);
        if (rand() < 0.1) {
          const ks = `ks${Math.floor(rand() * 4)}`;
          await store.deleteKeyspace(ks);
          model.spaces.delete(ks);
        }
      }
      for (const ks of model.spaces.keys()) {
        assert.deepEqual(await store.page(ks, 0, 10_000), model.ranked(b(ks)), `${ks}, ${keyFilterBytes} bytes`);
        assert.equal(await store.checkRankIndex(ks), true);
      }
      await store.close();
    }
  });
});
