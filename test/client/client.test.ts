// The client library: against a real daemon (bin/countd start) for the happy
// paths, and against scripted fake servers for BAD, ERR and lost connections.

import assert from 'node:assert/strict';
import net from 'node:net';
import { Client } from '../../lib/client/client.js';
import { openDataDir } from '../../lib/datadir/meta.js';
import { ErrorCodes, isCountdError } from '../../lib/errors.js';
import { DEFAULT_FIELD_SIZES, writeFrameSize } from '../../lib/protocol/fields.js';
import { Daemon, killAll, removeDir, startDaemon, tempDir, waitFor } from '../cli/helpers.js';

const isCode = (code: string) => (err: unknown) => isCountdError(err) && err.code === code;

/** A fake write server: `reply(frameNumber, connectionNumber)` returns the 3 reply bytes, or 'drop' to destroy the socket. */
async function fakeWriteServer(reply: (frame: number, conn: number) => string | 'drop' | 'hold'): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  const size = writeFrameSize(DEFAULT_FIELD_SIZES);
  let conns = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    const conn = ++conns;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffered = 0;
    let frames = 0;
    socket.on('data', (d: Buffer) => {
      buffered += d.length;
      while (buffered >= size) {
        buffered -= size;
        const r = reply(frames++, conn);
        if (r === 'drop') {
          socket.destroy();
          return;
        }
        if (r === 'hold') continue;
        socket.write(r);
        if (r !== 'WIN') {
          socket.end();
          return;
        }
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => conns,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('Client', function () {
  this.timeout(40_000);

  describe('against a running daemon', () => {
    let dir: string;
    let daemon: Daemon;
    let client: Client;

    before(async () => {
      dir = await tempDir('client');
      ({ daemon } = await startDaemon(dir));
      client = await Client.connect({ dataDir: dir });
    });

    after(async () => {
      await client?.close();
      await daemon?.stop();
      await killAll();
      await removeDir(dir);
    });

    it('pipelines 10,000 concurrent increments on one connection; all are applied', async () => {
      const calls: Promise<void>[] = [];
      for (let i = 0; i < 10_000; i++) calls.push(client.increment('pipe', `k${i % 100}`, 1));
      await Promise.all(calls);
      const total = await waitFor('every increment applied', async () => {
        let sum = 0n;
        let keys = 0;
        for await (const e of client.dump('pipe', { pageSize: 7 })) {
          sum += e.count;
          keys++;
        }
        return sum === 10_000n && keys === 100 ? sum : undefined;
      });
      assert.equal(total, 10_000n);
      const page = await client.page('pipe', 0, 3);
      assert.deepEqual(
        page.map((e) => e.count),
        [100n, 100n, 100n],
      );
      // Equal counts rank by key bytes ascending.
      assert.deepEqual(
        page.map((e) => e.key.toString()),
        ['k0', 'k1', 'k10'],
      );
    });

    it('keeps counts exact past 2^53 and names as bytes; get, rank, around, keyspaces', async () => {
      const key = Buffer.from([0x80, 0xff, 0x41]);
      await client.increment('exact', key, 2n ** 60n + 1n);
      await client.increment('exact', 'small', -5);
      await client.increment('exact', 'mid', 0x7fn);
      const got = await waitFor('the increments to be applied', async () => ((await client.get('exact', 'small')) === -5n ? true : undefined));
      assert.equal(got, true);
      assert.equal(await client.get('exact', key), 2n ** 60n + 1n);
      assert.equal(await client.get('exact', 'nope'), undefined);
      assert.deepEqual(await client.rank('exact', 'small'), { rank: 2n, key: Buffer.from('small'), count: -5n });
      assert.equal(await client.rank('exact', 'nope'), undefined);
      const around = await client.around('exact', 'mid', 3);
      assert.deepEqual(
        around.map((e) => [e.rank, e.key.toString('latin1'), e.count]),
        [
          [0n, key.toString('latin1'), 2n ** 60n + 1n],
          [1n, 'mid', 0x7fn],
          [2n, 'small', -5n],
        ],
      );
      const ks = await client.keyspaces();
      assert.deepEqual(
        ks.map((k) => [k.name.toString(), k.size]),
        [
          ['exact', 3n],
          ['pipe', 100n],
        ],
      );
    });

    it('rejects invalid arguments with COUNTD_INVALID_ARGUMENT before sending anything', async () => {
      const bad: Array<[string, () => Promise<unknown>]> = [
        ['empty keyspace', () => client.increment('', 'k')],
        ['empty key', () => client.increment('ks', '')],
        ['NUL in a key', () => client.increment('ks', 'a\0b')],
        ['key above the field size', () => client.increment('ks', 'x'.repeat(257))],
        ['fractional increment', () => client.increment('ks', 'k', 1.5)],
        ['increment past 64 bits', () => client.increment('ks', 'k', 2n ** 63n)],
        ['unsafe number', () => client.increment('ks', 'k', 2 ** 60)],
        ['negative offset', () => client.page('ks', -1, 10)],
        ['key of a number', () => client.get('ks', 5 as unknown as string)],
        ['unknown tie rule', () => client.createKeyspace('ks', { ties: 'last' as 'first' })],
        ['count min past 64 bits', () => client.count('ks', { min: 2n ** 63n })],
        ['count min fractional', () => client.count('ks', { min: 1.5 })],
        ['dense rank of an empty key', () => client.denseRank('ks', '')],
      ];
      for (const [name, call] of bad) await assert.rejects(call(), isCode(ErrorCodes.INVALID_ARGUMENT), name);
      // The connection is still good.
      await client.increment('ks', 'k');
    });

    it('a page above the server limit rejects with COUNTD_PAGE_TOO_LARGE; the connection stays usable', async () => {
      await assert.rejects(client.page('pipe', 0, 10_001), isCode(ErrorCodes.PAGE_TOO_LARGE));
      assert.equal((await client.page('pipe', 0, 1)).length, 1);
    });

    it('a closed client rejects calls with COUNTD_CLOSED', async () => {
      const c = new Client({ dataDir: dir });
      await c.increment('ks', 'k');
      await c.close();
      await assert.rejects(c.increment('ks', 'k'), isCode(ErrorCodes.CLOSED));
    });
  });

  describe('without a daemon', () => {
    it("is the package's entry point: import { Client } from 'countd'", async () => {
      const pkg = (await import('countd' as string)) as Record<string, unknown>;
      assert.equal(pkg.Client, Client);
      assert.equal((pkg.ErrorCodes as Record<string, string>).CONNECTION, 'COUNTD_CONNECTION');
      assert.equal(typeof pkg.CountdError, 'function');
    });

    it('a data directory without a running daemon rejects with COUNTD_NOT_RUNNING', async () => {
      const dir = await tempDir('client');
      try {
        await assert.rejects(Client.connect({ dataDir: dir }), isCode(ErrorCodes.NO_DATA_DIR));
        await openDataDir(dir);
        await assert.rejects(Client.connect({ dataDir: dir }), isCode(ErrorCodes.NOT_RUNNING));
        await assert.rejects(Client.connect({ dataDir: dir, keySize: 8 }), isCode(ErrorCodes.DATA_DIR_MISMATCH));
      } finally {
        await removeDir(dir);
      }
    });

    it('a refused connection rejects with COUNTD_CONNECTION', async () => {
      const server = await fakeWriteServer(() => 'WIN');
      await server.close(); // the port is now closed
      const c = new Client({ writePort: server.port });
      await assert.rejects(c.increment('ks', 'k'), isCode(ErrorCodes.CONNECTION));
      await c.close();
    });

    it('rejects with options that make no sense', () => {
      assert.throws(() => new Client({ writePort: 70000 }), isCode(ErrorCodes.INVALID_ARGUMENT));
      assert.throws(() => new Client({ keySize: 0 }), isCode(ErrorCodes.INVALID_ARGUMENT));
    });
  });

  describe('against scripted servers', () => {
    const servers: Array<{ close(): Promise<void> }> = [];
    after(async () => {
      for (const s of servers) await s.close();
    });

    it('BAD rejects that call with COUNTD_REJECTED, later calls on the connection with COUNTD_CONNECTION, and the next call reconnects', async () => {
      const server = await fakeWriteServer((frame, conn) => (conn === 1 && frame === 1 ? 'BAD' : 'WIN'));
      servers.push(server);
      const c = new Client({ writePort: server.port });
      const results = await Promise.allSettled([c.increment('ks', 'a'), c.increment('ks', 'b'), c.increment('ks', 'c')]);
      assert.equal(results[0].status, 'fulfilled');
      assert.ok(results[1].status === 'rejected' && isCode(ErrorCodes.REJECTED)(results[1].reason));
      assert.ok(results[2].status === 'rejected' && isCode(ErrorCodes.CONNECTION)(results[2].reason));
      await c.increment('ks', 'd'); // lazily reconnected
      assert.equal(server.connections(), 2);
      await c.close();
    });

    it('against a server of docs/protocol.md alone: pages work, an extension call fails with a clear COUNTD_REJECTED, never a desynchronised answer', async () => {
      // A plain read server: every 16 + KS bytes are a page; an empty keyspace field is malformed (n = -1, closed).
      const size = 16 + DEFAULT_FIELD_SIZES.keyspaceSize;
      const seen: bigint[] = [];
      const server = net.createServer((socket) => {
        let buf = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          buf = Buffer.concat([buf, chunk]);
          while (buf.length >= size && !socket.destroyed) {
            const req = buf.subarray(0, size);
            buf = buf.subarray(size);
            seen.push(req.readBigUInt64LE(0));
            const n = Buffer.alloc(8);
            if (req[16] === 0) {
              n.writeBigInt64LE(-1n);
              socket.end(n);
              return;
            }
            socket.write(n); // n = 0: this server holds nothing
          }
        });
        socket.on('error', () => {});
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
      const c = new Client({ readPort: (server.address() as net.AddressInfo).port });
      assert.deepEqual(await c.page('ks', 2n ** 63n + 5n, 10), []);
      assert.deepEqual(await c.page('ks', 0, 10), []);
      const results = await Promise.allSettled([c.rank('ks', 'a'), c.get('ks', 'b')]);
      for (const r of results) {
        assert.ok(r.status === 'rejected' && isCode(ErrorCodes.REJECTED)(r.reason), String(r.status === 'rejected' && r.reason));
        assert.match((r as PromiseRejectedResult).reason.message, /does not speak the read-protocol extensions/);
      }
      // The client sent pages (offsets below 2^63), then the hello, and nothing a plain server would misread.
      assert.deepEqual(seen, [2n ** 63n - 1n, 0n, 2n ** 63n]);
      assert.deepEqual(await c.page('ks', 1, 1), []); // a new connection, still plain
      await c.close();
    });

    it('a hello answered with an unknown version (0) fails the extension call with COUNTD_CONNECTION', async () => {
      const K = DEFAULT_FIELD_SIZES.keySize;
      const server = net.createServer((socket) => {
        socket.on('error', () => {});
        socket.once('data', () => socket.write(Buffer.alloc(8 + 8 + K).fill(1, 0, 1))); // n = 1, version 0
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
      const c = new Client({ readPort: (server.address() as net.AddressInfo).port });
      await assert.rejects(c.get('ks', 'a'), (err: unknown) => isCode(ErrorCodes.CONNECTION)(err) && /unknown extension version/.test((err as Error).message));
      await c.close().catch(() => {});
    });

    it('a version 2 op against a server of version 1 rejects with COUNTD_REJECTED naming the versions', async () => {
      const K = DEFAULT_FIELD_SIZES.keySize;
      const server = net.createServer((socket) => {
        socket.on('error', () => {});
        // The hello is answered version 1; the count op (unknown to version 1) n = -1, and the connection closed.
        socket.once('data', () => {
          const hello = Buffer.alloc(8 + 8 + K);
          hello[0] = 1;
          hello[8] = 1;
          socket.end(Buffer.concat([hello, Buffer.alloc(8, 0xff)]));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
      const c = new Client({ readPort: (server.address() as net.AddressInfo).port });
      await assert.rejects(c.count('ks'), (err: unknown) => isCode(ErrorCodes.REJECTED)(err) && /speaks read-protocol extensions version 1, and count needs version 2/.test((err as Error).message));
      await c.close().catch(() => {});
    });

    it('ERR rejects with COUNTD_SERVER_ERROR', async () => {
      const server = await fakeWriteServer((frame) => (frame === 0 ? 'ERR' : 'WIN'));
      servers.push(server);
      const c = new Client({ writePort: server.port });
      await assert.rejects(c.increment('ks', 'a'), isCode(ErrorCodes.SERVER_ERROR));
      await c.close();
    });

    it('a dropped connection rejects every pending call with COUNTD_CONNECTION, never retrying them', async () => {
      let seen = 0;
      const server = await fakeWriteServer((frame, conn) => {
        if (conn > 1) return 'WIN';
        seen++;
        return frame < 99 ? 'hold' : 'drop';
      });
      servers.push(server);
      const c = new Client({ writePort: server.port });
      const calls = Array.from({ length: 100 }, (_, i) => c.increment('ks', `k${i}`));
      const results = await Promise.allSettled(calls);
      assert.equal(seen, 100);
      for (const r of results) assert.ok(r.status === 'rejected' && isCode(ErrorCodes.CONNECTION)(r.reason));
      assert.equal(server.connections(), 1, 'nothing was resent');
      await c.increment('ks', 'again');
      assert.equal(server.connections(), 2);
      await c.close();
    });

    it('a reply split across TCP segments is put together', async () => {
      const server = net.createServer((socket) => {
        let n = 0;
        socket.on('data', (d) => {
          n += d.length;
          if (n >= 2 * writeFrameSize(DEFAULT_FIELD_SIZES)) {
            socket.write('WI');
            setTimeout(() => socket.write('NWIN'), 20);
          }
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
      const c = new Client({ writePort: (server.address() as net.AddressInfo).port });
      await Promise.all([c.increment('ks', 'a'), c.increment('ks', 'b')]);
      c.close().catch(() => {});
    });
  });
});
