// Rank fences loaded by an apply (after a reopen or a fence-cache eviction)
// are checked against the keyspace size BEFORE that apply. The crash loop
// used to log "rank fences missing or inconsistent" at nearly every restart:
// the first apply after an open compared the fences on disk with the size it
// had already grown by its new keys, and rebuilt sound fences from a full
// index scan. Truly missing fences must still be rebuilt, with the warning.

import assert from 'node:assert/strict';
import { ClassicLevel } from 'classic-level';
import { TAG_FENCE } from '../../lib/store/encoding.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { LogLine, recordingLogger, removeDir, tempDir } from './helpers.js';

const sizes = { keyspaceSize: 16, keySize: 16 };
const FENCE_WARNING = /rank fences missing or inconsistent/;

/** `n` keys `prefix0`… of keyspace `ks`, key i counting i + 1. */
function keysBatch(ks: string, prefix: string, n: number): IncrementBatch {
  const batch = new IncrementBatch();
  for (let i = 0; i < n; i++) batch.add(Buffer.from(ks), Buffer.from(`${prefix}${i}`), BigInt(i + 1));
  return batch;
}

function fenceWarnings(lines: LogLine[]): LogLine[] {
  return lines.filter((l) => l.level === 'warn' && FENCE_WARNING.test(l.message));
}

describe('Store: rank fences loaded by an apply', () => {
  const dirs: string[] = [];
  const stores: Store[] = [];
  async function open(dir: string, lines: LogLine[], extra: { rankCacheKeyspaces?: number } = {}): Promise<Store> {
    const store = await Store.open({ location: dir, sizes, logger: recordingLogger(lines), rankFenceSize: 4, sync: false, ...extra });
    stores.push(store);
    return store;
  }
  function newDir(): string {
    const dir = tempDir();
    dirs.push(dir);
    return dir;
  }
  after(async () => {
    for (const s of stores) await s.close().catch(() => {});
    for (const d of dirs) removeDir(d);
  });

  it('the first apply after a reopen that creates keys finds the persisted fences sound', async () => {
    const dir = newDir();
    const lines: LogLine[] = [];
    let store = await open(dir, lines);
    await store.apply(keysBatch('ks', 'a', 30));
    await store.close();

    store = await open(dir, lines);
    // New keys and an update of an old one, before any read loads the fences.
    const batch = keysBatch('ks', 'b', 5);
    batch.add(Buffer.from('ks'), Buffer.from('a0'), 100n);
    await store.apply(batch);
    assert.deepEqual(fenceWarnings(lines), []);
    assert.equal(await store.size('ks'), 35);
    assert.equal(await store.checkRankIndex('ks'), true);
    assert.equal(await store.rank('ks', 'a0'), 0);
    assert.equal((await store.page('ks', 0, 100)).length, 35);
    await store.close();

    // And the fences that apply wrote are still sound on the next open.
    store = await open(dir, lines);
    await store.apply(keysBatch('ks', 'c', 3));
    assert.deepEqual(fenceWarnings(lines), []);
    assert.equal(await store.checkRankIndex('ks'), true);
  });

  it('an apply after its keyspace left the fence cache finds the persisted fences sound', async () => {
    const lines: LogLine[] = [];
    const store = await open(newDir(), lines, { rankCacheKeyspaces: 1 });
    await store.apply(keysBatch('one', 'a', 20));
    await store.apply(keysBatch('two', 'a', 20)); // evicts the fences of 'one'
    await store.apply(keysBatch('one', 'b', 7));
    await store.apply(keysBatch('two', 'b', 7));
    assert.deepEqual(fenceWarnings(lines), []);
    assert.equal(await store.checkRankIndex('one'), true);
    assert.equal(await store.checkRankIndex('two'), true);
    assert.equal(await store.size('one'), 27);
  });

  it('fences truly missing on disk are still reported, rebuilt, and persisted by the next apply', async () => {
    const dir = newDir();
    const lines: LogLine[] = [];
    let store = await open(dir, lines);
    await store.apply(keysBatch('ks', 'a', 30));
    await store.close();

    // Drop every fence record, as a damaged database might.
    const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    await db.clear({ gte: Buffer.from([TAG_FENCE]), lt: Buffer.from([TAG_FENCE + 1]) });
    await db.close();

    store = await open(dir, lines);
    await store.apply(keysBatch('ks', 'b', 2));
    assert.equal(fenceWarnings(lines).length, 1);
    assert.equal(fenceWarnings(lines)[0]!.fields?.size, 30);
    assert.equal(await store.checkRankIndex('ks'), true);
    await store.close();

    store = await open(dir, lines);
    await store.apply(keysBatch('ks', 'c', 2));
    assert.equal(fenceWarnings(lines).length, 1, 'rebuilt fences were persisted: no warning on the next open');
    assert.equal(await store.checkRankIndex('ks'), true);
    assert.equal(await store.size('ks'), 34);
  });
});
