// The count and rank in a write's reply (FLAG_RESULT, docs/write-protocol-extensions.md
// "Count and rank in the reply") on the real daemon: Client#incrementResult
// and `countd write --visible` answer what a read answers once the write is
// applied, a producer's retried write included; raw frames get the 40-byte
// reply (24 bytes for a malformed one); and a write made while the store
// process is killed -9 is answered with its count and rank once the store
// is back, by the writer itself.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { DEFAULT_FIELD_SIZES } from '../../lib/protocol/fields.js';
import { REPLY2_RESULT_SIZE, REPLY2_SIZE, Reply2, ResultState, decodeReply2, decodeReplyResult, encodeHello, encodeOpFrame } from '../../lib/protocol/write-ops.js';
import { countd } from '../cli/helpers.js';
import { DaemonRunner, killAllDaemons, waitUntil } from '../harness/daemon.js';
import { freePort } from '../harness/idem-loop.js';
import { RawClient } from '../roles/writer-helpers.js';

const sizes = DEFAULT_FIELD_SIZES;

describe('count and rank in the reply of a write (real daemon)', function () {
  this.timeout(60_000);
  let root = '';
  let n = 0;
  const dir = (): string => path.join(root, `d${n++}`);

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-result-'));
  });
  after(async () => {
    await killAllDaemons();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  it('incrementResult and countd write --visible answer the count and rank a read answers', async () => {
    const ports = { write: await freePort(), read: await freePort() };
    const d = new DaemonRunner(dir(), [], ports);
    await d.start();
    const c = new Client({ writePort: ports.write, readPort: ports.read });
    const p = new Client({ writePort: ports.write, readPort: ports.read, producer: { id: 5n, epoch: 1 } });
    try {
      await c.increment('board', 'a', 50);
      await c.increment('board', 'b', 30);
      const r = await c.incrementResult('board', 'c', 40);
      assert.deepEqual({ count: r.count, rank: r.rank }, { count: 40n, rank: 1n });
      const read = await c.rank('board', 'c', { after: r.token });
      assert.deepEqual({ count: read?.count, rank: read?.rank }, { count: 40n, rank: 1n });
      const up = await c.incrementResult('board', 'b', 25);
      assert.deepEqual({ count: up.count, rank: up.rank }, { count: 55n, rank: 0n });
      // An increment of 0 on a missing key creates nothing: no count, no rank.
      const none = await c.incrementResult('board', 'nobody', 0);
      assert.deepEqual({ count: none.count, rank: none.rank }, { count: undefined, rank: undefined });
      // A producer's write, then its retry: the duplicate is answered with the count and rank too.
      const first = await p.incrementResult('board', 'd', 7, { sequence: 3 });
      const again = await p.incrementResult('board', 'd', 7, { sequence: 3 });
      assert.equal(first.duplicate, false);
      assert.equal(again.duplicate, true);
      assert.deepEqual([first.count, again.count, again.rank], [7n, 7n, 3n]);
      const cli = await countd(d.dataDir, 'write', 'board', 'a', '10', '--visible');
      assert.equal(cli.code, 0, cli.stderr);
      assert.equal(cli.stdout, '0\ta\t60\n');
      assert.equal((await countd(d.dataDir, 'rank', 'board', 'a')).stdout, '0\ta\t60\n');
    } finally {
      await c.close();
      await p.close();
      await d.stop();
    }
  });

  it('raw frames: 40-byte replies in frame order, a malformed flagged frame answered the 24-byte BAD', async () => {
    const ports = { write: await freePort(), read: await freePort() };
    const d = new DaemonRunner(dir(), [], ports);
    await d.start();
    const raw = await RawClient.connect(ports.write);
    try {
      raw.send(encodeHello(sizes, 2));
      await raw.until(() => raw.replies.length >= 3, 'the hello reply');
      // A set asking for the result, then a plain increment whose reply waits behind it.
      raw.send(Buffer.concat([encodeOpFrame('set', 9, 'ks', 'x', sizes, { result: true }), encodeOpFrame('increment', 1, 'ks', 'y', sizes)]));
      await raw.until(() => raw.replies.length >= 3 + REPLY2_RESULT_SIZE + REPLY2_SIZE, 'two replies');
      raw.send(encodeOpFrame('increment', 2, 'ks', 'x', sizes, { result: true }));
      const want = 3 + REPLY2_RESULT_SIZE + REPLY2_SIZE + REPLY2_RESULT_SIZE;
      await raw.until(() => raw.replies.length >= want, 'three replies');
      const bytes = Buffer.from(raw.replies, 'latin1');
      const a = decodeReplyResult(bytes, 3);
      const b = decodeReply2(bytes, 3 + REPLY2_RESULT_SIZE);
      const c = decodeReplyResult(bytes, 3 + REPLY2_RESULT_SIZE + REPLY2_SIZE);
      assert.deepEqual([a?.status, a?.state, a?.count, a?.rank], [Reply2.win, ResultState.found, 9n, 0n]);
      assert.equal(b?.status, Reply2.win);
      assert.deepEqual([c?.status, c?.state, c?.count, c?.rank], [Reply2.win, ResultState.found, 11n, 0n]);
      assert.ok(c!.token > a!.token);
      // Flag 0x02 on a delete is malformed: BAD in 24 bytes, then the connection closes.
      const del = encodeOpFrame('deleteKey', 0, 'ks', 'x', sizes);
      del[1] = 0x02;
      raw.send(del);
      await raw.until(() => raw.closed, 'the close after BAD');
      assert.equal(raw.replies.length, want + REPLY2_SIZE);
      assert.equal(decodeReply2(Buffer.from(raw.replies, 'latin1'), want)?.status, Reply2.bad);
    } finally {
      raw.socket.destroy();
      await d.stop();
    }
  });

  it('a write made while the store process is killed -9 is answered by the writer with its count and rank once the store is back', async () => {
    const ports = { write: await freePort(), read: await freePort() };
    const d = new DaemonRunner(dir(), [], ports);
    await d.start();
    const c = new Client({ writePort: ports.write, readPort: ports.read });
    const raw = await RawClient.connect(ports.write);
    try {
      await c.increment('ks', 'k', 100, { visible: true });
      raw.send(encodeHello(sizes, 2));
      await raw.until(() => raw.replies.length >= 3, 'the hello reply');
      const pids = await d.pids();
      await d.kill('store');
      // The writer makes it durable at once; its count and rank wait for the new store process.
      raw.send(encodeOpFrame('increment', 5, 'ks', 'k', sizes, { result: true }));
      await d.waitForChild('store', pids.store);
      await raw.until(() => raw.replies.length >= 3 + REPLY2_RESULT_SIZE, 'the reply with a result', 30_000);
      const r = decodeReplyResult(Buffer.from(raw.replies, 'latin1'), 3);
      assert.deepEqual([r?.status, r?.state, r?.count, r?.rank], [Reply2.win, ResultState.found, 105n, 0n]);
      await waitUntil('the new read port', () => c.health().catch(() => undefined), 20_000, 50);
      assert.equal(await c.get('ks', 'k', { after: r!.token }), 105n);
      // And through the client, right after another kill -9.
      const again = await d.pids();
      await d.kill('store');
      const res = await c.incrementResult('ks', 'k', 1, { timeoutMs: 30_000 });
      assert.deepEqual([res.count, res.rank], [106n, 0n]);
      await d.waitForChild('store', again.store);
      assert.equal(await c.get('ks', 'k', { after: res.token, timeoutMs: 20_000 }), 106n);
    } finally {
      raw.socket.destroy();
      await c.close();
      await d.stop();
    }
  });
});
