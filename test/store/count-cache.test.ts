// The apply path's shortcuts must not change a single count: the count cache
// (hits, "all keys cached" absences, eviction, deleteKeyspace, reopen) and
// IncrementBatch's one-slice pair keys.

import assert from 'node:assert/strict';
import { encodeEntry, forEachEntry } from '../../lib/commitlog/format.js';
import { CountCache } from '../../lib/store/count-cache.js';
import { pairKeyString } from '../../lib/protocol/pair-key.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { Model, random, removeDir, tempDir } from './helpers.js';

const sizes = { keyspaceSize: 16, keySize: 16 };
const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('Store count cache', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) removeDir(d);
  });

  async function check(store: Store, model: Model, keyspaces: string[]): Promise<void> {
    for (const ks of keyspaces) {
      const expected = model.ranked(b(ks));
      assert.equal(await store.size(ks), expected.length, `size of ${ks}`);
      assert.deepEqual(await store.page(ks, 0, expected.length + 1), expected, `ranking of ${ks}`);
      for (const e of expected) assert.equal(await store.get(b(ks), e.key), e.count);
      assert.ok(await store.checkRankIndex(ks), `rank index of ${ks}`);
    }
  }

  it('gives back every count exactly, small ones kept as numbers and large ones as bigints', () => {
    const cache = new CountCache(1 << 20);
    const counts = [0n, 5n, -7n, 2n ** 30n - 1n, -(2n ** 30n) + 1n, 2n ** 30n, -(2n ** 30n), 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)];
    const items = counts.map((_, i) => ({ pair: `pair${i}` }));
    cache.record('ks', items, counts, new Uint8Array(counts.length), 0);
    for (let i = 0; i < counts.length; i++) assert.equal(cache.get(`pair${i}`), counts[i], `count ${counts[i]}`);
    // Updated in place across the boundary both ways.
    const moved = counts.map((c) => (c > 0n ? -c : 2n ** 62n));
    cache.record('ks', items, moved, new Uint8Array(counts.length).fill(1), 0);
    for (let i = 0; i < counts.length; i++) assert.equal(cache.get(`pair${i}`), moved[i]);
    assert.equal(cache.size, counts.length);
  });

  // 0: disabled; 3,000 bytes: a few dozen entries, so evictions break "all
  // cached" all the time; default: everything stays cached.
  for (const countCacheBytes of [0, 3000, undefined]) {
    it(`matches a model with countCacheBytes=${String(countCacheBytes)}: applies, deletes, re-creates, reopen`, async () => {
      const location = tempDir();
      dirs.push(location);
      const open = (): Promise<Store> => Store.open({ location, sizes, rankFenceSize: 4, ...(countCacheBytes === undefined ? {} : { countCacheBytes }) });
      let store = await open();
      const model = new Model();
      const rand = random(countCacheBytes ?? 7);
      const keyspaces = ['a', 'b', 'c'];
      try {
        for (let round = 0; round < 40; round++) {
          if (round === 20) {
            await store.close();
            store = await open();
          }
          if (round % 9 === 8) {
            const ks = keyspaces[Math.floor(rand() * keyspaces.length)]!;
            await store.deleteKeyspace(ks);
            model.spaces.delete(ks);
          }
          const batch = new IncrementBatch();
          const n = 1 + Math.floor(rand() * 60);
          for (let i = 0; i < n; i++) {
            const ks = b(keyspaces[Math.floor(rand() * keyspaces.length)]!);
            const key = b(`k${Math.floor(rand() * 80)}`);
            const delta = BigInt(Math.floor(rand() * 11) - 5);
            batch.add(ks, key, delta);
            model.add(ks, key, delta);
          }
          await store.apply(batch);
          await check(store, model, keyspaces);
        }
      } finally {
        await store.close();
      }
    });
  }

  it('keeps counts right when an apply fails validation between good ones', async () => {
    const location = tempDir();
    dirs.push(location);
    const store = await Store.open({ location, sizes });
    try {
      const good = new IncrementBatch();
      good.add(b('ks'), b('x'), 5n);
      await store.apply(good);
      const bad = new IncrementBatch();
      bad.add(b('ks'), b('x'), 100n);
      bad.add(b('ks'), b('y\0'), 1n);
      await assert.rejects(store.apply(bad), /NUL/);
      const again = new IncrementBatch();
      again.add(b('ks'), b('x'), 1n);
      await store.apply(again);
      assert.equal(await store.get('ks', 'x'), 6n);
      assert.equal(await store.get('ks', 'y'), undefined);
    } finally {
      await store.close();
    }
  });

  it('records entries whose presence an overlapped apply made unknown (flag 2) by looking them up', () => {
    const cache = new CountCache(10_000);
    const pair = (key: string): string => pairKeyString(b('ks'), b(key));
    const items = ['x', 'y'].map((k) => ({ pair: pair(k) }));
    cache.record('ks', items, [1n, 2n], new Uint8Array([0, 0]), 0);
    assert.equal(cache.cachedIn('ks'), 2);
    // x is cached, z is not: with flag 2 only z is counted as a new entry.
    const again = ['x', 'z'].map((k) => ({ pair: pair(k) }));
    cache.record('ks', again, [5n, 6n], new Uint8Array([2, 2]), 0);
    assert.equal(cache.cachedIn('ks'), 3);
    assert.equal(cache.size, 3);
    assert.equal(cache.get(pair('x')), 5n);
    assert.equal(cache.get(pair('z')), 6n);
  });

  it('stops adding new pairs while applies miss (distinct keys), keeps updating cached ones, and probes again', () => {
    const cache = new CountCache(1 << 20);
    assert.equal(cache.admitting, true);
    cache.noteLookups(0, 1000);
    assert.equal(cache.admitting, false, 'no hit among 1,000 lookups');
    cache.record('ks', [{ pair: 'new' }], [5n], new Uint8Array([0]), 0, cache.admitting);
    assert.equal(cache.get('new'), undefined, 'not admitted');
    cache.record('ks', [{ pair: 'old' }], [1n], new Uint8Array([0]), 0, true);
    cache.record('ks', [{ pair: 'old' }], [2n], new Uint8Array([1]), 0, false);
    assert.equal(cache.get('old'), 2n, 'an entry already cached is updated even when not admitting');
    let probes = 0;
    for (let i = 0; i < 16; i++) {
      cache.noteLookups(0, 1000);
      if (cache.admitting) probes++;
    }
    assert.equal(probes, 2, 'one apply in 8 admits again');
    cache.noteLookups(200, 1000);
    assert.equal(cache.admitting, false, 'hits under 30% do not pay for admitting');
    cache.noteLookups(300, 1000);
    assert.equal(cache.admitting, true, 'hits turn admission back on');
  });

  // Overlapped applies whose cache does not admit: the next apply must take
  // the counts of the one in flight from its own list, not from the database.
  for (const countCacheBytes of [1 << 20, 3000]) {
    it(`overlapped applies of mostly new keys, then the same keys again, match a model (countCacheBytes=${countCacheBytes})`, async () => {
      const location = tempDir();
      dirs.push(location);
      const store = await Store.open({ location, sizes, rankFenceSize: 4, countCacheBytes });
      const model = new Model();
      const rand = random(countCacheBytes);
      try {
        for (let round = 0; round < 12; round++) {
          const applies: Array<Promise<unknown>> = [];
          for (let a = 0; a < 3; a++) {
            const batch = new IncrementBatch();
            for (let i = 0; i < 200; i++) {
              // Rounds 0-5: every key new (admission goes off); later: keys of earlier rounds, some of them written by the apply in flight.
              const k = round < 6 ? `n${round}-${a}-${i}` : `n${Math.floor(rand() * 6)}-${Math.floor(rand() * 3)}-${Math.floor(rand() * 200)}`;
              const ks = b(k.length % 2 === 0 ? 'x' : 'y');
              const delta = BigInt(1 + Math.floor(rand() * 5));
              batch.add(ks, b(k), delta);
              model.add(ks, b(k), delta);
            }
            applies.push(store.apply(batch, []));
          }
          await Promise.all(applies);
        }
        await check(store, model, ['x', 'y']);
      } finally {
        await store.close();
      }
    });
  }

  it('rejects bad cache and LevelDB sizes', async () => {
    const location = tempDir();
    dirs.push(location);
    for (const bad of [{ countCacheBytes: -1 }, { cacheSize: 1.5 }, { writeBufferSize: 1 }]) {
      await assert.rejects(Store.open({ location, sizes, ...bad }), /must be an integer/);
    }
  });
});

describe('IncrementBatch pair keys', () => {
  it('sums the same pair from log entries (one slice) and from separate buffers', () => {
    const payload = Buffer.alloc(256);
    let at = 0;
    at = encodeEntry(payload, at, 2n, b('ks'), b('key'));
    at = encodeEntry(payload, at, 3n, b('ks'), b('key'));
    at = encodeEntry(payload, at, 7n, b('ksk'), b('ey'));
    const batch = new IncrementBatch();
    forEachEntry(payload.subarray(0, at), (inc, ks, key) => batch.add(ks, key, inc));
    batch.add(b('ks'), b('key'), 10n);
    batch.add(b('k'), b('skey'), 1n);
    assert.equal(batch.keys, 3);
    const sums = new Map<string, bigint>();
    for (const group of batch.keyspaces()) {
      for (const p of group.items) {
        sums.set(`${group.name.toString('latin1')}/${batch.keyBytes.toString('latin1', p.keyStart, p.keyStart + p.keyLength)}`, p.delta);
      }
    }
    assert.deepEqual(Object.fromEntries(sums), { 'ks/key': 15n, 'ksk/ey': 7n, 'k/skey': 1n });
  });

  it('does not take bytes before a view for its lengths unless they match', () => {
    // Two bytes before 'ks' happen to look like lengths of another split.
    const raw = Buffer.from([0, 0, 2, 0, 1, 0, 0x6b, 0x73, 0x6b]); // ... 'k' 's' 'k'
    const batch = new IncrementBatch();
    batch.add(raw.subarray(6, 8), raw.subarray(8, 9), 1n); // ('ks', 'k'): the 4 bytes before are 2,0,1,0
    batch.add(raw.subarray(6, 7), raw.subarray(7, 9), 1n); // ('k', 'sk'): the 4 bytes before do not match
    assert.equal(batch.keys, 2);
    batch.clear();
    assert.equal(batch.keys, 0);
    assert.equal(batch.keyBytes.length, 0);
  });
});
