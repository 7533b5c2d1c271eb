// Partition snapshots without a cluster: the byte format against the worked
// example of docs/cluster-snapshot-format.md and one test per error of its
// reader; the export of a real Store (one partition's keyspaces and marks at
// one point) restored into another real Store that held stale data of that
// partition; the purge switch's version rule.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { purgeAllowed } from '../../lib/cluster/node.js';
import { SETTINGS } from '../../lib/daemon/settings.js';
import { partitionOf, partitionOfStored } from '../../lib/cluster/partition.js';
import { parseWindow } from '../../lib/protocol/window-settings.js';
import { restoreBatch } from '../../lib/cluster/restore.js';
import { decodeSnapshot, encodeSnapshot, type Snapshot } from '../../lib/cluster/snapshot-format.js';
import { isCountdError } from '../../lib/errors.js';
import { clusterPositionMarkName, clusterWriterMarkName, decodeClusterPosition, decodeU64Mark, encodeClusterPosition, encodeU64Mark } from '../../lib/store/marks.js';
import { IncrementBatch, Store, type ExportItem } from '../../lib/store/store.js';

/** The worked example of docs/cluster-snapshot-format.md. */
const EXAMPLE_HEX =
  '4344534e4150010007000000000000002a0000000000000003000000000000000068e5cf8b010000' +
  '030a00000005000000000000007731' +
  '0104000000026b7300' +
  '021400000001610a000000000000000162feffffffffffffff' +
  'ff1400000001000000020000000000000001000000fd7cf903';

async function encode(items: ExportItem[], writers = [{ writer: 'w1', seq: 5 }]): Promise<Buffer> {
  async function* gen() {
    yield* items;
  }
  const parts: Buffer[] = [];
  for await (const b of encodeSnapshot({ partition: 7, position: 42, epoch: 3, takenAt: 1_700_000_000_000 }, writers, gen())) parts.push(b);
  return Buffer.concat(parts);
}

/** The snapshot of partition p of `source` (its keyspaces `select` picks), through the encoder and the decoder. */
async function snapshotOf(source: Store, p: number, select: (name: Buffer) => boolean): Promise<Snapshot> {
  const items: ExportItem[] = [];
  for await (const it of source.exportKeyspaces(select, 'cluster/')) items.push(it);
  async function* rest() {
    yield* items.slice(1);
  }
  const parts: Buffer[] = [];
  for await (const x of encodeSnapshot({ partition: p, position: 10, epoch: 1, takenAt: 1 }, [], rest())) parts.push(x);
  return decodeSnapshot(Buffer.concat(parts));
}

function expectCorrupt(bytes: Buffer, pattern: RegExp): void {
  assert.throws(() => decodeSnapshot(bytes), (err: unknown) => isCountdError(err, 'COUNTD_CORRUPTION') && pattern.test((err as Error).message) && /dropped/.test((err as Error).message));
}

/** `bytes` with its end record's CRC made right again (to reach the checks after it). */
function reseal(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  out.writeUInt32LE(crc32(out.subarray(0, out.length - 4)), out.length - 4);
  return out;
}

const example = (): ExportItem[] => [
  { type: 'keyspace', name: Buffer.from('ks'), settings: undefined },
  { type: 'entries', keys: [Buffer.from('a'), Buffer.from('b')], counts: [10n, -2n] },
];

describe('partition snapshots (format, export, restore)', () => {
  it('encodes the worked example byte for byte and decodes it back', async () => {
    const bytes = await encode(example());
    assert.equal(bytes.toString('hex'), EXAMPLE_HEX);
    const snap = decodeSnapshot(bytes);
    assert.deepEqual(
      { ...snap, keyspaces: snap.keyspaces.map((k) => ({ name: k.name.toString(), settings: k.settings, keys: k.keys.map(String), counts: k.counts })) },
      { partition: 7, position: 42, epoch: 3, takenAt: 1_700_000_000_000, writers: [{ writer: 'w1', seq: 5 }], keyspaces: [{ name: 'ks', settings: undefined, keys: ['a', 'b'], counts: [10n, -2n] }] },
    );
  });

  it('carries a declared keyspace\'s 16-byte settings value and splits long entry runs into records', async () => {
    const settings = Buffer.alloc(16);
    settings[0] = 2;
    const keys = Array.from({ length: 10_000 }, (_, i) => Buffer.from(`key-${i}`));
    const counts = keys.map((_, i) => BigInt(i) - 5000n);
    const snap = decodeSnapshot(await encode([{ type: 'keyspace', name: Buffer.from('max'), settings }, { type: 'entries', keys, counts }, { type: 'keyspace', name: Buffer.from('empty'), settings }], []));
    assert.equal(snap.keyspaces.length, 2);
    assert.deepEqual(snap.keyspaces[0]!.settings, settings);
    assert.deepEqual(snap.keyspaces[0]!.counts, counts);
    assert.deepEqual(snap.keyspaces[0]!.keys.map(String), keys.map(String));
    assert.deepEqual(snap.keyspaces[1]!.keys, []);
  });

  it('reader errors: short, bad magic, other version, truncated, CRC, totals, unknown kind, malformed records, bytes after the end', async () => {
    const good = await encode(example());
    expectCorrupt(good.subarray(0, 20), /shorter than the 40-byte header/);
    expectCorrupt(Buffer.concat([Buffer.from('XDSNAP'), good.subarray(6)]), /bad magic/);
    const v2 = Buffer.from(good);
    v2[6] = 2;
    expectCorrupt(v2, /version 2/);
    expectCorrupt(good.subarray(0, good.length - 25), /truncated|runs past the end/);
    expectCorrupt(good.subarray(0, 40), /truncated at byte 40/);
    const flipped = Buffer.from(good);
    flipped[72] ^= 1; // inside the count of key "a"
    expectCorrupt(flipped, /CRC-32 mismatch/);
    const totals = Buffer.from(good);
    totals[good.length - 20] = 9;
    expectCorrupt(reseal(totals), /totals/);
    const kind = Buffer.from(good);
    kind[40] = 9;
    expectCorrupt(kind, /unknown record kind 9 at byte 40/);
    const badKs = Buffer.from(good);
    badKs[55 + 5 + 3] = 3; // settings length 3 in the keyspace record
    expectCorrupt(badKs, /keyspace record at byte 55 malformed/);
    const noKs = await encode([{ type: 'entries', keys: [Buffer.from('a')], counts: [1n] }]);
    expectCorrupt(noKs, /entries record at byte 55 before any keyspace record/);
    const badEntry = Buffer.from(good);
    badEntry[64 + 5] = 0; // key length 0
    expectCorrupt(badEntry, /entry at byte 69 malformed/);
    const badWriter = Buffer.from(good);
    badWriter.writeUInt32LE(4, 41);
    expectCorrupt(badWriter, /writer record at byte 40 of 4 bytes|malformed|unknown record kind/);
    expectCorrupt(Buffer.concat([good, Buffer.from([0])]), /end record|runs past|truncated/);
  });

  it('a Store export holds one partition\'s keyspaces and marks at one point; a restore replaces what another Store held of that partition, atomically', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-snapshot-'));
    const sizes = { keyspaceSize: 16, keySize: 16 };
    const names = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
    const p = partitionOf(Buffer.from('alpha'));
    const mine = names.filter((n) => partitionOf(Buffer.from(n)) === p);
    const source = await Store.open({ location: path.join(root, 'a'), sizes });
    const target = await Store.open({ location: path.join(root, 'b'), sizes });
    try {
      const b = new IncrementBatch();
      for (const ks of names) for (let i = 0; i < 50; i++) b.add(Buffer.from(ks), Buffer.from(`k${i}`), BigInt(i + 1));
      await source.apply(b, [{ name: clusterPositionMarkName(p), value: encodeClusterPosition(99, 4) }, { name: clusterWriterMarkName(p, 'wA'), value: encodeU64Mark(17) }]);
      // The target holds stale data of the partition (and a keyspace the snapshot does not have), and another partition's.
      const stale = new IncrementBatch();
      stale.add(Buffer.from('alpha'), Buffer.from('old'), 1000n);
      stale.add(Buffer.from('bravo'), Buffer.from('kept'), 7n);
      await target.apply(stale, [{ name: clusterWriterMarkName(p, 'wGap'), value: encodeU64Mark(3) }]);
      const items: ExportItem[] = [];
      for await (const it of source.exportKeyspaces((n) => partitionOf(n) === p, 'cluster/')) items.push(it);
      assert.equal(items[0]!.type, 'marks');
      assert.deepEqual(items.filter((i) => i.type === 'keyspace').map((i) => (i as { name: Buffer }).name.toString()), mine.sort());
      const marks = (items[0] as { marks: Array<{ name: string; value: Buffer }> }).marks;
      const position = decodeClusterPosition(marks.find((m) => m.name === clusterPositionMarkName(p))!.value);
      const writers = marks.filter((m) => m.name.startsWith(`cluster/w/${p}/`)).map((m) => ({ writer: m.name.split('/').at(-1)!, seq: decodeU64Mark(m.value) }));
      async function* rest() {
        yield* items.slice(1);
      }
      const parts: Buffer[] = [];
      for await (const x of encodeSnapshot({ partition: p, position: position.seq, epoch: position.epoch, takenAt: 1 }, writers, rest())) parts.push(x);
      const snap: Snapshot = decodeSnapshot(Buffer.concat(parts));
      const { batch, marks: restoreMarks } = await restoreBatch(target, snap, 9, ['wGap']);
      await target.apply(batch, restoreMarks);
      for (const ks of mine) assert.deepEqual(await target.page(ks, 0, 100), await source.page(ks, 0, 100), ks);
      assert.equal(await target.get('alpha', 'old'), undefined, 'stale key of the partition gone');
      if (!mine.includes('bravo')) assert.equal(await target.get('bravo', 'kept'), 7n, 'other partitions untouched');
      assert.deepEqual(decodeClusterPosition(await target.getMark(clusterPositionMarkName(p))), { seq: 99, epoch: 9 });
      assert.equal(decodeU64Mark(await target.getMark(clusterWriterMarkName(p, 'wA'))), 17);
      assert.equal(decodeU64Mark(await target.getMark(clusterWriterMarkName(p, 'wGap'))), 0);
    } finally {
      await source.close();
      await target.close();
      await fsp.rm(root, { recursive: true, force: true });
    }
  });

  it('a restore keeps a keyspace\'s tie rule and operator, and the ties of a --ties first keyspace rank as in the source', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-snapshot-ties-'));
    const sizes = { keyspaceSize: 16, keySize: 16 };
    const source = await Store.open({ location: path.join(root, 'a'), sizes });
    const target = await Store.open({ location: path.join(root, 'b'), sizes });
    try {
      const ks = Buffer.from('race');
      const p = partitionOf(ks);
      const create = new IncrementBatch(source.operators());
      create.createKeyspace(ks, 2, 1); // max, ties first
      await source.apply(create);
      // z, then m, then a reach 5 (key order would rank them a, m, z); b stays at 9, c at 1.
      for (const [key, n] of [['b', 9n], ['z', 5n], ['m', 5n], ['c', 1n], ['a', 5n], ['z', 3n]] as Array<[string, bigint]>) {
        const one = new IncrementBatch(source.operators());
        one.add(ks, Buffer.from(key), n);
        await source.apply(one);
      }
      const ranked = async (s: Store) => (await s.page(ks, 0, 10)).map((e) => `${e.key.toString()}=${e.count}`);
      assert.deepEqual(await ranked(source), ['b=9', 'z=5', 'm=5', 'a=5', 'c=1']);
      const { batch, marks } = await restoreBatch(target, await snapshotOf(source, p, (n) => partitionOf(n) === p), 2);
      await target.apply(batch, marks);
      assert.deepEqual(await ranked(target), ['b=9', 'z=5', 'm=5', 'a=5', 'c=1']);
      assert.deepEqual((await target.keyspaceSettings()).filter((x) => x.name.equals(ks)).map((x) => [x.settings[0], x.settings[1]]), [[2, 1]]);
      // Applies after the restore come later: a key reaching 5 now ranks after the restored ones; max still combines.
      const after = new IncrementBatch(target.operators());
      after.add(ks, Buffer.from('0'), 5n);
      after.add(ks, Buffer.from('c'), 2n);
      await target.apply(after);
      assert.deepEqual(await ranked(target), ['b=9', 'z=5', 'm=5', 'a=5', '0=5', 'c=2']);
    } finally {
      await source.close();
      await target.close();
      await fsp.rm(root, { recursive: true, force: true });
    }
  });

  it('a windowed keyspace and its periods are in its partition\'s snapshot; a restore brings its window and every period it holds', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-snapshot-window-'));
    const sizes = { keyspaceSize: 16, keySize: 16 };
    const source = await Store.open({ location: path.join(root, 'a'), sizes });
    const target = await Store.open({ location: path.join(root, 'b'), sizes });
    try {
      const ks = Buffer.from('laps');
      const p = partitionOf(ks);
      const window = parseWindow('300d', 3);
      const b = new IncrementBatch(source.operators(), source.windows());
      b.createKeyspace(ks, 1, 0, window);
      const now = Date.now();
      for (const [ago, key, n] of [[0, 'ann', 4n], [0, 'bob', 9n], [1, 'ann', 30n], [2, 'cat', 1n]] as Array<[number, string, bigint]>) {
        b.writtenAt = now - ago * 300 * 86_400_000;
        b.add(ks, Buffer.from(key), n);
      }
      await source.apply(b);
      const snap = await snapshotOf(source, p, (n) => partitionOfStored(n) === p);
      // The periods' stored names hash elsewhere: picked by their keyspace's partition.
      assert.equal(snap.keyspaces.length, 4);
      const { batch, marks } = await restoreBatch(target, snap, 2);
      await target.apply(batch, marks);
      for (const ago of [0, 1, 2]) assert.deepEqual(await target.page(ks, 0, 10, { ago, now }), await source.page(ks, 0, 10, { ago, now }), `--ago ${ago}`);
      assert.deepEqual((await target.page(ks, 0, 10, { ago: 1, now })).map((e) => e.count), [30n]);
      assert.deepEqual(target.declaredKeyspaces().map((d) => d.window), [window]);
    } finally {
      await source.close();
      await target.close();
      await fsp.rm(root, { recursive: true, force: true });
    }
  });

  it('a restore refuses a settings value it cannot decode (an unknown operator) with COUNTD_CORRUPTION, building nothing', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-snapshot-bad-'));
    const target = await Store.open({ location: path.join(root, 'b'), sizes: { keyspaceSize: 16, keySize: 16 } });
    try {
      const settings = Buffer.alloc(16);
      settings[0] = 9;
      const snap: Snapshot = { partition: 3, position: 5, epoch: 1, takenAt: 1, writers: [], keyspaces: [{ name: Buffer.from('ks'), settings, keys: [], counts: [] }] };
      await assert.rejects(restoreBatch(target, snap, 2), (err: unknown) => isCountdError(err, 'COUNTD_CORRUPTION') && /keyspace ks has a settings value .*09000000/.test((err as Error).message));
    } finally {
      await target.close();
      await fsp.rm(root, { recursive: true, force: true });
    }
  });

  it('purges on nats-server 2.10 and later unless told otherwise; 2.9 only when forced', () => {
    // The default of `countd start --nats-purge` (0.7.0 had never).
    assert.equal(SETTINGS.natsPurge.fallback(), 'auto');
    assert.equal((SETTINGS.natsPurge.option as { default?: string }).default, 'auto');
    assert.equal(purgeAllowed('auto', '2.9.10'), false);
    assert.equal(purgeAllowed('auto', '2.10.0'), true);
    assert.equal(purgeAllowed('auto', '2.11.4'), true);
    assert.equal(purgeAllowed('auto', '3.0.0'), true);
    assert.equal(purgeAllowed('always', '2.9.10'), true);
    assert.equal(purgeAllowed('never', '2.11.4'), false);
  });
});
