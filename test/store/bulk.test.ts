// Store.createKeyspace (a new keyspace in one atomic batch, nothing read) and
// Store.tally (keys and exact sum from one scan of the count index): the
// store's bulk entry points for `countd migrate` (issue 5).

import assert from 'node:assert/strict';
import { INT64_MAX, INT64_MIN } from '../../lib/protocol/fields.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { random, randomInt64, removeDir, tempDir } from './helpers.js';

const SIZES = { keyspaceSize: 64, keySize: 64 };

describe('Store.createKeyspace and Store.tally', () => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = tempDir();
    store = await Store.open({ location: dir, sizes: SIZES, rankFenceSize: 4 });
  });
  afterEach(async () => {
    await store.close();
    removeDir(dir);
  });

  it('creates exactly what an apply of the same counts creates: entries, ranks, pages, fences, marks', async () => {
    const rand = random(5);
    const keys: Buffer[] = [];
    const counts: bigint[] = [];
    const batch = new IncrementBatch();
    for (let i = 0; i < 203; i++) {
      const key = Buffer.from(`k${i.toString(36)}`);
      const count = i % 7 === 0 ? 0n : i % 11 === 0 ? randomInt64(rand) : BigInt(Math.floor(rand() * 50) - 10);
      keys.push(key);
      counts.push(count);
      if (count === 0n) {
        batch.add(Buffer.from('applied'), key, 1n);
        batch.add(Buffer.from('applied'), key, -1n);
      } else {
        batch.add(Buffer.from('applied'), key, count);
      }
    }
    await store.createKeyspace('created', keys, counts, [{ name: 'm', value: Buffer.from('v') }]);
    await store.apply(batch);
    assert.equal((await store.getMark('m'))?.toString(), 'v');
    assert.equal(await store.size('created'), 203);
    assert.deepEqual(await store.page('created', 0, 1000), await store.page('applied', 0, 1000));
    assert.deepEqual(await store.page('created', 97, 13), await store.page('applied', 97, 13));
    for (const key of [keys[0]!, keys[100]!, keys[202]!]) assert.equal(await store.rank('created', key), await store.rank('applied', key));
    assert.equal(await store.checkRankIndex('created'), true);
    const sum = counts.reduce((a, b) => a + b, 0n);
    const sorted = [...counts].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    assert.deepEqual(await store.tally('created'), { keys: 203, sum, max: sorted[0], min: sorted[202] });
    // Later applies work on it as on any keyspace; it survives a reopen.
    const more = new IncrementBatch();
    more.add(Buffer.from('created'), keys[5]!, 1000n);
    more.add(Buffer.from('created'), Buffer.from('new'), 1n);
    await store.apply(more);
    await store.close();
    store = await Store.open({ location: dir, sizes: SIZES, rankFenceSize: 4 });
    assert.equal(await store.get('created', keys[5]!), counts[5]! + 1000n);
    assert.equal((await store.tally('created')).keys, 204);
    assert.equal(await store.checkRankIndex('created'), true);
  });

  it('tallies an absent keyspace as empty, and counts at the 64-bit limits exactly', async () => {
    assert.deepEqual(await store.tally('nothing'), { keys: 0, sum: 0n, max: undefined, min: undefined });
    await store.createKeyspace('edge', [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')], [INT64_MAX, INT64_MIN, INT64_MAX]);
    assert.deepEqual(await store.tally('edge'), { keys: 3, sum: INT64_MAX * 2n + INT64_MIN, max: INT64_MAX, min: INT64_MIN });
  });

  it('refuses an existing keyspace, a key twice, bad keys and counts, writing nothing', async () => {
    const batch = new IncrementBatch();
    batch.add(Buffer.from('there'), Buffer.from('x'), 1n);
    await store.apply(batch);
    const mark = [{ name: 'm', value: Buffer.from('v') }];
    await assert.rejects(store.createKeyspace('there', [Buffer.from('y')], [1n], mark), /exists/);
    await assert.rejects(store.createKeyspace('dup', [Buffer.from('y'), Buffer.from('y')], [1n, 2n], mark), /twice/);
    await assert.rejects(store.createKeyspace('nul', [Buffer.from('a\0b')], [1n], mark), /NUL/);
    await assert.rejects(store.createKeyspace('long', [Buffer.alloc(65, 0x61)], [1n], mark), /1 to 64 bytes/);
    await assert.rejects(store.createKeyspace('range', [Buffer.from('y')], [INT64_MAX + 1n], mark), /signed 64-bit/);
    await assert.rejects(store.createKeyspace('lengths', [Buffer.from('y')], [], mark), /one length/);
    await assert.rejects(store.createKeyspace('empty', [], [], mark), /non-empty/);
    assert.equal(await store.getMark('m'), undefined);
    assert.deepEqual((await store.keyspaces()).map((k) => k.name.toString()), ['there']);
  });
});
