// `--ties first` keyspaces, dense rank and count --min in the Store: the
// apply order across reopens, bulk creates into a declared name, the
// settings listing, and one test per new error path of the readers.

import assert from 'node:assert/strict';
import { ClassicLevel } from 'classic-level';
import { ErrorCodes, isCountdError } from '../../lib/errors.js';
import { DEFAULT_FIELD_SIZES, INT64_MAX, INT64_MIN } from '../../lib/protocol/fields.js';
import { ORDER_KEY, TAG_COUNT, TAG_SETTINGS, idPrefix, taggedName, withPrefix } from '../../lib/store/encoding.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { removeDir, tempDir } from './helpers.js';

const sizes = DEFAULT_FIELD_SIZES;

async function rawPut(location: string, key: Buffer, value: Buffer): Promise<void> {
  const db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  await db.put(key, value);
  await db.close();
}

const corrupt = (err: unknown): boolean => isCountdError(err, ErrorCodes.CORRUPTION);
const invalid = (err: unknown): boolean => isCountdError(err, ErrorCodes.INVALID_ARGUMENT);

describe('Store: ties first, dense rank, count', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => removeDir(dir));

  const apply = async (store: Store, f: (b: IncrementBatch) => void): Promise<void> => {
    const batch = new IncrementBatch(store.operators());
    f(batch);
    await store.apply(batch);
  };
  const keys = async (store: Store, ks: string): Promise<string[]> => (await store.page(ks, 0, 100)).map((e) => `${e.key}=${e.count}`);

  it('the apply order goes on after a reopen; a key keeps its place while its count does not change', async () => {
    let store = await Store.open({ location: dir, sizes });
    await apply(store, (b) => {
      b.createKeyspace(Buffer.from('lb'), 2, 1); // max, ties first
      b.add(Buffer.from('lb'), Buffer.from('zed'), 5n);
    });
    await store.close();
    store = await Store.open({ location: dir, sizes });
    await apply(store, (b) => b.add(Buffer.from('lb'), Buffer.from('amy'), 5n));
    // A max below the count changes nothing: zed keeps its order.
    await apply(store, (b) => b.add(Buffer.from('lb'), Buffer.from('zed'), 3n));
    assert.deepEqual(await keys(store, 'lb'), ['zed=5', 'amy=5']);
    // A set to the same count changes nothing either; one to another count and back moves the key behind.
    await apply(store, (b) => b.set(Buffer.from('lb'), Buffer.from('zed'), 5n));
    assert.deepEqual(await keys(store, 'lb'), ['zed=5', 'amy=5']);
    await apply(store, (b) => b.set(Buffer.from('lb'), Buffer.from('zed'), 4n));
    await apply(store, (b) => b.set(Buffer.from('lb'), Buffer.from('zed'), 5n));
    assert.deepEqual(await keys(store, 'lb'), ['amy=5', 'zed=5']);
    assert.deepEqual(await store.denseRank('lb', 'zed'), { rank: 1, dense: 0, count: 5n });
    assert.equal(await store.countKeys('lb', { min: 5n }), 2);
    assert.equal(await store.checkRankIndex('lb'), true);
    await store.close();
  });

  it('a bulk create into a name declared --ties first gives its keys one order, after the keys before it', async () => {
    const store = await Store.open({ location: dir, sizes });
    await apply(store, (b) => b.createKeyspace(Buffer.from('lb'), 1, 1));
    await store.createKeyspace('lb', [Buffer.from('b'), Buffer.from('a'), Buffer.from('c')], [7n, 7n, 9n]);
    assert.deepEqual(await keys(store, 'lb'), ['c=9', 'a=7', 'b=7']);
    await apply(store, (b) => b.add(Buffer.from('lb'), Buffer.from('0'), 7n));
    assert.deepEqual(await keys(store, 'lb'), ['c=9', 'a=7', 'b=7', '0=7']);
    assert.equal(await store.rank('lb', '0'), 3);
    assert.equal(await store.checkRankIndex('lb'), true);
    await store.close();
  });

  it('lists every keyspace with its settings value, declared ones without keys too', async () => {
    const store = await Store.open({ location: dir, sizes });
    await apply(store, (b) => {
      b.createKeyspace(Buffer.from('empty'), 3, 1);
      b.add(Buffer.from('plain'), Buffer.from('k'), 1n);
    });
    assert.deepEqual(
      (await store.keyspaceSettings()).map((k) => [k.name.toString(), k.size, k.settings.toString('hex')]),
      [['empty', 0, '0301' + '00'.repeat(14)], ['plain', 1, '00'.repeat(16)]],
    );
    await store.close();
  });

  it('count --min at the bounds of int64, and of an unknown keyspace', async () => {
    const store = await Store.open({ location: dir, sizes });
    await apply(store, (b) => {
      b.add(Buffer.from('ks'), Buffer.from('top'), INT64_MAX);
      b.add(Buffer.from('ks'), Buffer.from('bottom'), INT64_MIN);
      b.add(Buffer.from('ks'), Buffer.from('zero'), 1n);
      b.add(Buffer.from('ks'), Buffer.from('zero'), -1n);
    });
    assert.equal(await store.countKeys('ks'), 3);
    assert.equal(await store.countKeys('ks', { min: INT64_MIN }), 3);
    assert.equal(await store.countKeys('ks', { min: INT64_MIN + 1n }), 2);
    assert.equal(await store.countKeys('ks', { min: 0n }), 2);
    assert.equal(await store.countKeys('ks', { min: 1n }), 1);
    assert.equal(await store.countKeys('ks', { min: INT64_MAX }), 1);
    assert.equal(await store.countKeys('nope', { min: 0n }), 0);
    assert.deepEqual(await store.denseRank('ks', 'bottom'), { rank: 2, dense: 2, count: INT64_MIN });
    assert.equal(await store.denseRank('nope', 'bottom'), undefined);
    await store.close();
  });

  describe('error paths', () => {
    it('countKeys with a min that is not a signed 64-bit bigint: COUNTD_INVALID_ARGUMENT', async () => {
      const store = await Store.open({ location: dir, sizes });
      await assert.rejects(store.countKeys('ks', { min: 2n ** 63n }), invalid);
      await assert.rejects(store.countKeys('ks', { min: 5 as unknown as bigint }), invalid);
      await store.close();
    });

    it('denseRank of an invalid key: COUNTD_INVALID_ARGUMENT', async () => {
      const store = await Store.open({ location: dir, sizes });
      await assert.rejects(store.denseRank('ks', ''), invalid);
      await store.close();
    });

    it('a settings record with a tie rule above 1: the open fails with COUNTD_CORRUPTION', async () => {
      await (await Store.open({ location: dir, sizes })).close();
      const value = Buffer.alloc(16);
      value[0] = 1;
      value[1] = 2;
      await rawPut(dir, taggedName(TAG_SETTINGS, Buffer.from('lb')), value);
      await assert.rejects(Store.open({ location: dir, sizes }), corrupt);
    });

    it('a settings record with a reserved byte set: the open fails with COUNTD_CORRUPTION', async () => {
      await (await Store.open({ location: dir, sizes })).close();
      const value = Buffer.alloc(16);
      value[0] = 1;
      value[3] = 1;
      await rawPut(dir, taggedName(TAG_SETTINGS, Buffer.from('lb')), value);
      await assert.rejects(Store.open({ location: dir, sizes }), corrupt);
    });

    it('an apply order record that is not 8 bytes: the open fails with COUNTD_CORRUPTION', async () => {
      await (await Store.open({ location: dir, sizes })).close();
      await rawPut(dir, ORDER_KEY, Buffer.alloc(5));
      await assert.rejects(Store.open({ location: dir, sizes }), corrupt);
    });

    it('a count record of 8 bytes in a --ties first keyspace: rank and dense rank fail with COUNTD_CORRUPTION', async () => {
      let store = await Store.open({ location: dir, sizes });
      await apply(store, (b) => {
        b.createKeyspace(Buffer.from('lb'), 1, 1);
        b.add(Buffer.from('lb'), Buffer.from('k'), 5n);
      });
      await store.close();
      await rawPut(dir, withPrefix(idPrefix(TAG_COUNT, 1), Buffer.from('k')), Buffer.alloc(8));
      store = await Store.open({ location: dir, sizes });
      await assert.rejects(store.rank('lb', 'k'), corrupt);
      await assert.rejects(store.denseRank('lb', 'k'), corrupt);
      await store.close();
    });

    it('a count record of another size: get fails with COUNTD_CORRUPTION', async () => {
      let store = await Store.open({ location: dir, sizes });
      await apply(store, (b) => b.add(Buffer.from('ks'), Buffer.from('k'), 5n));
      await store.close();
      await rawPut(dir, withPrefix(idPrefix(TAG_COUNT, 1), Buffer.from('k')), Buffer.alloc(12));
      store = await Store.open({ location: dir, sizes });
      await assert.rejects(store.get('ks', 'k'), corrupt);
      await store.close();
    });
  });
});
