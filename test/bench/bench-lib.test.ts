// The benchmark's own machinery: reply counters across chunk boundaries, the
// BENCHMARKS.md section writer, the key generator and the pipeline driver.
// (The figures themselves are not tested: speed belongs to bench/.)

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_FIELD_SIZES, writeFrameSize } from '../../lib/protocol/fields.js';
import { decodeFrame } from '../../lib/protocol/write-frame.js';
import { readSetFrameProtocol } from '../../bench/lib/countd.js';
import { KeySet, ReadDataSet, keyspaceName } from '../../bench/lib/keys.js';
import { fixedReplyCounter, runPipeline } from '../../bench/lib/pipeline.js';
import { measureFloor } from '../../bench/lib/floor.js';
import { startLoopback } from '../../bench/lib/loopback.js';
import { LatencyHistogram } from '../../bench/lib/latency-load.js';
import { pageReplyCounter } from '../../bench/lib/read-load.js';
import { redisReadProtocol, redisReadSetProtocol, redisWriteProtocol, respReplyCounter } from '../../bench/lib/redis.js';
import { markdownTable, ratio, replaceSection, textTable } from '../../bench/lib/report.js';

/** Feed `bytes` to a counter in every possible two-way split; return the counts. */
function splitCounts(make: () => (chunk: Buffer) => number, bytes: Buffer): number[] {
  const out: number[] = [];
  for (let cut = 0; cut <= bytes.length; cut++) {
    const count = make();
    out.push(count(bytes.subarray(0, cut)) + count(bytes.subarray(cut)));
  }
  return out;
}

describe('bench: reply counters', function () {
  it('counts WIN replies split anywhere and rejects anything else', function () {
    const bytes = Buffer.from('WINWINWIN');
    assert.deepEqual(new Set(splitCounts(() => fixedReplyCounter(Buffer.from('WIN')), bytes)), new Set([3]));
    const count = fixedReplyCounter(Buffer.from('WIN'));
    assert.equal(count(Buffer.from('WI')), 0);
    assert.throws(() => count(Buffer.from('NBAD')), /unexpected reply byte/);
  });

  it('counts RESP replies of every type split anywhere', function () {
    const bytes = Buffer.from('$1\r\n3\r\n*4\r\n$4\r\nkey1\r\n$1\r\n2\r\n$4\r\nkey2\r\n$1\r\n1\r\n:5\r\n+OK\r\n$-1\r\n*0\r\n*-1\r\n');
    assert.deepEqual(new Set(splitCounts(respReplyCounter, bytes)), new Set([7]));
  });

  it('stops the load on a RESP error reply', function () {
    assert.throws(() => respReplyCounter()(Buffer.from('-WRONGTYPE Operation against a key\r\n')), /WRONGTYPE/);
  });

  it('counts page responses (n, then n records) split anywhere, and the records', function () {
    const rec = 10;
    const page = (n: number): Buffer => {
      const b = Buffer.alloc(8 + n * rec, 7);
      b.writeBigInt64LE(BigInt(n), 0);
      return b;
    };
    const bytes = Buffer.concat([page(2), page(0), page(3)]);
    const stats = { records: 0 };
    assert.deepEqual(new Set(splitCounts(() => pageReplyCounter(rec, stats), bytes)), new Set([3]));
    assert.equal(stats.records, 5 * (bytes.length + 1));
    const minus2 = Buffer.alloc(8);
    minus2.writeBigInt64LE(-2n, 0);
    assert.throws(() => pageReplyCounter(rec)(minus2), /page too large/);
  });
});

describe('bench: request encoders', function () {
  it('encodes ZINCRBY and ZREVRANGE batches that a RESP parser reads back', function () {
    const keys = new KeySet({ keys: 1000, keyspaces: 10, distribution: 'uniform' });
    const w = redisWriteProtocol(keys, 1, 2).encode(0, 3).toString('latin1');
    assert.equal(w.match(/\*4\r\n\$7\r\nZINCRBY\r\n\$3\r\nks\d\r\n\$1\r\n1\r\n\$\d\r\nkey\d+\r\n/g)?.length, 3);
    const r = redisReadProtocol(keys, 2, 2, 100).encode(1, 2).toString('latin1');
    assert.equal(r.match(/\*5\r\n\$9\r\nZREVRANGE\r\n\$4\r\nrks\d\r\n\$1\r\n0\r\n\$2\r\n99\r\n\$10\r\nWITHSCORES\r\n/g)?.length, 2);
  });
});

describe('bench: read data set', function () {
  it('writes the same fixed counts through countd frames and ZINCRBY', function () {
    const set = new ReadDataSet(10, 3);
    assert.equal(set.size, 30);
    const counts = Array.from({ length: set.size }, (_, i) => set.count(i));
    assert.deepEqual(counts, Array.from({ length: set.size }, (_, i) => new ReadDataSet(10, 3).count(i)));
    assert.ok(counts.every((c) => Number.isInteger(c) && c >= 1 && c <= 1_000_000));
    assert.ok(new Set(counts).size > 25, 'counts are spread out');

    const frames = readSetFrameProtocol(set, DEFAULT_FIELD_SIZES).encode(0, 4);
    const size = writeFrameSize(DEFAULT_FIELD_SIZES);
    assert.equal(frames.length, 4 * size);
    for (let i = 0; i < 4; i++) {
      const f = decodeFrame(frames, i * size, DEFAULT_FIELD_SIZES);
      assert.deepEqual(
        f && { inc: f.increment, ks: f.keyspace.toString(), key: f.key.toString() },
        { inc: BigInt(set.count(i)), ks: `rks${i % 10}`, key: `key${i}` },
      );
    }
    const resp = redisReadSetProtocol(set).encode(0, 2).toString('latin1');
    assert.equal(resp, `*4\r\n$7\r\nZINCRBY\r\n$4\r\nrks0\r\n$${String(set.count(0)).length}\r\n${set.count(0)}\r\n$4\r\nkey0\r\n` +
      `*4\r\n$7\r\nZINCRBY\r\n$4\r\nrks1\r\n$${String(set.count(1)).length}\r\n${set.count(1)}\r\n$4\r\nkey1\r\n`);
  });
});

describe('bench: key set', function () {
  it('gives every connection the same sequence on every run, within range', function () {
    const a = new KeySet({ keys: 1000, keyspaces: 10, distribution: 'uniform' });
    const b = new KeySet({ keys: 1000, keyspaces: 10, distribution: 'uniform' });
    const sa = a.stream(3, 1);
    const sb = b.stream(3, 1);
    const xs = Array.from({ length: 500 }, () => sa());
    assert.deepEqual(xs, Array.from({ length: 500 }, () => sb()));
    assert.ok(xs.every((x) => Number.isInteger(x) && x >= 0 && x < 1000));
    assert.equal(a.distinct, new Set(xs).size);
    assert.notDeepEqual(xs.slice(0, 20), Array.from({ length: 20 }, a.stream(4, 1)));
    assert.equal(keyspaceName(12 % 10), 'ks2');
  });

  it('skews Zipf draws towards a few hot keys', function () {
    const keys = new KeySet({ keys: 10_000, keyspaces: 10, distribution: 'zipf' });
    const next = keys.stream(0, 1);
    const hits = new Map<number, number>();
    for (let i = 0; i < 20_000; i++) {
      const k = next();
      hits.set(k, (hits.get(k) ?? 0) + 1);
    }
    const top = Math.max(...hits.values());
    assert.ok(top > 1000, `the hottest key got ${top} of 20,000 draws`);
    assert.ok(keys.distinct < 10_000 / 2);
  });
});

describe('bench: report', function () {
  it('creates BENCHMARKS.md text with the section, then replaces only that section', function () {
    const first = replaceSection('', 'all', 'one');
    assert.match(first, /^# Benchmarks/);
    assert.match(first, /<!-- bench:all:start -->\none\n<!-- bench:all:end -->/);
    const withOther = replaceSection(first, 'write', 'other figures');
    const second = replaceSection(withOther, 'all', 'two\nlines');
    assert.ok(second.includes('<!-- bench:write:start -->\nother figures\n<!-- bench:write:end -->'));
    assert.ok(second.includes('<!-- bench:all:start -->\ntwo\nlines\n<!-- bench:all:end -->'));
    assert.ok(!second.includes('one'));
    assert.equal(second.split('<!-- bench:all:start -->').length, 2);
    assert.equal(replaceSection(second, 'all', 'two\nlines'), second);
  });

  it('formats tables and ratios', function () {
    const t = { headers: ['', 'a', 'b'], rows: [['rate', 1234.5, undefined], ['x|y', 0.5, 12]] };
    assert.equal(markdownTable(t).split('\n')[2], '| rate | 1,235 | – |');
    assert.ok(markdownTable(t).includes('x\\|y'));
    assert.equal(textTable(t).split('\n').length, 4);
    assert.equal(ratio(3, 2), '1.50x');
    assert.equal(ratio(3, undefined), undefined);
  });
});

describe('bench: pipeline driver', function () {
  let server: net.Server;
  let port: number;

  before(async function () {
    // Answers OK per 4-byte request: a trivial server to drive.
    server = net.createServer((socket) => {
      let partial = 0;
      socket.on('data', (chunk: Buffer) => {
        const bytes = partial + chunk.length;
        partial = bytes % 4;
        const n = Math.floor(bytes / 4);
        if (n > 0) socket.write(Buffer.from('OK'.repeat(n)));
      });
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });

  after(function (done) {
    server.close(() => done());
  });

  it('keeps requests in flight, then collects every reply still due', async function () {
    const sent = [0, 0, 0];
    const r = await runPipeline(
      {
        encode: (conn, count) => {
          sent[conn]! += count;
          return Buffer.alloc(4 * count, 1);
        },
        replyCounter: () => fixedReplyCounter(Buffer.from('OK')),
      },
      { port, connections: 3, inFlight: 5, seconds: 0.2 },
    );
    assert.ok(r.inWindow > 0);
    assert.equal(r.total, sent.reduce((a, b) => a + b, 0));
    assert.ok(r.total >= r.inWindow && r.total - r.inWindow <= 15);
    assert.ok(r.clientCpuCores >= 0);
  });

  it('sends exactly `requests` requests when given a count instead of a window', async function () {
    let sent = 0;
    const r = await runPipeline(
      {
        encode: (_conn, count) => {
          sent += count;
          return Buffer.alloc(4 * count, 1);
        },
        replyCounter: () => fixedReplyCounter(Buffer.from('OK')),
      },
      { port, connections: 4, inFlight: 8, seconds: Infinity, requests: 1001 },
    );
    assert.equal(sent, 1001);
    assert.equal(r.total, 1001);
  });
});

describe('bench: latency histogram and floor', function () {
  it('gives percentiles within 1% of the exact ones', function () {
    const h = new LatencyHistogram();
    for (let us = 1; us <= 10_000; us++) h.record(us);
    for (const [q, exact] of [[0.5, 5000], [0.99, 9900], [0.01, 100]] as const) {
      const got = h.quantile(q);
      assert.ok(Math.abs(got - exact) / exact <= 0.01, `q${q}: ${got} vs ${exact}`);
    }
    assert.ok(Number.isNaN(new LatencyHistogram().quantile(0.5)), 'no sample, no percentile');
  });

  it('the loopback server answers WIN per whole frame, across split and merged writes, and stops', async function () {
    const size = writeFrameSize(DEFAULT_FIELD_SIZES);
    const server = await startLoopback(size);
    const socket = net.connect({ host: '127.0.0.1', port: server.port });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    const frames = Buffer.alloc(size * 3);
    socket.write(frames.subarray(0, size - 1)); // no whole frame yet: no answer
    socket.write(frames.subarray(size - 1, 2 * size + 5));
    socket.write(frames.subarray(2 * size + 5));
    const until = Date.now() + 5000;
    while (got.length < 9 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    assert.equal(got, 'WINWINWIN');
    socket.destroy();
    await server.stop();
    assert.throws(() => process.kill(server.pid, 0), /ESRCH/);
  });

  it('measures the pwrite + fdatasync floor in a temp file and removes it', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'countd-floor-'));
    try {
      const f = measureFloor(dir, 0.2, 520, 64 * 1024);
      assert.ok(f.writes > 0);
      assert.ok(f.p50Us > 0 && f.p50Us <= f.p99Us);
      assert.deepEqual(fs.readdirSync(dir), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
