// The background clear of a deleted keyspace (lib/store/collect.ts): once
// its records are cleared, a range whose files still hold compactMinBytes or
// more is compacted, so the deleted records give their disk space back and
// no tombstone of them is left for a scan to walk; a range below it is left
// to LevelDB. The rank index of the keyspaces around it stays exact.

import assert from 'node:assert/strict';
import { TAG_COUNT, TAG_DEAD, TAG_FENCE, TAG_INDEX, idPrefix, prefixEnd } from '../../lib/store/encoding.js';
import { DEFAULT_CLEAR_PACE, type ClearPace } from '../../lib/store/collect.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import type { ClassicLevel } from 'classic-level';
import { removeDir, tempDir } from './helpers.js';

type StateView = { db: ClassicLevel<Buffer, Buffer>; collecting: Promise<void>; clearPace: Omit<ClearPace, 'stopped'>; dir: Map<string, { id: number }> };
const sizes = { keyspaceSize: 16, keySize: 32 };
const KEYS = 20_000;

/** Bytes LevelDB's files hold in keyspace id's count and index ranges (approximateSize; its fences are a few KiB). */
async function filesOf(state: StateView, id: number): Promise<number> {
  let bytes = 0;
  for (const tag of [TAG_COUNT, TAG_INDEX]) bytes += await state.db.approximateSize(idPrefix(tag, id), prefixEnd(idPrefix(tag, id)));
  return bytes;
}

/** Records of id left (C, I, F) and whether its X record is, read through LevelDB. */
async function recordsOf(state: StateView, id: number): Promise<{ records: number; dead: boolean }> {
  let records = 0;
  for (const tag of [TAG_COUNT, TAG_INDEX, TAG_FENCE]) records += (await state.db.keys({ gte: idPrefix(tag, id), lt: prefixEnd(idPrefix(tag, id)) }).all()).length;
  return { records, dead: (await state.db.get(idPrefix(TAG_DEAD, id))) !== undefined };
}

/**
 * A store with `before` (300 keys), `victim` (KEYS keys) and `after`, in that
 * id order, reopened so that every record is in LevelDB's files; the victim
 * is then deleted with `pace` and its clear awaited. Returns the store, the
 * victim's id and the bytes its files held before the delete.
 */
async function deleteVictim(location: string, pace: Partial<Omit<ClearPace, 'stopped'>>): Promise<{ store: Store; state: StateView; id: number; held: number }> {
  let store = await Store.open({ location, sizes, rankFenceSize: 16 });
  const fill = (ks: string, n: number): IncrementBatch => {
    const batch = new IncrementBatch();
    for (let i = 0; i < n; i++) batch.add(Buffer.from(ks), Buffer.from(`${ks}-key-${String(i).padStart(8, '0')}`), BigInt(1 + (i % 97)));
    return batch;
  };
  await store.apply(fill('before', 300));
  await store.apply(fill('victim', KEYS));
  await store.apply(fill('after', 300));
  await store.close();
  store = await Store.open({ location, sizes, rankFenceSize: 16 });
  const state = (store as unknown as { state: StateView }).state;
  const id = state.dir.get('victim')!.id;
  const held = await filesOf(state, id);
  state.clearPace = { ...DEFAULT_CLEAR_PACE, sliceKeys: 1024, duty: 1, ...pace };
  const drop = new IncrementBatch();
  drop.deleteKeyspace(Buffer.from('victim'));
  await store.apply(drop);
  await state.collecting;
  return { store, state, id, held };
}

describe('Store: the clear of a deleted keyspace', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  it('compacts a cleared range that still holds compactMinBytes of files: the deleted records give their space back', async () => {
    const location = tempDir();
    dirs.push(location);
    const { store, state, id, held } = await deleteVictim(location, { compactMinBytes: 64 * 1024 });
    try {
      assert.ok(held >= 2 * 64 * 1024, `the victim's files held ${held} bytes`);
      assert.deepEqual(await recordsOf(state, id), { records: 0, dead: false });
      assert.equal(await filesOf(state, id), 0);
      // The keyspaces on either side are whole, in exact rank order.
      for (const ks of ['before', 'after']) {
        assert.equal((await store.page(ks, 0, 1000)).length, 300);
        assert.equal(await store.checkRankIndex(ks), true);
      }
      assert.deepEqual((await store.keyspaces()).map((k) => k.name.toString()), ['after', 'before']);
    } finally {
      await store.close();
    }
  });

  it('leaves a range below compactMinBytes to LevelDB: its records are gone, their files are not yet', async () => {
    const location = tempDir();
    dirs.push(location);
    const { store, state, id, held } = await deleteVictim(location, { compactMinBytes: Infinity });
    try {
      assert.deepEqual(await recordsOf(state, id), { records: 0, dead: false });
      // Nothing compacted the range: its files hold what they held (tombstones are in the memtable).
      assert.equal(await filesOf(state, id), held);
      assert.equal(await store.checkRankIndex('before'), true);
    } finally {
      await store.close();
    }
  });
});
