// The extended write protocol on countd-write (docs/write-protocol-extensions.md):
// a hello switches a connection to op frames; sets and deletes are logged as
// OPS records in the order the frames came, increments of the same batch
// with them; a plain connection is unchanged next to it.

import assert from 'node:assert/strict';
import { OP_DELETE_KEY, OP_DELETE_KEYSPACE, OP_INCREMENT, OP_SET, RECORD_BATCH, RECORD_OPS, decodeOps } from '../../lib/commitlog/format.js';
import { GroupCommit } from '../../lib/roles/write/group-commit.js';
import { recordingLogger } from '../store/helpers.js';
import { startWriter } from '../../lib/roles/writer.js';
import { encodeHello, encodeOpFrame, opFrameSize } from '../../lib/protocol/write-ops.js';
import { RawClient, SMALL, frame, readPool, removeDir, tempDataDir } from './writer-helpers.js';

describe('countd-write: the extended write protocol', function () {
  this.timeout(20_000);

  it('answers a hello "EX" + version, then logs op frames in order, increments of a plain connection alongside', async () => {
    const { root, dataDir } = await tempDataDir();
    const writer = await startWriter({ dataDir, port: 0 });
    try {
      const plain = await RawClient.connect(writer.port);
      const ext = await RawClient.connect(writer.port);
      // A plain frame before the hello is a plain frame; the hello waits for its WIN.
      ext.send(Buffer.concat([frame(2, 'a', 'x'), encodeHello(SMALL, 7)]));
      await ext.replyCount(2);
      assert.equal(ext.replies, 'WIN' + 'EX\x01');
      ext.send(
        Buffer.concat([
          encodeOpFrame('increment', 5, 'a', 'x', SMALL),
          encodeOpFrame('set', 100, 'a', 'x', SMALL),
          encodeOpFrame('increment', 0, 'a', 'z', SMALL),
          encodeOpFrame('deleteKey', 0, 'a', 'y', SMALL),
          encodeOpFrame('deleteKeyspace', 0, 'b', null, SMALL),
          encodeOpFrame('increment', -1, 'a', 'x', SMALL),
        ]),
      );
      plain.send(frame(3, 'p', 'q'));
      await ext.replyCount(8);
      await plain.replyCount(1);
      assert.equal(ext.replies, 'WIN' + 'EX\x01' + 'WIN'.repeat(6));
      assert.equal(plain.replies, 'WIN');
    } finally {
      await writer.close();
    }
    const logged = (await readPool(dataDir)).filter((e) => e.keyspace !== 'p');
    // The increment of 0 takes no entry; everything else in frame order.
    assert.deepEqual(
      logged.map((e) => [e.op ?? OP_INCREMENT, e.increment, e.keyspace, e.key]),
      [
        [OP_INCREMENT, 2n, 'a', 'x'],
        [OP_INCREMENT, 5n, 'a', 'x'],
        [OP_SET, 100n, 'a', 'x'],
        [OP_DELETE_KEY, 0n, 'a', 'y'],
        [OP_DELETE_KEYSPACE, 0n, 'b', ''],
        [OP_INCREMENT, -1n, 'a', 'x'],
      ],
    );
    await removeDir(root);
  });

  const malformed: Array<[string, (f: Buffer) => void]> = [
    ['an unknown op', (f) => (f[0] = 9)],
    ['op 0', (f) => (f[0] = 0)],
    ['a flag', (f) => (f[1] = 1)],
    ['a producer id (reserved)', (f) => (f[16] = 1)],
    ['an epoch (reserved)', (f) => (f[24] = 1)],
    ['a sequence number (reserved)', (f) => (f[32] = 1)],
    ['an ack token (reserved)', (f) => (f[40] = 1)],
    ['a value on a key delete', (f) => ((f[0] = 3), (f[8] = 1))],
    ['a key on a keyspace delete', (f) => (f[0] = 4)],
    ['an empty keyspace field', (f) => f.fill(0, 48, 48 + SMALL.keyspaceSize)],
    ['a create whose tie rule is 2', (f) => ((f[0] = 5), (f[8] = 1), f.fill(0, 48 + SMALL.keyspaceSize), (f[48 + SMALL.keyspaceSize] = 2))],
    ['a create with a reserved settings byte set', (f) => ((f[0] = 5), (f[8] = 1), f.fill(0, 48 + SMALL.keyspaceSize), (f[48 + SMALL.keyspaceSize + 1] = 1))],
  ];
  for (const [what, damage] of malformed) {
    it(`answers BAD to an op frame with ${what}, after the WINs of the frames before it, and closes`, async () => {
      const { root, dataDir } = await tempDataDir();
      const writer = await startWriter({ dataDir, port: 0 });
      try {
        const c = await RawClient.connect(writer.port);
        const bad = encodeOpFrame('set', 0, 'a', 'k', SMALL);
        damage(bad);
        assert.equal(bad.length, opFrameSize(SMALL));
        c.send(Buffer.concat([encodeHello(SMALL), encodeOpFrame('set', 4, 'a', 'k', SMALL), bad, encodeOpFrame('set', 5, 'a', 'k', SMALL)]));
        await c.waitClosed();
        assert.equal(c.replies, 'EX\x01' + 'WIN' + 'BAD');
      } finally {
        await writer.close();
      }
      assert.deepEqual((await readPool(dataDir)).map((e) => e.increment), [4n]);
      await removeDir(root);
    });
  }

  it('a frame of zeros but a version of 0 is no hello: BAD, as in the plain protocol', async () => {
    const { root, dataDir } = await tempDataDir();
    const writer = await startWriter({ dataDir, port: 0 });
    try {
      const c = await RawClient.connect(writer.port);
      c.send(encodeHello(SMALL, 0));
      await c.waitClosed();
      assert.equal(c.replies, 'BAD');
    } finally {
      await writer.close();
      await removeDir(root);
    }
  });

  it('a writer that replicates (cluster mode) answers a hello with version 1 at most and replicates op entries as OPS, in order, plain frames as BATCH', async () => {
    const { root, dataDir } = await tempDataDir();
    const replicated: Array<{ type: number; ops: Array<[number, bigint, string]> }> = [];
    const writer = await startWriter({
      dataDir,
      port: 0,
      replicate: async (entries, _count, type) => {
        replicated.push({ type, ops: type === RECORD_OPS ? decodeOps(entries).map((o) => [o.op, o.value, o.keyspace.toString()]) : [] });
      },
    });
    try {
      const plain = await RawClient.connect(writer.port);
      plain.send(frame(3n, 'ks', 'k'));
      await plain.replyCount(1);
      assert.equal(plain.replies, 'WIN');
      const c = await RawClient.connect(writer.port);
      c.send(encodeHello(SMALL, 2));
      await c.replyCount(1);
      assert.equal(c.replies, 'EX\x01');
      c.send(Buffer.concat([encodeOpFrame('increment', 5, 'a', 'x', SMALL), encodeOpFrame('set', 9, 'a', 'x', SMALL), encodeOpFrame('deleteKeyspace', 0, 'b', null, SMALL)]));
      await c.replyCount(4);
      assert.equal(c.replies, 'EX\x01' + 'WIN'.repeat(3));
    } finally {
      await writer.close();
      await removeDir(root);
    }
    assert.equal(replicated[0]!.type, RECORD_BATCH);
    assert.deepEqual(replicated.slice(1).flatMap((r) => (r.type === RECORD_OPS ? r.ops : [])), [
      [OP_INCREMENT, 5n, 'a'],
      [OP_SET, 9n, 'a'],
      [OP_DELETE_KEYSPACE, 0n, 'b'],
    ]);
  });

  it('a replicate that fails leaves the frames unanswered and closes their connection (the outcome is unknown), though the fdatasync succeeded', async () => {
    const { root, dataDir } = await tempDataDir();
    const writer = await startWriter({ dataDir, port: 0, replicate: async () => Promise.reject(new Error('JetStream did not acknowledge')) });
    try {
      const c = await RawClient.connect(writer.port);
      c.send(Buffer.concat([frame(1n, 'ks', 'k'), frame(2n, 'ks', 'k')]));
      await c.waitClosed();
      assert.equal(c.replies, '', 'no WIN and no ERR: the message may have been stored');
    } finally {
      await writer.close();
    }
    // Logged locally all the same (the fdatasync ran beside the publish).
    assert.deepEqual((await readPool(dataDir)).map((e) => e.increment), [1n, 2n]);
    await removeDir(root);
  });
});

describe('GroupCommit: a set or delete in a batch of plain increments', () => {
  it('turns the batch into one OPS record, the increments before it first, in order', async () => {
    const appended: Array<{ entries: Buffer; count: number; type?: number }> = [];
    const sink = { maxBatchBytes: 4096, append: async (entries: Buffer, count: number, _inline?: boolean, type?: number) => void appended.push({ entries: Buffer.from(entries), count, type }) };
    const gc = new GroupCommit(sink, SMALL, recordingLogger([]));
    const member = { slotFrames: new Int32Array(2), failing: false, waitingRoom: false, awaited: false, durable: (n: number) => n, failed: (n: number) => n, roomAvailable: () => {} };
    const f1 = frame(3, 'a', 'k1');
    const f2 = frame(-4, 'abcdefgh', 'k2');
    assert.equal(gc.add(member, f1, 0, 1, 2), true);
    assert.equal(gc.add(member, f2, 0, 8, 2), true);
    const names = Buffer.from('ak3');
    assert.equal(gc.addOp(member, OP_SET, 9n, names, 0, 1, 1, 2), true);
    assert.equal(gc.add(member, frame(1, 'a', 'k1'), 0, 1, 2), true);
    gc.schedule();
    await gc.whenIdle();
    assert.equal(appended.length, 1);
    assert.equal(appended[0]!.type, RECORD_OPS);
    assert.equal(appended[0]!.count, 4);
    assert.deepEqual(
      decodeOps(appended[0]!.entries).map((o) => [o.op, o.value, o.keyspace.toString(), o.key.toString()]),
      [
        [OP_INCREMENT, 3n, 'a', 'k1'],
        [OP_INCREMENT, -4n, 'abcdefgh', 'k2'],
        [OP_SET, 9n, 'a', 'k3'],
        [OP_INCREMENT, 1n, 'a', 'k1'],
      ],
    );
  });
});
