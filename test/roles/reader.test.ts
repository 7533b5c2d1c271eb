import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FieldSizes } from '../../lib/protocol/fields.js';
import { OPCODE_FLAG, encodeReadRequest } from '../../lib/protocol/read-request.js';
import { ReadResponse } from '../../lib/protocol/read-response.js';
import { INT64_MAX, INT64_MIN } from '../../lib/protocol/fields.js';
import { ReaderHandle, startReader } from '../../lib/roles/reader.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { ModelStore, RawReadClient } from './reader-helpers.js';
import { mulberry32 as prng } from '../harness/rng.js';
import { serverStoppedReading } from '../harness/tcp-queues.js';
import { metrics } from '../../lib/metrics.js';

const sizes: FieldSizes = { keyspaceSize: 16, keySize: 12 };

/** Resolve once `cond` holds (polled on each turn of the event loop, with a bounded wait). */
async function waitFor(cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}


const okEntries = (r: ReadResponse | undefined) => {
  assert.ok(r && r.status === 'ok' && 'entries' in r, `expected entries, got ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
  return r.entries.map((e) => [e.key.toString('latin1'), e.count] as const);
};

describe('countd-read', function () {
  let dir: string;
  let store: Store;
  let reader: ReaderHandle;
  const model = new ModelStore();
  const clients: RawReadClient[] = [];

  const connect = async (): Promise<RawReadClient> => {
    const c = await RawReadClient.connect(reader.port, sizes);
    clients.push(c);
    return c;
  };
  /** A connection that negotiated the extensions (hello answered). */
  const connectExtended = async (): Promise<RawReadClient> => {
    const c = await connect();
    c.send('hello', encodeReadRequest({ op: 'hello' }, sizes));
    assert.deepEqual((await c.waitFor(1))[0], { op: 'hello', status: 'ok', version: 2n });
    c.responses.length = 0;
    return c;
  };
  const apply = async (rows: Array<[string, string, bigint]>): Promise<void> => {
    const batch = new IncrementBatch();
    for (const [ks, k, d] of rows) {
      batch.add(Buffer.from(ks, 'latin1'), Buffer.from(k, 'latin1'), d);
      model.add(Buffer.from(ks, 'latin1'), Buffer.from(k, 'latin1'), d);
    }
    await store.apply(batch);
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'countd-test-reader-'));
    store = await Store.open({ location: path.join(dir, 'db'), sizes, sync: false });
    // pages: the worked example of docs/read-protocol-extensions.md, with ties.
    await apply([
      ['pages', 'home', 7n],
      ['pages', 'blog', 3n],
      ['pages', 'about', 3n],
      ['pages', 'faq', -2n],
      ['extremes', 'max', INT64_MAX],
      ['extremes', 'min', INT64_MIN],
      ['extremes', 'zero-sum', 5n],
      ['extremes', 'zero-sum', -5n],
      ['extremes', 'big', 2n ** 53n + 1n],
      ['extremes', 'big2', 2n ** 53n],
    ]);
    // A larger keyspace of random counts with many ties.
    const rnd = prng(42);
    const rows: Array<[string, string, bigint]> = [];
    for (let i = 0; i < 3000; i++) rows.push(['many', `k${Math.floor(rnd() * 1500)}`, BigInt(Math.floor(rnd() * 20) - 5)]);
    await apply(rows);
    reader = await startReader({ store, sizes, port: 0, pageLimit: 100 });
  });

  after(async () => {
    for (const c of clients) c.close();
    await reader?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const page = (offset: number | bigint, length: number | bigint, keyspace: string) =>
    encodeReadRequest({ op: 'page', offset, length, keyspace }, sizes);

  it('listens on 127.0.0.1 and a free port', () => {
    assert.equal(reader.address, '127.0.0.1');
    assert.ok(reader.port > 0);
  });

  it('answers pages in rank order: count descending, ties by key bytes', async () => {
    const c = await connect();
    c.send('page', page(0, 10, 'pages'));
    const [r] = await c.waitFor(1);
    assert.deepEqual(okEntries(r), [['home', 7n], ['about', 3n], ['blog', 3n], ['faq', -2n]]);
  });

  it('answers pipelined requests in request order', async () => {
    const c = await connect();
    const expected: Array<Array<readonly [string, bigint]>> = [];
    const all = model.ranked('many');
    const rnd = prng(7);
    const reqs: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const offset = Math.floor(rnd() * (all.length + 20));
      const length = Math.floor(rnd() * 60);
      reqs.push(page(offset, length, 'many'));
      c.decoder.expect('page');
      expected.push(all.slice(offset, offset + length).map((e) => [e.key.toString('latin1'), e.count] as const));
    }
    c.socket.write(Buffer.concat(reqs)); // all at once: the server must split and order them
    const responses = await c.waitFor(200);
    assert.equal(responses.length, 200);
    responses.forEach((r, i) => assert.deepEqual(okEntries(r), expected[i], `response ${i}`));
  });

  it('serves the full signed 64-bit count range and offsets up to 2^63 - 1', async () => {
    const c = await connect();
    c.send('page', page(0, 10, 'extremes'));
    c.send('page', page(OPCODE_FLAG - 1n, 10, 'extremes'));
    c.send('page', page(2n ** 53n + 1n, 10, 'extremes'));
    c.send('page', page(4, 10, 'extremes'));
    const rs = await c.waitFor(4);
    assert.deepEqual(okEntries(rs[0]), [
      ['max', INT64_MAX],
      ['big', 2n ** 53n + 1n],
      ['big2', 2n ** 53n],
      ['zero-sum', 0n],
      ['min', INT64_MIN],
    ]);
    assert.deepEqual(okEntries(rs[1]), []);
    assert.deepEqual(okEntries(rs[2]), []);
    assert.deepEqual(okEntries(rs[3]), [['min', INT64_MIN]]);
  });

  it('reads an unknown keyspace as empty (n = 0)', async () => {
    const c = await connect();
    c.send('page', page(0, 10, 'nope'));
    assert.deepEqual(okEntries((await c.waitFor(1))[0]), []);
  });

  it('answers n = -2 above the page limit and keeps the connection usable', async () => {
    const c = await connectExtended();
    c.send('page', page(0, 101, 'pages'));
    c.send('page', page(0, 2n ** 64n - 1n, 'pages'));
    c.send('around', encodeReadRequest({ op: 'around', keyspace: 'pages', key: 'home', length: 101 }, sizes));
    c.send('keyspaces', encodeReadRequest({ op: 'keyspaces', offset: 0, length: 101 }, sizes));
    c.send('page', page(0, 100, 'pages'));
    const rs = await c.waitFor(5);
    assert.deepEqual(rs.slice(0, 4).map((r) => r.status), ['page-too-large', 'page-too-large', 'page-too-large', 'page-too-large']);
    assert.equal(okEntries(rs[4]).length, 4);
    assert.equal(c.closed, false);
  });

  it('answers n = -1 to a malformed request and closes only that connection, after answering earlier ones', async () => {
    const bad = await connect();
    const good = await connect();
    const malformed = Buffer.alloc(16 + sizes.keyspaceSize); // empty keyspace
    bad.send('page', page(0, 1, 'pages'));
    bad.send('page', malformed);
    bad.send('page', page(0, 1, 'pages')); // never answered
    await bad.waitClosed();
    assert.deepEqual(okEntries(bad.responses[0]), [['home', 7n]]);
    assert.equal(bad.responses[1]?.status, 'malformed');
    assert.equal(bad.responses.length, 2);
    good.send('page', page(1, 1, 'pages'));
    assert.deepEqual(okEntries((await good.waitFor(1))[0]), [['about', 3n]]);
  });

  it('extended: closes on an unknown opcode as soon as its first 8 bytes arrive', async () => {
    const c = await connectExtended();
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(OPCODE_FLAG | 99n);
    c.send('page', b);
    await c.waitClosed();
    assert.equal(c.responses[0]?.status, 'malformed');
  });

  it('answers a request split across many small writes', async () => {
    const c = await connectExtended();
    const req = encodeReadRequest({ op: 'rank', keyspace: 'pages', key: 'blog' }, sizes);
    c.decoder.expect('rank');
    for (let i = 0; i < req.length; i += 5) {
      c.socket.write(req.subarray(i, i + 5));
      await new Promise((r) => setImmediate(r));
    }
    const [r] = await c.waitFor(1);
    assert.deepEqual(r, { op: 'rank', status: 'ok', first: 2n, entries: [{ key: Buffer.from('blog'), count: 3n }] });
  });

  describe('a plain client (no hello) is served docs/protocol.md alone', () => {
    it('pipelined pages with offsets of 2^63 or more (the opcode values included) each get n = 0, in sync', async () => {
      const c = await connect();
      const raw = (offset: bigint, length: bigint, ks: string): Buffer => {
        const b = Buffer.alloc(16 + sizes.keyspaceSize);
        b.writeBigUInt64LE(offset, 0);
        b.writeBigUInt64LE(length, 8);
        b.write(ks, 16, 'latin1');
        return b;
      };
      const offsets = [OPCODE_FLAG, OPCODE_FLAG | 1n, OPCODE_FLAG | 2n, OPCODE_FLAG | 3n, OPCODE_FLAG | 4n, OPCODE_FLAG | 5n, OPCODE_FLAG | 99n, 2n ** 64n - 1n];
      // Between them, pages whose answer is known: a desynchronised stream would answer them wrong or close.
      for (const offset of offsets) {
        c.send('page', raw(offset, 1n, 'pages'));
        c.send('page', raw(0n, 1n, 'pages'));
      }
      c.send('page', raw(OPCODE_FLAG | 2n, 101n, 'pages')); // above the page limit: n = -2 whatever the offset
      c.send('page', raw(1n, 2n, 'pages'));
      const rs = await c.waitFor(offsets.length * 2 + 2);
      for (let i = 0; i < offsets.length; i++) {
        assert.deepEqual(okEntries(rs[2 * i]), [], `offset 0x${offsets[i]!.toString(16)}`);
        assert.deepEqual(okEntries(rs[2 * i + 1]), [['home', 7n]]);
      }
      assert.equal(rs[offsets.length * 2]!.status, 'page-too-large');
      assert.deepEqual(okEntries(rs[offsets.length * 2 + 1]), [['about', 3n], ['blog', 3n]]);
      assert.equal(c.closed, false);
    });

    it('the hello of extension version 1 (keyspace "countd") is a page: n = 0', async () => {
      const c = await connect();
      const b = Buffer.alloc(16 + sizes.keyspaceSize);
      b.writeBigUInt64LE(OPCODE_FLAG, 0);
      b.writeBigUInt64LE(1n, 8);
      b.write('countd', 16);
      c.send('page', b);
      c.send('page', page(0, 1, 'pages'));
      const rs = await c.waitFor(2);
      assert.deepEqual(okEntries(rs[0]), []);
      assert.deepEqual(okEntries(rs[1]), [['home', 7n]]);
    });
  });

  describe('extension ops', () => {
    it('hello answers the extension version, also after plain pages; a version 3 hello gets 2, a version 1 hello 1', async () => {
      const c = await connect();
      c.send('page', page(0, 1, 'pages'));
      c.send('hello', encodeReadRequest({ op: 'hello' }, sizes));
      const hello = (version: bigint): Buffer => {
        const buf = encodeReadRequest({ op: 'hello' }, sizes);
        buf.writeBigUInt64LE(version, 8);
        return buf;
      };
      c.send('hello', hello(3n));
      c.send('hello', hello(1n));
      c.send('get', encodeReadRequest({ op: 'get', keyspace: 'pages', key: 'home' }, sizes));
      const rs = await c.waitFor(5);
      assert.deepEqual(okEntries(rs[0]), [['home', 7n]]);
      assert.deepEqual(rs.slice(1, 4), [2n, 2n, 1n].map((version) => ({ op: 'hello', status: 'ok', version })));
      assert.deepEqual(okEntries(rs[4]), [['home', 7n]]);
    });

    it('an extension op without a hello is a page (plain meaning), and its tail the next request', async () => {
      const c = await connect();
      // get is 16 + KS + K bytes; plain, its first 16 + KS are a page (n = 0) and its key field starts the next request.
      const get = encodeReadRequest({ op: 'get', keyspace: 'pages', key: 'home' }, sizes);
      c.send('page', get);
      await c.waitFor(1);
      assert.deepEqual(okEntries(c.responses[0]), []);
    });

    it('health answers state none when no worker runs in the process', async () => {
      const c = await connectExtended();
      c.send('health', encodeReadRequest({ op: 'health' }, sizes));
      const [r] = await c.waitFor(1);
      assert.ok(r && r.op === 'health' && r.status === 'ok');
      assert.equal(r.health.state, 'none');
    });

    it('get answers a count, or n = 0 for an absent key or keyspace', async () => {
      const c = await connectExtended();
      c.send('get', encodeReadRequest({ op: 'get', keyspace: 'pages', key: 'faq' }, sizes));
      c.send('get', encodeReadRequest({ op: 'get', keyspace: 'pages', key: 'nope' }, sizes));
      c.send('get', encodeReadRequest({ op: 'get', keyspace: 'nope', key: 'faq' }, sizes));
      c.send('get', encodeReadRequest({ op: 'get', keyspace: 'extremes', key: 'min' }, sizes));
      const rs = await c.waitFor(4);
      assert.deepEqual(okEntries(rs[0]), [['faq', -2n]]);
      assert.deepEqual(okEntries(rs[1]), []);
      assert.deepEqual(okEntries(rs[2]), []);
      assert.deepEqual(okEntries(rs[3]), [['min', INT64_MIN]]);
    });

    it('rank agrees with the model for every key, ties included', async () => {
      const c = await connectExtended();
      const all = model.ranked('many');
      // Pairs of neighbours (ranks 10j and 10j + 1): in a keyspace this full of ties most pairs tie.
      const picked = all.map((_e, i) => i).filter((i) => i % 10 === 0 || i % 10 === 1);
      for (const i of picked) c.send('rank', encodeReadRequest({ op: 'rank', keyspace: 'many', key: all[i]!.key }, sizes));
      const rs = await c.waitFor(picked.length);
      picked.forEach((i, j) => {
        assert.deepEqual(rs[j], { op: 'rank', status: 'ok', first: BigInt(i), entries: [all[i]] });
      });
      c.send('rank', encodeReadRequest({ op: 'rank', keyspace: 'many', key: 'absent' }, sizes));
      assert.deepEqual((await c.waitFor(picked.length + 1))[picked.length], { op: 'rank', status: 'ok', first: 0n, entries: [] });
    });

    it('around returns a window containing the key, shifted inside the keyspace', async () => {
      const c = await connectExtended();
      const cases: Array<[string, number]> = [['home', 3], ['about', 3], ['faq', 3], ['blog', 2], ['about', 100], ['faq', 1]];
      for (const [key, n] of cases) c.send('around', encodeReadRequest({ op: 'around', keyspace: 'pages', key, length: n }, sizes));
      c.send('around', encodeReadRequest({ op: 'around', keyspace: 'pages', key: 'absent', length: 3 }, sizes));
      const rs = await c.waitFor(cases.length + 1);
      for (let i = 0; i < cases.length; i++) {
        const [key, n] = cases[i]!;
        const want = await model.around('pages', key, n);
        const r = rs[i]!;
        assert.ok(r.status === 'ok' && r.op === 'around');
        assert.equal(r.first, BigInt(want!.offset), `first of around(${key}, ${n})`);
        assert.deepEqual(r.entries, want!.entries);
        assert.ok(r.entries.some((e) => e.key.toString() === key));
      }
      assert.deepEqual(rs[cases.length], { op: 'around', status: 'ok', first: 0n, entries: [] });
    });

    it('keyspaces pages over every keyspace by name with its size', async () => {
      const c = await connectExtended();
      c.send('keyspaces', encodeReadRequest({ op: 'keyspaces', offset: 0, length: 100 }, sizes));
      c.send('keyspaces', encodeReadRequest({ op: 'keyspaces', offset: 1, length: 1 }, sizes));
      c.send('keyspaces', encodeReadRequest({ op: 'keyspaces', offset: 2n ** 64n - 1n, length: 1 }, sizes));
      const rs = await c.waitFor(3);
      const list = (r: ReadResponse | undefined) => {
        assert.ok(r && r.status === 'ok' && r.op === 'keyspaces');
        return r.keyspaces.map((k) => [k.name.toString(), k.size]);
      };
      assert.deepEqual(list(rs[0]), [
        ['extremes', 5n],
        ['many', BigInt(await model.size('many'))],
        ['pages', 4n],
      ]);
      assert.deepEqual(list(rs[1]), [['many', BigInt(await model.size('many'))]]);
      assert.deepEqual(list(rs[2]), []);
    });

    it('dense answers the rank and dense rank of every key as the model, n = 0 for an absent key', async () => {
      const c = await connectExtended();
      for (const ks of ['pages', 'many', 'extremes']) {
        const all = model.ranked(ks);
        // Every key of the small keyspaces, every 11th of `many` (a dense rank walks the blocks above the key).
        const ranks = all.map((_, r) => r).filter((r) => ks !== 'many' || r % 11 === 0 || r === all.length - 1);
        for (const r of ranks) c.send('dense', encodeReadRequest({ op: 'dense', keyspace: ks, key: all[r]!.key }, sizes));
        c.send('dense', encodeReadRequest({ op: 'dense', keyspace: ks, key: 'nope' }, sizes));
        const rs = [...(await c.waitFor(ranks.length + 1))];
        c.responses.length = 0;
        for (const [i, r] of ranks.entries()) {
          const want = (await model.denseRank(ks, all[r]!.key))!;
          assert.deepEqual(rs[i], { op: 'dense', status: 'ok', rank: BigInt(r), dense: BigInt(want.dense), entries: [all[r]] }, `${ks} ${all[r]!.key}`);
        }
        assert.deepEqual(rs[ranks.length], { op: 'dense', status: 'ok', rank: 0n, dense: 0n, entries: [] });
      }
    });

    it('count answers the keys with a count of at least min as the model (INT64_MIN: all of them)', async () => {
      const c = await connectExtended();
      const mins = [INT64_MIN, -2n, -1n, 0n, 3n, 4n, 7n, 8n, INT64_MAX];
      for (const ks of ['pages', 'extremes', 'many', 'absent']) for (const min of mins) c.send('count', encodeReadRequest({ op: 'count', keyspace: ks, min }, sizes));
      const rs = await c.waitFor(4 * mins.length);
      let i = 0;
      for (const ks of ['pages', 'extremes', 'many', 'absent']) {
        for (const min of mins) assert.deepEqual(rs[i++], { op: 'count', status: 'ok', keys: BigInt(await model.countKeys(ks, { min })) }, `${ks} --min ${min}`);
      }
    });

    it('settings pages over every keyspace with its size and settings value (undeclared: all zero)', async () => {
      const c = await connectExtended();
      c.send('settings', encodeReadRequest({ op: 'settings', offset: 1, length: 100 }, sizes));
      const [r] = await c.waitFor(1);
      assert.ok(r && r.status === 'ok' && r.op === 'settings');
      assert.deepEqual(
        r.keyspaces.map((k) => [k.name.toString(), k.size, k.settings.toString('hex')]),
        [['many', BigInt(await model.size('many')), '00'.repeat(16)], ['pages', 4n, '00'.repeat(16)]],
      );
    });
  });

  it('matches the model on random pages of a keyspace with ties', async () => {
    const c = await connect();
    const all = model.ranked('many');
    const rnd = prng(99);
    for (let i = 0; i < 50; i++) {
      const offset = Math.floor(rnd() * all.length);
      c.send('page', page(offset, 100, 'many'));
    }
    const rs = await c.waitFor(50);
    assert.ok(rs.every((r) => r.status === 'ok'));
    // Re-derive the offsets from the same seed.
    const rnd2 = prng(99);
    rs.forEach((r) => {
      const offset = Math.floor(rnd2() * all.length);
      assert.deepEqual(okEntries(r), all.slice(offset, offset + 100).map((e) => [e.key.toString('latin1'), e.count] as const));
    });
  });

  it('answers a client that half-closes after its requests, then closes', async () => {
    const c = await connect();
    c.send('page', page(0, 2, 'pages'));
    c.socket.end();
    await c.waitClosed();
    assert.deepEqual(okEntries(c.responses[0]), [['home', 7n], ['about', 3n]]);
  });
});

describe('countd-read lifecycle', () => {
  it('serves a repeated page from its cache only until the next apply changes the store', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'countd-test-reader-cache-'));
    const store = await Store.open({ location: path.join(dir, 'db'), sizes, sync: false });
    const reader = await startReader({ store, sizes, port: 0 });
    const c = await RawReadClient.connect(reader.port, sizes);
    const apply = async (rows: Array<[string, string, bigint]>): Promise<void> => {
      const batch = new IncrementBatch();
      for (const [ks, k, d] of rows) batch.add(Buffer.from(ks), Buffer.from(k), d);
      await store.apply(batch);
    };
    let sent = 0;
    const read = async (offset: number, length: number) => {
      c.send('page', encodeReadRequest({ op: 'page', offset, length, keyspace: 'cached' }, sizes));
      sent++;
      return okEntries((await c.waitFor(sent))[sent - 1]);
    };
    try {
      await apply([['cached', 'a', 1n], ['cached', 'b', 2n]]);
      for (let i = 0; i < 3; i++) assert.deepEqual(await read(0, 10), [['b', 2n], ['a', 1n]]);
      await apply([['cached', 'a', 5n], ['cached', 'c', 1n]]);
      assert.deepEqual(await read(0, 10), [['a', 6n], ['b', 2n], ['c', 1n]]);
      // An apply to another keyspace moves the version too: recomputed, and still exact.
      await apply([['other', 'x', 1n]]);
      assert.deepEqual(await read(1, 1), [['b', 2n]]);
    } finally {
      c.close();
      await reader.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps memory bounded: stops reading requests while a client does not read its answers', async () => {
    // Huge requests (64 KiB keyspace field) with 256 KiB answers: 1,000 of them are
    // 64 MB of requests, more than every socket buffer on the way can hold, so
    // if the server stops reading, the client's writes must back up.
    const big: FieldSizes = { keyspaceSize: 65535, keySize: 4096 };
    const model = new ModelStore();
    for (let i = 0; i < 64; i++) model.add('big', Buffer.alloc(4096, 0x41 + (i % 26)).fill(0x30 + (i % 10), 0, 2), BigInt(i + 1));
    const reader = await startReader({ store: model, sizes: big, port: 0 });
    const s = net.connect(reader.port, '127.0.0.1');
    try {
      await new Promise((r) => s.once('connect', r));
      s.pause(); // never read the answers
      s.on('error', () => {});
      const req = encodeReadRequest({ op: 'page', offset: 0, length: 64, keyspace: 'big' }, big);
      const n = 1000;
      let written = 0;
      let stop = false;
      let waiting = false;
      void (async () => {
        for (let i = 0; i < n && !stop; i++) {
          if (!s.write(req)) {
            waiting = true;
            await new Promise((r) => s.once('drain', r));
            waiting = false;
          }
          written++;
        }
      })();
      const answered = async (): Promise<string> => JSON.stringify((await metrics.readRequests.get()).values);
      await serverStoppedReading(s, { blocked: () => waiting, progress: async () => `${written} ${await answered()}`, done: () => written >= n });
      stop = true;
      assert.ok(written < n, `the server read all ${n} requests (${(n * req.length) / 1e6} MB) while its answers were not read`);
    } finally {
      s.destroy();
    }
    // The server survives the abandoned connection and serves a new one.
    const c = await RawReadClient.connect(reader.port, big);
    c.send('page', encodeReadRequest({ op: 'page', offset: 63, length: 5, keyspace: 'big' }, big));
    const [r] = await c.waitFor(1);
    assert.ok(r?.status === 'ok' && r.op === 'page' && r.entries.length === 1 && r.entries[0]!.count === 1n);
    c.close();
    await reader.close();
  });

  it('counts the answers clients have not read, and over maxBufferedBytes closes the connection that has not read the longest', async () => {
    const wide: FieldSizes = { keyspaceSize: 16, keySize: 4096 };
    const model = new ModelStore();
    for (let i = 0; i < 256; i++) model.add('wide', Buffer.alloc(4096, 0x41 + (i % 26)).fill(0x30 + (i % 10), 0, 3).fill(0x61 + (i >> 4), 3, 4), BigInt(i + 1));
    assert.equal(await model.size('wide'), 256);
    const reader = await startReader({ store: model, sizes: wide, port: 0, maxBufferedBytes: 1536 * 1024 }); // one unread answer fits, two do not
    const request = encodeReadRequest({ op: 'page', offset: 0, length: 256, keyspace: 'wide' }, wide); // a 1 MiB answer
    const answer = 8 + 256 * (8 + 4096);
    const sockets: net.Socket[] = [];
    const nonReader = async (): Promise<{ socket: net.Socket; received: () => number; closed: Promise<void> }> => {
      const socket = net.connect(reader.port, '127.0.0.1');
      socket.on('error', () => {});
      sockets.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
      let received = 0;
      socket.on('data', (d: Buffer) => (received += d.length));
      socket.pause(); // reads nothing until resumed
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.write(Buffer.concat(Array.from({ length: 20 }, () => request)));
      return { socket, received: () => received, closed };
    };
    try {
      const a = await nonReader();
      await waitFor(() => reader.bufferedBytes >= answer / 2); // a's answers back up
      assert.ok(reader.bufferedBytes < 1536 * 1024);
      const b = await nonReader();
      // b's answers back up too: over the budget, a (which has not read the longest) is closed.
      await waitFor(() => reader.connections === 1);
      assert.ok(reader.bufferedBytes >= answer / 2 && reader.bufferedBytes < 1536 * 1024, `${reader.bufferedBytes} bytes held`);
      const gauge = (await metrics.readBufferedBytes.get()).values[0]?.value ?? 0;
      assert.ok(gauge >= reader.bufferedBytes, `countd_read_buffered_bytes ${gauge} counts them`);
      a.socket.resume();
      await a.closed;
      assert.ok(a.received() < 20 * answer, `a was closed before all its answers: ${a.received()} bytes`);
      // b was kept: once it reads, all 20 answers come.
      b.socket.resume();
      await waitFor(() => b.received() === 20 * answer);
      assert.equal(b.socket.destroyed, false);
      const c = await RawReadClient.connect(reader.port, wide);
      c.send('page', encodeReadRequest({ op: 'page', offset: 255, length: 1, keyspace: 'wide' }, wide));
      const [r] = await c.waitFor(1);
      assert.ok(r?.status === 'ok' && r.op === 'page' && r.entries.length === 1 && r.entries[0]!.count === 1n);
      c.close();
    } finally {
      for (const s of sockets) s.destroy();
      await reader.close();
    }
  });

  it('rejects invalid options', async () => {
    const store = new ModelStore();
    await assert.rejects(startReader({ store, sizes, port: 70000 }), /port/);
    await assert.rejects(startReader({ store, sizes, port: 0, pageLimit: 0 }), /page limit/);
    await assert.rejects(startReader({ store, sizes, port: 0, maxBufferedBytes: 0 }), /max buffered bytes/);
  });

  it('closes idle connections after idleTimeoutMs; at maxConnections a new connection closes the longest-idle one', async () => {
    const reader = await startReader({ store: new ModelStore(), sizes, port: 0, idleTimeoutMs: 100, maxConnections: 1 });
    try {
      const a = await RawReadClient.connect(reader.port, sizes);
      const b = await RawReadClient.connect(reader.port, sizes); // at the limit: a, idle, makes room
      await a.waitClosed();
      b.send('page', encodeReadRequest({ op: 'page', offset: 0, length: 1, keyspace: 'x' }, sizes));
      assert.equal((await b.waitFor(1))[0]?.status, 'ok', 'the new connection is served');
      await b.waitClosed(); // then closed for idleness
      assert.equal(b.responses.length, 1);
      assert.equal(a.responses.length, 0);
    } finally {
      await reader.close();
    }
  });

  it('with the default settings (1,024 connections, no idle timeout reached), 1,100 idle connections and 50 holding half a request never lock a reader out', async function () {
    this.timeout(60_000);
    const store = new ModelStore();
    store.add('pages', 'home', 7n);
    const reader = await startReader({ store, sizes, port: 0 });
    const hogs: net.Socket[] = [];
    try {
      const half = encodeReadRequest({ op: 'page', offset: 0, length: 1, keyspace: 'pages' }, sizes).subarray(0, 20);
      let closed = 0;
      for (let i = 0; i < 1150; i++) {
        const s = net.connect(reader.port, '127.0.0.1');
        s.on('error', () => {});
        s.on('close', () => closed++);
        await new Promise((resolve) => s.once('connect', resolve));
        if (i >= 1100) s.write(half);
        hogs.push(s);
      }
      // A new reader is served, at once and again.
      for (let i = 0; i < 3; i++) {
        const c = await RawReadClient.connect(reader.port, sizes);
        c.send('page', encodeReadRequest({ op: 'page', offset: 0, length: 1, keyspace: 'pages' }, sizes));
        assert.deepEqual(okEntries((await c.waitFor(1))[0]), [['home', 7n]]);
        c.close();
      }
      // The oldest idle connections made room: 126 for the hogs above 1,024, one more for the first reader
      // (the next ones may find the slot of the reader before them free).
      await waitFor(() => closed >= 1150 - 1024 + 1);
      assert.ok(closed <= 1150 - 1024 + 3, `${closed} closed`);
      assert.ok(hogs.slice(0, 100).every((s) => s.destroyed || s.readableEnded), 'the longest-idle ones went first');
    } finally {
      for (const s of hogs) s.destroy();
      await reader.close();
    }
  });

  it('close() ends open connections and stops listening', async () => {
    const reader = await startReader({ store: new ModelStore(), sizes, port: 0 });
    const c = await RawReadClient.connect(reader.port, sizes);
    c.send('page', encodeReadRequest({ op: 'page', offset: 0, length: 1, keyspace: 'x' }, sizes));
    await c.waitFor(1);
    await reader.close();
    await c.waitClosed();
    await assert.rejects(RawReadClient.connect(reader.port, sizes));
  });

  it('closes a connection when the store fails, and keeps serving others', async () => {
    const model = new ModelStore();
    let fail = true;
    const store = {
      ...model,
      page: async (ks: string | Uint8Array, o: number | bigint, l: number) => {
        if (fail) throw new Error('database exploded');
        return model.page(ks, o, l);
      },
      get: model.get.bind(model),
      around: model.around.bind(model),
      keyspaces: model.keyspaces.bind(model),
      denseRank: model.denseRank.bind(model),
      countKeys: model.countKeys.bind(model),
      keyspaceSettings: model.keyspaceSettings.bind(model),
    };
    const reader = await startReader({ store, sizes, port: 0 });
    try {
      const c = await RawReadClient.connect(reader.port, sizes);
      c.send('page', encodeReadRequest({ op: 'page', offset: 0, length: 1, keyspace: 'x' }, sizes));
      await c.waitClosed();
      assert.equal(c.responses.length, 0);
      fail = false;
      const d = await RawReadClient.connect(reader.port, sizes);
      d.send('page', encodeReadRequest({ op: 'page', offset: 0, length: 1, keyspace: 'x' }, sizes));
      assert.deepEqual((await d.waitFor(1))[0], { op: 'page', status: 'ok', entries: [] });
      d.close();
    } finally {
      await reader.close();
    }
  });
});
