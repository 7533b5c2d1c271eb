// The store child's memory: one setting (--store-memory), every part derived
// from it, none from the number of keys.

import assert from 'node:assert/strict';
import {
  JEMALLOC_PATHS,
  STORE_JEMALLOC_CONF,
  STORE_MALLOC_ENV,
  withStoreMallocArenas,
  DEFAULT_STORE_CHILD_SETTINGS,
  DEFAULT_STORE_MEMORY,
  HEAP_BYTES_PER_KEY,
  MAX_BATCH_KEYS,
  MAX_STORE_MEMORY,
  MIN_STORE_MEMORY,
  NATIVE_BYTES_PER_KEY,
  NODE_BASELINE_BYTES,
  storeChildMemoryBudget,
  storeChildSettingsFor,
} from '../../lib/roles/memory-budget.js';
import { settingsOf } from '../../lib/daemon/settings.js';
import { CountCache } from '../../lib/store/count-cache.js';
import { childExecArgv } from '../../lib/daemon/supervisor.js';
import { formatSize, parseSize } from '../../lib/util/size.js';

const MiB = 1024 * 1024;

describe('store child memory budget', () => {
  it('adds up the parts: runtime, LevelDB, caches, the V8 heap limit, batches outside the heap', () => {
    const s = { cacheSize: 1, writeBufferSize: 10, countCacheBytes: 100, blockCacheBytes: 1000, pageCacheBytes: 10_000, keyFilterBytes: 7, maxBatchKeys: 3, heapLimit: 100_000 };
    const budget = storeChildMemoryBudget(s);
    assert.equal(budget.total, NODE_BASELINE_BYTES + 1 + 20 + 1000 + 10_000 + 7 + 100_000 + 3 * NATIVE_BYTES_PER_KEY);
    assert.equal(budget.parts.reduce((sum, [, b]) => sum + b, 0), budget.total);
  });

  for (const mib of [256, 300, 512, 1024, 1500, 2048]) {
    it(`--store-memory ${mib}MiB: the parts add up to at most the setting, the heap limit holds the count cache and the batches`, () => {
      const s = storeChildSettingsFor(mib * MiB);
      const total = storeChildMemoryBudget(s).total;
      assert.ok(total <= mib * MiB, `${total} > ${mib * MiB}`);
      assert.ok(total > mib * MiB - 2 * MiB, 'nothing is left unused');
      assert.ok(s.heapLimit >= s.countCacheBytes + s.maxBatchKeys * HEAP_BYTES_PER_KEY);
      assert.equal(s.heapLimit % MiB, 0);
      assert.ok(s.maxBatchKeys >= 25_000);
    });
  }

  it('grows the batches, not the caches, past 1 GiB, up to MAX_BATCH_KEYS', () => {
    const one = storeChildSettingsFor(1024 * MiB);
    const two = storeChildSettingsFor(2048 * MiB);
    assert.ok(two.maxBatchKeys > 2 * one.maxBatchKeys);
    assert.equal(storeChildSettingsFor(4096 * MiB).cacheSize, 64 * MiB);
    assert.equal(two.countCacheBytes, 128 * MiB);
    assert.equal(storeChildSettingsFor(64 * 1024 * MiB).maxBatchKeys, MAX_BATCH_KEYS);
  });

  it("gives the count cache room for issue 14's sustained working set at the default (200,000 keys of ~20-byte pairs)", () => {
    const cache = new CountCache(DEFAULT_STORE_CHILD_SETTINGS.countCacheBytes);
    const items = Array.from({ length: 200_000 }, (_, i) => ({ pair: `\x04\x09ks${i % 1000}key${i}`.padEnd(20, 'x') }));
    cache.record('ks', items, items.map((_, i) => BigInt(i)), new Uint8Array(items.length), 0);
    cache.trim();
    assert.equal(cache.size, 200_000);
  });

  it('refuses a setting outside its range', () => {
    assert.throws(() => storeChildSettingsFor(MIN_STORE_MEMORY - 1), RangeError);
    assert.throws(() => storeChildSettingsFor(MAX_STORE_MEMORY + 1), RangeError);
  });

  it("defaults to the store child's share of the daemon's 512 MiB, every part within it", () => {
    assert.equal(DEFAULT_STORE_MEMORY, 292 * MiB);
    assert.deepEqual(DEFAULT_STORE_CHILD_SETTINGS, storeChildSettingsFor(292 * MiB));
    assert.ok(storeChildMemoryBudget().total <= DEFAULT_STORE_MEMORY);
  });

  it('gives the store child, and only it, its V8 heap limit', () => {
    const base = { settings: { ...settingsOf('start', {}), dataDir: '/x', writePort: 0, readPort: 0 } };
    const store = childExecArgv({ kind: 'store', settings: { ...base.settings, storeMemory: 512 * MiB } });
    assert.deepEqual(store.filter((a) => a.startsWith('--max-old-space-size')), [`--max-old-space-size=${storeChildSettingsFor(512 * MiB).heapLimit / MiB}`]);
    assert.deepEqual(childExecArgv({ ...base, kind: 'writer' }), process.execArgv);
    assert.deepEqual(childExecArgv({ ...base, kind: 'store' }), process.execArgv);
  });

  it('under --memory, gives both children a small young generation, and the store child its heap limit', () => {
    const settings = { ...settingsOf('start', {}), dataDir: '/x', writePort: 0, readPort: 0, memory: 512 * MiB, storeMemory: 292 * MiB };
    assert.deepEqual(childExecArgv({ kind: 'writer', settings }).filter((a) => a.startsWith('--max-')), ['--max-semi-space-size=4']);
    assert.deepEqual(childExecArgv({ kind: 'store', settings }).filter((a) => a.startsWith('--max-')), [`--max-old-space-size=${storeChildSettingsFor(292 * MiB).heapLimit / MiB}`, '--max-semi-space-size=4']);
  });
});

describe('sizes', () => {
  it('parses bytes and binary units, and refuses anything else', () => {
    assert.equal(parseSize('1GiB'), 1024 * MiB);
    assert.equal(parseSize('512MiB'), 512 * MiB);
    assert.equal(parseSize('512m'), 512 * MiB);
    assert.equal(parseSize('1.5G'), 1536 * MiB);
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('2 KB'), 2048);
    for (const bad of ['', 'GiB', '-1G', '1 PiB', '1e9', 'ten']) assert.equal(parseSize(bad), undefined, bad);
  });

  it('prints sizes for people', () => {
    assert.equal(formatSize(1024 * MiB), '1 GiB');
    assert.equal(formatSize(768 * MiB), '768 MiB');
    assert.equal(formatSize(1536 * MiB), '1.5 GiB');
    assert.equal(formatSize(100), '100 bytes');
  });
});

describe('the store child\'s malloc settings', () => {
  it('sets each glibc setting the environment leaves unset, and keeps those it sets', () => {
    const env = withStoreMallocArenas({ PATH: '/bin', MALLOC_ARENA_MAX: '4' });
    assert.equal(env.PATH, '/bin');
    assert.equal(env.MALLOC_ARENA_MAX, '4');
    assert.equal(env.MALLOC_MMAP_THRESHOLD_, STORE_MALLOC_ENV.MALLOC_MMAP_THRESHOLD_);
    assert.equal(env.MALLOC_TRIM_THRESHOLD_, '1048576');
    assert.deepEqual(withStoreMallocArenas({}, () => false), { ...STORE_MALLOC_ENV });
  });

  it('preloads jemalloc where the system has it, unless COUNTD_STORE_ALLOCATOR=glibc or LD_PRELOAD is set', () => {
    const only = (file: string) => (f: string) => f === file;
    const env = withStoreMallocArenas({ PATH: '/bin' }, only('/usr/lib64/libjemalloc.so.2'));
    assert.equal(env.LD_PRELOAD, '/usr/lib64/libjemalloc.so.2');
    assert.equal(env.MALLOC_CONF, STORE_JEMALLOC_CONF);
    assert.equal(withStoreMallocArenas({ MALLOC_CONF: 'narenas:1' }, only(JEMALLOC_PATHS[0]!)).MALLOC_CONF, 'narenas:1');
    assert.equal(withStoreMallocArenas({ COUNTD_STORE_ALLOCATOR: 'glibc' }, () => true).LD_PRELOAD, undefined);
    assert.equal(withStoreMallocArenas({ LD_PRELOAD: '/x.so' }, () => true).LD_PRELOAD, '/x.so');
    assert.equal(withStoreMallocArenas({}, () => false).LD_PRELOAD, undefined);
  });
});
