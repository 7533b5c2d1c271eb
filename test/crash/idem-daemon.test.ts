// Idempotent producers and read-your-writes on the real daemon (issue 16):
// `countd write --producer/--seq` twice applies once; `--visible` exits once
// readable; a crash between "durable" and the reply reaching the client is
// retried as a duplicate; tokens survive kill -9 of the store child (worker
// and reader) and grow across a writer restart; an await past its timeout
// fails clearly; an expired producer leaves the database; the flags are
// checked together.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { isCountdError } from '../../lib/errors.js';
import { REPLY2_SIZE, encodeHello, encodeOpFrame } from '../../lib/protocol/write-ops.js';
import { DEFAULT_FIELD_SIZES } from '../../lib/protocol/fields.js';
import { openDataDir } from '../../lib/datadir/meta.js';
import { countd } from '../cli/helpers.js';
import { DaemonRunner, killAllDaemons, waitUntil } from '../harness/daemon.js';
import { freePort } from '../harness/idem-loop.js';
import { RawClient, readPool } from '../roles/writer-helpers.js';

describe('idempotent producers and tokens on the real daemon', function () {
  this.timeout(60_000);
  let root = '';
  let n = 0;
  const dir = (): string => path.join(root, `d${n++}`);

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-idem-'));
  });
  after(async () => {
    await killAllDaemons();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  it('countd write --producer --seq: a second identical call applies nothing, says so, exits 0; --visible exits once readable', async () => {
    const d = new DaemonRunner(dir());
    await d.start();
    try {
      const first = await countd(d.dataDir, 'write', 'ks', 'k', '5', '--producer', '12', '--seq', '3');
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stderr, '');
      const again = await countd(d.dataDir, 'write', 'ks', 'k', '5', '--producer', '12', '--seq', '3');
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /duplicate: producer 12 epoch 0 sequence 3 was made durable before; nothing applied/);
      const visible = await countd(d.dataDir, 'write', 'ks', 'k', '1', '--producer', '12', '--seq', '4', '--visible');
      assert.equal(visible.code, 0, visible.stderr);
      // Readable as soon as the command exits: 5 once, then 1.
      const got = await countd(d.dataDir, 'get', 'ks', 'k');
      assert.equal(got.stdout, 'k\t6\n');
      const plain = await countd(d.dataDir, 'write', 'ks', 'v', '2', '--visible', '--timeout', '20000');
      assert.equal(plain.code, 0, plain.stderr);
      assert.equal((await countd(d.dataDir, 'get', 'ks', 'v')).stdout, 'v\t2\n');
      const gap = await countd(d.dataDir, 'write', 'ks', 'k', '1', '--producer', '12', '--seq', '9');
      assert.equal(gap.code, 1);
      assert.match(gap.stderr, /sequence out of order: the writer expects 5 next/);
    } finally {
      await d.stop();
    }
  });

  it('checks the write flags together (exit 2, nothing written)', async () => {
    const d = dir();
    for (const [args, why] of [
      [['--seq', '1'], /--seq needs --producer/],
      [['--epoch', '1'], /--epoch needs --producer/],
      [['--producer', '3'], /--producer needs --seq/],
      [['--timeout', '10'], /--timeout needs --visible/],
      [['--producer', '0', '--seq', '1'], /--producer/],
      [['--producer', '1', '--seq', '-1'], /--seq/],
    ] as Array<[string[], RegExp]>) {
      const r = await countd(d, 'write', 'ks', 'k', ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, why);
    }
  });

  it('a crash between durable and the reply reaching the client: the retry is answered duplicate, applied once', async () => {
    const ports = { write: await freePort(), read: await freePort() };
    const d = new DaemonRunner(dir(), ['--handover-ms', '60000'], ports);
    await d.start();
    try {
      const sizes = DEFAULT_FIELD_SIZES;
      const raw = await RawClient.connect(ports.write);
      raw.send(encodeHello(sizes, 2));
      await raw.until(() => raw.replies.length >= 3, 'the hello reply');
      raw.send(encodeOpFrame('increment', 40, 'ks', 'crash', sizes, { producer: { producer: 99n, epoch: 4, sequence: 17n } }));
      // Durable: in the commit log. Whatever the reply did, the writer dies now and the client never reads it.
      const dataDir = await openDataDir(d.dataDir);
      await waitUntil('the frame durable in the commit log', async () => (await readPool(dataDir)).some((e) => e.key === 'crash'), 10_000, 20);
      const before = await d.pids();
      await d.kill('writer');
      raw.destroy();
      await d.waitForChild('writer', before.writer);
      // The client retries the same (producer, epoch, sequence) on a new connection.
      const c = new Client({ writePort: ports.write, readPort: ports.read, producer: { id: 99n, epoch: 4 } });
      try {
        const ack = await c.incrementAck('ks', 'crash', 40, { sequence: 17, visible: true });
        assert.equal(ack.duplicate, true);
        assert.equal(await c.get('ks', 'crash', { after: ack.token }), 40n);
        const next = await c.incrementAck('ks', 'crash', 2, { visible: true });
        assert.equal(next.duplicate, false);
        assert.equal(await c.get('ks', 'crash'), 42n);
      } finally {
        await c.close();
      }
      assert.ok(raw.replies.length <= 3 + REPLY2_SIZE);
    } finally {
      await d.stop();
    }
  });

  it('tokens: a read after a token sees its write across kill -9 of the store child, and grow across a writer restart', async () => {
    const ports = { write: await freePort(), read: await freePort() };
    const d = new DaemonRunner(dir(), ['--handover-ms', '300'], ports);
    await d.start();
    const c = new Client({ writePort: ports.write, readPort: ports.read });
    try {
      const a = await c.incrementAck('ks', 't', 3);
      let pids = await d.pids();
      await d.kill('store');
      await d.waitForChild('store', pids.store);
      // The reader and the worker restarted; the token still orders this read after the write.
      await waitUntil('the new read port', () => c.health().catch(() => undefined), 20_000, 50);
      assert.equal(await c.get('ks', 't', { after: a.token, timeoutMs: 20_000 }), 3n);
      pids = await d.pids();
      await d.kill('writer');
      await d.waitForChild('writer', pids.writer);
      const b = await waitUntil('the restarted writer', () => c.incrementAck('ks', 't', 4).catch(() => undefined), 20_000, 50);
      assert.ok(b.token > a.token, `token after a writer restart ${b.token} > ${a.token}`);
      assert.equal(await c.get('ks', 't', { after: b.token, timeoutMs: 20_000 }), 7n);
      // A token nobody was given: the await times out with a clear error, and the connection stays usable.
      await assert.rejects(c.get('ks', 't', { after: b.token + (1n << 40n), timeoutMs: 100 }), (err: unknown) => isCountdError(err, 'COUNTD_TOKEN_TIMEOUT'));
      assert.equal(await c.get('ks', 't'), 7n);
    } finally {
      await c.close();
      await d.stop();
    }
  });

  it('an idle producer expires: it leaves the database, and its old sequence is then a new write', async () => {
    const ports = { write: await freePort(), read: await freePort() };
    // The expiry must outlast the retry below even on a loaded machine, where
    // a write can take a second to become visible: the retry comes first.
    const d = new DaemonRunner(dir(), ['--producer-expiry', '3000', '--handover-ms', '50'], ports);
    await d.start();
    const c = new Client({ writePort: ports.write, readPort: ports.read, producer: { id: 5n, epoch: 1 } });
    try {
      await c.incrementAck('ks', 'e', 1, { sequence: 0 });
      assert.equal((await c.incrementAck('ks', 'e', 1, { sequence: 0, visible: true })).duplicate, true);
      const listed = async (): Promise<bigint[]> => {
        const { ReadConnection } = await import('../../lib/client/read-connection.js');
        const conn = new ReadConnection({ host: '127.0.0.1', port: ports.read }, DEFAULT_FIELD_SIZES);
        try {
          const res = (await conn.request({ op: 'producers', after: 0n, length: 100 })) as { producers: Array<{ id: bigint }> };
          return res.producers.map((p) => p.id);
        } finally {
          conn.destroy();
        }
      };
      assert.deepEqual(await listed(), [5n]);
      // The worker removes it with an apply after the expiry (another producer's write brings one).
      const other = new Client({ writePort: ports.write, readPort: ports.read, producer: { id: 6n, epoch: 0 } });
      try {
        await waitUntil('producer 5 gone from the database', async () => {
          await other.incrementAck('ks', 'o', 1, { visible: true });
          return !(await listed()).includes(5n);
        }, 20_000, 100);
      } finally {
        await other.close();
      }
      // The writer forgets it too: an older epoch, fenced while it is known (a fenced frame does not refresh it), is then a new producer.
      await waitUntil('producer 5 forgotten by the writer', async () => {
        const probe = new Client({ writePort: ports.write, readPort: ports.read, producer: { id: 5n, epoch: 0 } });
        try {
          await probe.incrementAck('ks', 'probe', 1, { sequence: 0 });
          return true;
        } catch (err) {
          if (!isCountdError(err, 'COUNTD_FENCED')) throw err;
          return false;
        } finally {
          await probe.close();
        }
      }, 20_000, 100);
      // And the first instance's old write, retried now, is a new write: the documented bound of the expiry.
      assert.equal((await c.incrementAck('ks', 'e', 1, { sequence: 0, visible: true })).duplicate, false);
      assert.equal(await c.get('ks', 'e'), 2n);
    } finally {
      await c.close();
      await d.stop();
    }
  });
});
