// The rank-block cache (lib/store/block-cache.ts) on its own, and through the
// Store: hits for repeated reads, exact answers after applies that move keys
// between blocks (the model test covers this at random), bounded bytes.

import assert from 'node:assert/strict';
import { BlockCache, RankBlock } from '../../lib/store/block-cache.js';
import { indexSuffix } from '../../lib/store/encoding.js';
import { metrics } from '../../lib/metrics.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { removeDir, tempDir } from './helpers.js';

function block(...entries: Array<[string, bigint]>): RankBlock {
  return RankBlock.of(entries.map(([key, count]) => indexSuffix(count, Buffer.from(key))));
}

async function counter(c: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await c.get()).values[0]?.value ?? 0;
}

describe('RankBlock', () => {
  it('holds its entries in rank order and finds them by index suffix', () => {
    const ranked: Array<[string, bigint]> = [['big', 2n ** 60n + 1n], ['z', 9n], ['a', 5n], ['b', 5n], ['neg', -3n]];
    const b = block(...ranked);
    assert.equal(b.length, 5);
    const all: Array<{ key: Buffer; count: bigint }> = [];
    b.pushEntries(0, 5, all);
    assert.deepEqual(all, ranked.map(([key, count]) => ({ key: Buffer.from(key), count })));
    const some: Array<{ key: Buffer; count: bigint }> = [];
    b.pushEntries(3, 5, some);
    assert.deepEqual(some, all.slice(3));
    for (const [i, [key, count]] of ranked.entries()) {
      assert.equal(b.indexOf(indexSuffix(count, Buffer.from(key))), i);
    }
    assert.equal(b.indexOf(indexSuffix(5n, Buffer.from('c'))), -1);
    assert.equal(b.indexOf(indexSuffix(4n, Buffer.from('a'))), -1);
  });

  it('hands out copies of its keys', () => {
    const b = block(['key', 1n]);
    const out: Array<{ key: Buffer; count: bigint }> = [];
    b.pushEntries(0, 1, out);
    out[0]!.key.fill(0x41);
    const again: Array<{ key: Buffer; count: bigint }> = [];
    b.pushEntries(0, 1, again);
    assert.deepEqual(again[0]!.key, Buffer.from('key'));
  });
});

describe('BlockCache', () => {
  const k = (s: string): Buffer => Buffer.from(s, 'latin1');

  it('stays within its bytes, evicting the least recently used block', () => {
    const one = block(['a', 1n]);
    const cache = new BlockCache(3 * one.bytes);
    cache.set(1, k(''), one);
    cache.set(1, k('x'), block(['b', 1n]));
    cache.set(2, k(''), block(['c', 1n]));
    assert.ok(cache.get(1, k('')) !== undefined); // now most recently used
    cache.set(3, k(''), block(['d', 1n]));
    assert.equal(cache.size, 3);
    assert.ok(cache.bytes <= cache.capacityBytes);
    assert.equal(cache.get(1, k('x')), undefined, 'the least recently used block went first');
    assert.ok(cache.get(1, k('')) !== undefined);
    assert.ok(cache.get(3, k('')) !== undefined);
  });

  it('forgets invalidated blocks and every block of a dropped keyspace', () => {
    const cache = new BlockCache(1 << 20);
    for (const id of [1, 2]) for (const f of ['', 'm', 'q']) cache.set(id, k(f), block([f + id, 1n]));
    cache.invalidate(1, [k('m')]);
    assert.equal(cache.get(1, k('m')), undefined);
    assert.ok(cache.get(1, k('q')) !== undefined);
    cache.dropKeyspace(2);
    for (const f of ['', 'm', 'q']) assert.equal(cache.get(2, k(f)), undefined);
    assert.equal(cache.size, 2);
    assert.equal(cache.bytes, block(['1', 1n]).bytes + block(['q1', 1n]).bytes);
  });

  it('caches nothing when its capacity is 0 or a block is bigger than all of it', () => {
    const off = new BlockCache(0);
    off.set(1, k(''), block(['a', 1n]));
    assert.equal(off.size, 0);
    const small = new BlockCache(10);
    small.set(1, k(''), block(['a', 1n]));
    assert.equal(small.size, 0);
  });
});

describe('Store rank-block cache', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  it('serves repeated pages and ranks from memory, and sees every apply', async () => {
    const location = tempDir();
    dirs.push(location);
    const store = await Store.open({ location, sizes: { keyspaceSize: 16, keySize: 16 }, rankFenceSize: 8, sync: false });
    try {
      const batch = new IncrementBatch();
      for (let i = 0; i < 200; i++) batch.add(Buffer.from('ks'), Buffer.from(`k${i}`), BigInt(1000 - i));
      await store.apply(batch);
      const first = await store.page('ks', 150, 20);
      const hits = await counter(metrics.rankBlockHits);
      const misses = await counter(metrics.rankBlockMisses);
      assert.deepEqual(await store.page('ks', 150, 20), first);
      assert.equal(await store.rank('ks', 'k160'), 160);
      assert.equal(await counter(metrics.rankBlockMisses), misses, 'no block read again');
      assert.ok((await counter(metrics.rankBlockHits)) > hits);

      // k199 (count 801) jumps to the top: every block between moves by one.
      const jump = new IncrementBatch();
      jump.add(Buffer.from('ks'), Buffer.from('k199'), 1000n);
      await store.apply(jump);
      assert.equal(await store.rank('ks', 'k199'), 0);
      assert.equal(await store.rank('ks', 'k160'), 161);
      const after = await store.page('ks', 150, 20);
      assert.deepEqual(after[0], first[0] === undefined ? undefined : { key: Buffer.from('k149'), count: 851n });
      assert.deepEqual(after.slice(1), first.slice(0, 19));
    } finally {
      await store.close();
    }
  });
});
