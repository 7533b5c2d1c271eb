import assert from 'node:assert/strict';
import { ErrorCodes, isCountdError } from '../../lib/errors.js';
import { INT64_MAX, INT64_MIN } from '../../lib/protocol/fields.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import type { Logger } from '../../lib/util/log.js';
import { LogLine, recordingLogger, removeDir, tempDir } from './helpers.js';

const sizes = { keyspaceSize: 16, keySize: 16 };
const b = (s: string): Buffer => Buffer.from(s, 'utf8');

function batchOf(...items: Array<[string, string, bigint]>): IncrementBatch {
  const batch = new IncrementBatch();
  for (const [ks, key, delta] of items) batch.add(b(ks), b(key), delta);
  return batch;
}

async function rejectsWith(promise: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  await assert.rejects(async () => (typeof promise === 'function' ? await promise() : await promise), (err: unknown) => {
    assert.ok(isCountdError(err), `expected a CountdError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

describe('Store', () => {
  const dirs: string[] = [];
  const stores: Store[] = [];
  async function open(options: { logger?: Logger; rankFenceSize?: number } = {}, dir?: string): Promise<{ store: Store; dir: string }> {
    const location = dir ?? tempDir();
    if (!dir) dirs.push(location);
    const store = await Store.open({ location, sizes, ...options });
    stores.push(store);
    return { store, dir: location };
  }
  after(async () => {
    for (const s of stores) await s.close();
    for (const d of dirs) removeDir(d);
  });

  it('reads back 2^60+1 exactly', async () => {
    const { store } = await open();
    await store.apply(batchOf(['ks', 'big', 2n ** 60n], ['ks', 'big', 1n]));
    assert.equal(await store.get('ks', 'big'), 2n ** 60n + 1n);
    assert.deepEqual(await store.page('ks', 0, 10), [{ key: b('big'), count: 2n ** 60n + 1n }]);
  });

  it('saturates past the signed 64-bit range and logs a warning', async () => {
    const lines: LogLine[] = [];
    const { store } = await open({ logger: recordingLogger(lines) });
    await store.apply(batchOf(['ks', 'hi', INT64_MAX], ['ks', 'lo', INT64_MIN]));
    const result = await store.apply(batchOf(['ks', 'hi', 5n], ['ks', 'lo', -5n], ['ks', 'ok', 1n]));
    assert.deepEqual(result, { keys: 3, saturated: 2 });
    assert.equal(await store.get('ks', 'hi'), INT64_MAX);
    assert.equal(await store.get('ks', 'lo'), INT64_MIN);
    assert.ok(lines.some((l) => l.level === 'warn' && /saturated/.test(l.message) && l.fields?.keys === 2));
    const page = await store.page('ks', 0, 10);
    assert.deepEqual(page.map((e) => e.key.toString()), ['hi', 'ok', 'lo']);
    // Coming back down from the clamp is exact.
    await store.apply(batchOf(['ks', 'hi', -INT64_MAX]));
    assert.equal(await store.get('ks', 'hi'), 0n);
  });

  it('an increment of 0 creates nothing; a key back at 0 stays with count 0', async () => {
    const { store } = await open();
    const zero = batchOf(['ks', 'z', 0n]);
    assert.equal(zero.keys, 0);
    await store.apply(zero);
    assert.equal(await store.get('ks', 'z'), undefined);
    assert.equal(await store.size('ks'), 0);
    assert.deepEqual(await store.keyspaces(), []);
    await store.apply(batchOf(['ks', 'a', 3n]));
    await store.apply(batchOf(['ks', 'a', -3n], ['ks', 'b', 2n], ['ks', 'b', -2n]));
    assert.equal(await store.get('ks', 'a'), 0n);
    assert.equal(await store.get('ks', 'b'), 0n, 'touched by non-zero deltas that sum to 0: created');
    assert.equal(await store.size('ks'), 2);
    assert.deepEqual(await store.page('ks', 0, 10), [
      { key: b('a'), count: 0n },
      { key: b('b'), count: 0n },
    ]);
  });

  it('writes marks in the same batch as the apply, and none when the apply is rejected', async () => {
    const { store, dir } = await open();
    await store.apply(batchOf(['ks', 'a', 1n]), [{ name: 'applied', value: b('log 3 gen 1') }]);
    assert.equal((await store.getMark('applied'))?.toString(), 'log 3 gen 1');
    const bad = new IncrementBatch();
    bad.add(b('ks'), b('a'), 1n);
    bad.add(b('ks'), b('x'.repeat(17)), 1n);
    await rejectsWith(store.apply(bad, [{ name: 'applied', value: b('log 4') }]), ErrorCodes.INVALID_ARGUMENT);
    assert.equal((await store.getMark('applied'))?.toString(), 'log 3 gen 1');
    assert.equal(await store.get('ks', 'a'), 1n);
    // Marks alone (an empty batch) are written too, and survive a reopen.
    await store.apply(new IncrementBatch(), [{ name: 'other', value: b('x') }]);
    assert.equal(await store.getMark('nothing'), undefined);
    await store.close();
    const { store: again } = await open({}, dir);
    assert.equal((await again.getMark('applied'))?.toString(), 'log 3 gen 1');
    assert.equal((await again.getMark('other'))?.toString(), 'x');
    assert.equal(await again.get('ks', 'a'), 1n);
  });

  it('deletes a keyspace atomically with marks; a new one of the same name starts empty', async () => {
    const { store, dir } = await open({ rankFenceSize: 4 });
    const batch = new IncrementBatch();
    for (let i = 0; i < 50; i++) batch.add(b('gone'), b(`k${i}`), BigInt(i));
    batch.add(b('kept'), b('k'), 7n);
    await store.apply(batch);
    await store.deleteKeyspace('gone', [{ name: 'migrated', value: b('fp') }]);
    assert.equal((await store.getMark('migrated'))?.toString(), 'fp');
    assert.equal(await store.size('gone'), 0);
    assert.deepEqual(await store.page('gone', 0, 10), []);
    assert.equal(await store.rank('gone', 'k1'), undefined);
    assert.deepEqual((await store.keyspaces()).map((k) => [k.name.toString(), k.size]), [['kept', 1]]);
    await store.apply(batchOf(['gone', 'k1', 1n]));
    assert.deepEqual(await store.page('gone', 0, 10), [{ key: b('k1'), count: 1n }]);
    await store.deleteKeyspace('never-existed');
    await store.close();
    const { store: again } = await open({ rankFenceSize: 4 }, dir);
    assert.deepEqual((await again.keyspaces()).map((k) => [k.name.toString(), k.size]), [['gone', 1], ['kept', 1]]);
    assert.equal(await again.checkRankIndex('gone'), true);
  });

  it('reads an unknown keyspace as empty', async () => {
    const { store } = await open();
    assert.deepEqual(await store.page('nope', 0, 10), []);
    assert.equal(await store.size('nope'), 0);
    assert.equal(await store.get('nope', 'k'), undefined);
    assert.equal(await store.rank('nope', 'k'), undefined);
    assert.equal(await store.around('nope', 'k', 5), undefined);
    const seen: unknown[] = [];
    for await (const e of store.iterate('nope')) seen.push(e);
    assert.deepEqual(seen, []);
    assert.equal(await store.checkRankIndex('nope'), true);
  });

  it('lists keyspaces sorted by name bytes with their sizes', async () => {
    const { store } = await open();
    await store.apply(batchOf(['b', 'x', 1n], ['ab', 'x', 1n], ['a', 'x', 1n], ['a', 'y', 1n], ['\u00ff', 'x', 1n]));
    assert.deepEqual((await store.keyspaces()).map((k) => [k.name.toString(), k.size]), [['a', 2], ['ab', 1], ['b', 1], ['\u00ff', 1]]);
  });

  it('pages past the end, around near the edges and iterate from an offset', async () => {
    const { store } = await open({ rankFenceSize: 4 });
    const batch = new IncrementBatch();
    for (let i = 0; i < 30; i++) batch.add(b('ks'), b(`k${String(i).padStart(2, '0')}`), BigInt(100 - i));
    await store.apply(batch);
    assert.deepEqual(await store.page('ks', 30, 5), []);
    assert.deepEqual(await store.page('ks', 2n ** 64n - 1n, 5), []);
    assert.deepEqual(await store.page('ks', 0, 0), []);
    assert.equal((await store.page('ks', 28, 5)).length, 2);
    const first = await store.around('ks', 'k00', 5);
    assert.equal(first?.offset, 0);
    assert.equal(first?.entries.length, 5);
    const last = await store.around('ks', 'k29', 5);
    assert.equal(last?.offset, 25);
    assert.equal(last?.entries[4].key.toString(), 'k29');
    const mid = await store.around('ks', 'k10', 5);
    assert.equal(mid?.offset, 8);
    assert.equal(mid?.entries[2].key.toString(), 'k10');
    assert.equal(await store.around('ks', 'missing', 5), undefined);
    const seen: string[] = [];
    for await (const e of store.iterate('ks', { offset: 27 })) seen.push(e.key.toString());
    assert.deepEqual(seen, ['k27', 'k28', 'k29']);
  });

  describe('validation', () => {
    let store: Store;
    before(async () => {
      store = (await open()).store;
    });

    it('rejects bad keyspace and key names', async () => {
      await rejectsWith(() => store.page('', 0, 1), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.page('x'.repeat(17), 0, 1), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.get('ks', 'a\0b'), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.rank('ks', ''), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.size(42 as unknown as string), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.deleteKeyspace(''), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.apply(batchOf(['', 'k', 1n])), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.apply(batchOf(['ks', 'a\0', 1n])), ErrorCodes.INVALID_ARGUMENT);
    });

    it('rejects bad offsets, lengths and sizes', async () => {
      await rejectsWith(() => store.page('ks', -1, 1), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.page('ks', -1n, 1), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.page('ks', 1.5, 1), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.page('ks', 0, -1), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.around('ks', 'k', Number.NaN), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(async () => {
        for await (const _ of store.iterate('ks', { offset: -3 })) void _;
      }, ErrorCodes.INVALID_ARGUMENT);
    });

    it('rejects bad batches and marks', async () => {
      await rejectsWith(() => store.apply({} as IncrementBatch), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.apply(new IncrementBatch(), [{ name: '', value: b('x') }]), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.apply(new IncrementBatch(), [{ name: 'm'.repeat(256), value: b('x') }]), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.apply(new IncrementBatch(), [{ name: 'm', value: 'x' as unknown as Buffer }]), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.apply(new IncrementBatch(), 'x' as unknown as []), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(() => store.getMark(''), ErrorCodes.INVALID_ARGUMENT);
    });

    it('rejects bad open options', async () => {
      const location = tempDir();
      dirs.push(location);
      await rejectsWith(Store.open({ location: '', sizes }), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(Store.open({ location, sizes: { keyspaceSize: 0, keySize: 1 } }), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(Store.open({ location, sizes, rankFenceSize: 1 }), ErrorCodes.INVALID_ARGUMENT);
      await rejectsWith(Store.open({ location, sizes, rankCacheKeyspaces: 0 }), ErrorCodes.INVALID_ARGUMENT);
    });
  });

  it('fails with COUNTD_LOCKED when another Store holds the database', async () => {
    const { dir } = await open();
    await assert.rejects(Store.open({ location: dir, sizes }), (err: unknown) => {
      assert.ok(isCountdError(err, ErrorCodes.LOCKED));
      assert.match(err.message, /is in use by another process \(is a countd daemon running\?\)/);
      assert.ok(err.cause);
      return true;
    });
  });

  it('fails with COUNTD_CLOSED after close', async () => {
    const { store } = await open();
    await store.close();
    await rejectsWith(() => store.page('ks', 0, 1), ErrorCodes.CLOSED);
    await rejectsWith(() => store.apply(new IncrementBatch()), ErrorCodes.CLOSED);
  });
});
