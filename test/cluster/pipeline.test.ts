// The writer in cluster mode (docs/cluster.md, "Write path"): up to three
// group commits in flight, each answered once its own replicate and fdatasync
// are done and every earlier one is answered. The real writer on a real data
// directory, with a `replicate` the test settles by hand (the publish to
// JetStream in production).

import assert from 'node:assert/strict';
import { startWriter } from '../../lib/roles/writer.js';
import { RawClient, frame, readPool, removeDir, tempDataDir } from '../roles/writer-helpers.js';

/** A replicate whose calls wait until the test settles them. */
function heldReplicate() {
  const calls: Array<{ count: number; resolve: () => void; reject: (err: Error) => void }> = [];
  const waiters: Array<() => void> = [];
  const replicate = (_entries: Buffer, count: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      calls.push({ count, resolve, reject });
      for (const w of waiters.splice(0)) w();
    });
  const calledTimes = async (n: number): Promise<void> => {
    while (calls.length < n) await new Promise<void>((r) => waiters.push(r));
  };
  return { calls, replicate, calledTimes };
}

describe('cluster writer: group commits in flight together', function () {
  this.timeout(30_000);

  it('takes a second and a third group commit while the first is unacknowledged, and answers each once it and those before it are done', async () => {
    const { root, dataDir } = await tempDataDir();
    const held = heldReplicate();
    const writer = await startWriter({ dataDir, port: 0, replicate: held.replicate });
    try {
      const [a, b, c] = await Promise.all([RawClient.connect(writer.port), RawClient.connect(writer.port), RawClient.connect(writer.port)]);
      a!.send(frame(1n, 'ks', 'a'));
      await held.calledTimes(1);
      b!.send(frame(2n, 'ks', 'b'));
      await held.calledTimes(2);
      c!.send(frame(3n, 'ks', 'c'));
      await held.calledTimes(3);
      // The later ones acknowledged first: their WINs wait for the first.
      held.calls[2]!.resolve();
      held.calls[1]!.resolve();
      held.calls[0]!.resolve();
      await Promise.all([a!.replyCount(1), b!.replyCount(1), c!.replyCount(1)]);
      assert.deepEqual([a!.codes(), b!.codes(), c!.codes()], [['WIN'], ['WIN'], ['WIN']]);
      for (const x of [a, b, c]) x!.socket.destroy();
    } finally {
      await writer.close();
    }
    assert.deepEqual((await readPool(dataDir)).map((e) => e.increment), [1n, 2n, 3n]);
    await removeDir(root);
  });

  it('a failed group commit leaves its connections\' frames unanswered, those in later group commits acknowledged meanwhile too; other connections go on', async () => {
    const { root, dataDir } = await tempDataDir();
    const held = heldReplicate();
    const writer = await startWriter({ dataDir, port: 0, replicate: held.replicate });
    try {
      const [d, b] = await Promise.all([RawClient.connect(writer.port), RawClient.connect(writer.port)]);
      d!.send(frame(1n, 'ks', 'd'));
      await held.calledTimes(1);
      d!.send(frame(2n, 'ks', 'd'));
      await held.calledTimes(2);
      b!.send(frame(5n, 'ks', 'b'));
      await held.calledTimes(3);
      held.calls[1]!.resolve();
      held.calls[2]!.resolve();
      held.calls[0]!.reject(new Error('JetStream did not acknowledge'));
      await d!.waitClosed();
      assert.equal(d!.replies, '', 'no WIN and no ERR for either frame: the first may be stored, and the second must not be acknowledged after it');
      await b!.replyCount(1);
      assert.deepEqual(b!.codes(), ['WIN']);
      b!.socket.destroy();
    } finally {
      await writer.close();
    }
    await removeDir(root);
  });
});
