// The JSON API of `countd start --http-port` over plain HTTP, against the
// real daemon: answers equal what the CLI prints for the same data, errors
// are JSON with COUNTD_* codes and the right HTTP status, and nothing but
// GET is accepted.

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Client } from '../../lib/client/client.js';
import { countd, killAll, removeDir, run, tempDir, waitFor } from '../cli/helpers.js';
import {
  BOARD,
  BOARD_KEYS,
  ConsoleDaemon,
  DAMAGED_LOG,
  QUARANTINED_LOG,
  HOSTILE_KEYSPACE_ESCAPED,
  SMALL_KEYSPACES,
  boardKey,
  request,
  startConsoleDaemon,
} from './fixture.js';

describe('HTTP API (countd start --http-port)', function () {
  this.timeout(60_000);
  let d: ConsoleDaemon;
  const get = (p: string) => request(d.base, p);

  before(async function () {
    this.timeout(120_000);
    d = await startConsoleDaemon(['--metrics-port', '0']);
  });

  after(async () => {
    if (d) {
      await d.daemon.stop();
      await removeDir(d.dir);
    }
    await killAll();
  });

  it('status: the daemon as daemon.json and `countd status --json` describe it', async () => {
    const r = await get('/api/v1/status');
    assert.equal(r.status, 200);
    const s = r.json;
    const cli = JSON.parse((await countd(d.dir, 'status', '--json')).stdout);
    assert.equal(s.apiVersion, 1);
    assert.equal(s.version, (await run(['--version'])).stdout.trim());
    assert.equal(s.pid, d.record.pid);
    assert.equal(s.startedAt, d.record.startedAt);
    assert.deepEqual(s.ports, { write: d.record.writePort, read: d.record.readPort, http: d.record.httpPort, metrics: d.record.metricsPort });
    assert.equal(s.dataDir, cli.dataDir);
    assert.equal(s.keyspaces, cli.keyspaces);
    assert.equal(s.keyspaces, SMALL_KEYSPACES + 2);
    for (const k of ['logs', 'clean', 'dirty', 'other']) assert.equal(typeof s.commitLogs[k], 'number', k);
    // The damaged log nobody claims (mode 0600) and the quarantined one are in both.
    assert.equal(s.commitLogs.logs, cli.commitLogs.logs);
    assert.equal(s.commitLogs.other, cli.commitLogs.other);
    assert.equal(s.commitLogs.other, 1);
    assert.equal(s.commitLogs.quarantined, cli.commitLogs.quarantined);
    assert.equal(s.commitLogs.quarantined, 1);
    assert.deepEqual(s.commitLogs.quarantinedLogs, [QUARANTINED_LOG]);
    assert.ok(s.uptimeSeconds >= 0);
  });

  it('keyspaces: the list of `countd keyspaces`, paged, filtered and sorted', async () => {
    const cli = (await countd(d.dir, 'keyspaces')).stdout.trim().split('\n');
    const all = await get(`/api/v1/keyspaces?limit=1000`);
    assert.equal(all.json.total, cli.length);
    assert.deepEqual(all.json.keyspaces.map((k: { name: string; keys: number }) => `${k.name}\t${k.keys}`), cli);
    const page = await get('/api/v1/keyspaces?offset=5&limit=3');
    assert.deepEqual(page.json.keyspaces, all.json.keyspaces.slice(5, 8));
    const filtered = await get('/api/v1/keyspaces?filter=KS-1');
    assert.deepEqual(filtered.json.keyspaces.map((k: { name: string }) => k.name), ['ks-10', 'ks-11', 'ks-12', 'ks-13', 'ks-14', 'ks-15', 'ks-16', 'ks-17', 'ks-18', 'ks-19']);
    assert.equal(filtered.json.matched, 10);
    const byKeys = await get('/api/v1/keyspaces?sort=keys&limit=2');
    assert.deepEqual(byKeys.json.keyspaces[0], { name: BOARD, keys: BOARD_KEYS });
    const hostile = await get(`/api/v1/keyspaces?filter=${encodeURIComponent('odd\\x01')}`);
    assert.deepEqual(hostile.json.keyspaces.map((k: { name: string }) => k.name), [HOSTILE_KEYSPACE_ESCAPED]);
  });

  it('keyspace pages equal `countd read` at the top and at a deep offset, past the end empty', async () => {
    for (const offset of [0, 617, BOARD_KEYS - 7]) {
      const r = await get(`/api/v1/keyspace?name=${BOARD}&offset=${offset}&limit=50`);
      assert.equal(r.status, 200);
      assert.equal(r.json.keys, BOARD_KEYS);
      const cli = (await countd(d.dir, 'read', BOARD, '--offset', String(offset), '--length', '50')).stdout.trim().split('\n');
      assert.deepEqual(r.json.entries.map((e: { key: string; count: string }) => `${e.key}\t${e.count}`), cli);
      assert.deepEqual(r.json.entries.map((e: { rank: number }) => e.rank), cli.map((_, i) => offset + i));
    }
    const past = await get(`/api/v1/keyspace?name=${BOARD}&offset=${BOARD_KEYS}`);
    assert.deepEqual(past.json.entries, []);
  });

  it('key search: the rank of `countd rank` and the entries of `countd around`', async () => {
    const key = boardKey(421);
    const r = await get(`/api/v1/keyspace/search?name=${BOARD}&key=${key}&n=11`);
    assert.equal(r.status, 200);
    const rank = (await countd(d.dir, 'rank', BOARD, key)).stdout.trim().split('\t');
    assert.equal(String(r.json.rank), rank[0]);
    assert.equal(r.json.count, rank[2]);
    const around = (await countd(d.dir, 'around', BOARD, key, '--n', '11')).stdout.trim().split('\n');
    assert.deepEqual(r.json.around.map((e: { rank: number; key: string; count: string }) => `${e.rank}\t${e.key}\t${e.count}`), around);
    const hostile = await get(`/api/v1/keyspace/search?name=${encodeURIComponent(HOSTILE_KEYSPACE_ESCAPED)}&key=${encodeURIComponent('k\\xff\\n')}`);
    assert.equal(hostile.json.key, 'k\\xff\\n');
    assert.equal(hostile.json.count, '3');
  });

  const errors: Array<[string, string, number, string, RegExp]> = [
    ['a negative offset', `/api/v1/keyspace?name=${BOARD}&offset=-1`, 400, 'COUNTD_INVALID_ARGUMENT', /offset must be an integer from 0 to 9223372036854775807, got "-1"/],
    ['an offset that is not a number', `/api/v1/keyspace?name=${BOARD}&offset=ten`, 400, 'COUNTD_INVALID_ARGUMENT', /offset must be an integer/],
    ['an offset past 2^63-1', `/api/v1/keyspace?name=${BOARD}&offset=9223372036854775808`, 400, 'COUNTD_INVALID_ARGUMENT', /offset must be/],
    ['an offset given twice', `/api/v1/keyspace?name=${BOARD}&offset=1&offset=2`, 400, 'COUNTD_INVALID_ARGUMENT', /offset was given 2 times/],
    ['a limit of 0', `/api/v1/keyspace?name=${BOARD}&limit=0`, 400, 'COUNTD_INVALID_ARGUMENT', /limit must be an integer from 1 to 1000/],
    ['a limit above 1000', `/api/v1/keyspaces?limit=1001`, 400, 'COUNTD_INVALID_ARGUMENT', /limit must be an integer from 1 to 1000/],
    ['no keyspace name', `/api/v1/keyspace`, 400, 'COUNTD_INVALID_ARGUMENT', /name is required/],
    ['a bad escape in a name', `/api/v1/keyspace?name=${encodeURIComponent('a\\q')}`, 400, 'COUNTD_INVALID_ARGUMENT', /unknown escape/],
    ['a name longer than the keyspace field', `/api/v1/keyspace?name=${'x'.repeat(300)}`, 400, 'COUNTD_INVALID_ARGUMENT', /name is 300 bytes, more than the keyspace field \(256\)/],
    ['a key longer than the key field', `/api/v1/keyspace/search?name=${BOARD}&key=${'k'.repeat(257)}`, 400, 'COUNTD_INVALID_ARGUMENT', /key is 257 bytes, more than the key field \(256\)/],
    ['a NUL byte in a name', `/api/v1/keyspace?name=${encodeURIComponent('a\\x00b')}`, 400, 'COUNTD_INVALID_ARGUMENT', /must not contain a NUL byte/],
    ['an unknown sort', `/api/v1/keyspaces?sort=size`, 400, 'COUNTD_INVALID_ARGUMENT', /sort must be one of name, keys/],
    ['an unknown keyspace', `/api/v1/keyspace?name=nope`, 404, 'COUNTD_NOT_FOUND', /no keyspace "nope"/],
    ['an unknown key', `/api/v1/keyspace/search?name=${BOARD}&key=nobody`, 404, 'COUNTD_NOT_FOUND', /no key "nobody" in keyspace "board"/],
    ['an unknown API path', `/api/v1/nope`, 404, 'COUNTD_NOT_FOUND', /no API path \/api\/v1\/nope/],
    ['another API version', `/api/v2/status`, 404, 'COUNTD_NOT_FOUND', /no page/],
    ['an unknown page', `/nope.html`, 404, 'COUNTD_NOT_FOUND', /no page \/nope.html/],
    ['a commit log that does not exist', `/api/v1/commitlogs/4242`, 404, 'COUNTD_NOT_FOUND', /commit log 0000004242 does not exist/],
    ['a commit log index that is not a number', `/api/v1/commitlogs/x1`, 404, 'COUNTD_NOT_FOUND', /no API path/],
    ['a bad history since', `/api/v1/history?since=yesterday`, 400, 'COUNTD_INVALID_ARGUMENT', /since must be an integer/],
  ];
  for (const [what, p, status, code, message] of errors) {
    it(`${what}: HTTP ${status}, ${code}`, async () => {
      const r = await get(p);
      assert.equal(r.status, status, r.body);
      assert.match(r.headers['content-type']!, /^application\/json/);
      assert.equal(r.json.error.code, code);
      assert.match(r.json.error.message, message);
      assert.doesNotMatch(r.body, /\n\s+at /, 'no stack trace');
    });
  }

  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']) {
    it(`${method} is refused with 405 and COUNTD_READ_ONLY on the page, the API and /metrics`, async () => {
      for (const p of ['/', '/api/v1/status', `/api/v1/keyspace?name=${BOARD}`, '/metrics', '/nope']) {
        const r = await request(d.base, p, method);
        assert.equal(r.status, 405, `${method} ${p}`);
        assert.equal(r.headers.allow, 'GET');
        if (method !== 'HEAD') assert.equal(r.json.error.code, 'COUNTD_READ_ONLY');
      }
    });
  }

  it('a Host that is not an address of the server (DNS rebinding) is refused with 400; IP literals and localhost are served', async () => {
    const withHost = (host: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        http
          .get(`${d.base}/api/v1/status`, { headers: { host } }, (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (c: string) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          })
          .on('error', reject);
      });
    const refused = await withHost(`evil.example:${d.record.httpPort}`);
    assert.equal(refused.status, 400);
    assert.equal(JSON.parse(refused.body).error.code, 'COUNTD_INVALID_ARGUMENT');
    assert.match(JSON.parse(refused.body).error.message, /DNS rebinding/);
    for (const host of [`localhost:${d.record.httpPort}`, `127.0.0.1:${d.record.httpPort}`, '[::1]:80', '127.0.0.1']) {
      assert.equal((await withHost(host)).status, 200, host);
    }
  });

  it('/metrics: Prometheus text with each family once, as on --metrics-port', async () => {
    const r = await get('/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type']!, /^text\/plain/);
    const acked = /^countd_write_frames_acked_total (\d+)$/m.exec(r.body);
    assert.ok(acked && Number(acked[1]) >= BOARD_KEYS, r.body.slice(0, 500));
    assert.equal(r.body.match(/^# TYPE countd_write_frames_acked_total /gm)?.length, 1);
    const alias = await request(`http://127.0.0.1:${d.record.metricsPort}`, '/metrics');
    assert.equal(alias.status, 200);
    assert.match(alias.body, /^countd_write_frames_acked_total \d+$/m);
  });

  it('history: the acknowledged and applied rates add up to the increments written meanwhile', async () => {
    const first = await get('/api/v1/history');
    const since = first.json.t.at(-1) as number;
    const client = new Client({ writePort: d.record.writePort, readPort: d.record.readPort });
    const N = 500;
    await Promise.all(Array.from({ length: N }, (_, i) => client.increment('history', `k${i % 7}`, 1)));
    await client.close();
    // Wait until the worker applied them (the key counts add up) and one more sample was taken.
    const done = await waitFor('the writes to be applied and sampled', async () => {
      const h = await get(`/api/v1/history?since=${since}`);
      const integral = (series: number[]) => series.reduce((sum, rate, i) => sum + (rate * ((h.json.t[i] as number) - (i === 0 ? since : h.json.t[i - 1]))) / 1000, 0);
      const acked = integral(h.json.acked);
      const applied = integral(h.json.applied);
      return Math.round(acked) === N && Math.round(applied) === N ? h.json : undefined;
    }, 20_000, 200);
    for (const s of ['failed', 'backlog', 'lag', 'stall']) assert.ok(done[s].every((v: number) => v >= 0), s);
  });

  it('commit logs: each log by state, and for a damaged or quarantined one what `countd commitlog` reports', async () => {
    const list = await get('/api/v1/commitlogs');
    assert.equal(list.status, 200);
    assert.equal(list.json.logs.length, list.json.status.logs);
    const byIndex = new Map(list.json.logs.map((l: { index: number }) => [l.index, l]));
    for (const [index, state, mode] of [[DAMAGED_LOG, 'mode 600', '0600'], [QUARANTINED_LOG, 'quarantined', '0000']] as const) {
      const listed = byIndex.get(index) as { state: string; mode: string; problems: number; frames: number };
      assert.equal(listed.state, state);
      assert.equal(listed.mode, mode);
      const r = await get(`/api/v1/commitlogs/${index}`);
      const cli = await countd(d.dir, 'commitlog', String(index));
      assert.equal(cli.code, 1, `log ${index} is damaged`);
      const cliLines = cli.stderr.trim().split('\n').map((l) => l.replace(/^countd: /, ''));
      assert.deepEqual(r.json.report, cliLines);
      assert.equal(r.json.damaged, true);
      assert.equal(listed.problems, r.json.problems.length);
      assert.equal(listed.frames, r.json.entriesTotal);
      const cliEntries = cli.stdout.trim().split('\n');
      assert.deepEqual(r.json.entries.map((e: { seq: string; keyspace: string; key: string; increment: string }) => `${e.seq}\t${e.keyspace}\t${e.key}\t${e.increment}`), cliEntries);
    }
    // The payload byte flipped in log 0 drops its first record; log 1's records are salvaged whole.
    assert.deepEqual((await get(`/api/v1/commitlogs/${DAMAGED_LOG}`)).json.entries.map((e: { key: string }) => e.key), ['second', 'third']);
    const q = (await get(`/api/v1/commitlogs/${QUARANTINED_LOG}`)).json;
    assert.equal(q.salvaging, true);
    assert.deepEqual(q.entries.map((e: { key: string }) => e.key), ['first', 'second', 'third']);
    assert.match(q.report[1], /^salvage: generation \d+ .*quarantined/);
  });

  it('when the store child dies, reads answer 503 (COUNTD_CONNECTION) until it is back, then the same page again', async () => {
    const before = await get(`/api/v1/keyspace?name=${BOARD}&offset=600&limit=20`);
    const { store } = await d.daemon.children();
    assert.ok(store, 'the store child runs');
    process.kill(store, 'SIGKILL');
    const seen = new Set<number>();
    const after = await waitFor('the API to answer again', async () => {
      const r = await get(`/api/v1/keyspace?name=${BOARD}&offset=600&limit=20`);
      seen.add(r.status);
      if (r.status !== 200) {
        assert.equal(r.status, 503, r.body);
        assert.match(r.json.error.code, /^COUNTD_(CONNECTION|CLOSED)$/);
        return undefined;
      }
      return (await d.daemon.children()).store !== store ? r : undefined;
    }, 30_000, 50);
    assert.deepEqual(after.json.entries, before.json.entries);
    assert.ok([...seen].every((s) => s === 200 || s === 503), [...seen].join());
  });

  it('serves the page and its libraries from the package, with a content security policy', async () => {
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.match(page.body, /<div id="app">/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'; script-src 'self' 'sha256-/);
    for (const p of ['/app.js', '/vendor/preact.mjs', '/vendor/preact-hooks.mjs', '/vendor/htm.mjs', '/vendor/uPlot.esm.js', '/vendor/uPlot.min.css', '/style.css']) {
      const r = await get(p);
      assert.equal(r.status, 200, p);
      assert.ok(r.body.length > 100, p);
    }
    assert.match((await get('/vendor/preact.mjs')).headers['content-type']!, /^text\/javascript/);
  });
});

describe('countd start --http-port: refusals', function () {
  this.timeout(60_000);
  after(killAll);

  it('the same port as --write-port is a usage error (exit 2)', async () => {
    const dir = await tempDir('http');
    try {
      const r = await countd(dir, 'start', '--write-port', '45001', '--http-port', '45001');
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--write-port and --http-port are both 45001/);
    } finally {
      await removeDir(dir);
    }
  });

  it('a port already in use stops the start with one clean line (COUNTD_IO_ERROR), nothing left running', async () => {
    const dir = await tempDir('http');
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      const r = await countd(dir, 'start', '--write-port', '0', '--read-port', '0', '--http-port', String(port));
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`countd: HTTP server cannot listen on 127.0.0.1:${port}: .*EADDRINUSE`));
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal((await countd(dir, 'status')).stdout.includes('not running'), true);
    } finally {
      busy.close();
      await removeDir(dir);
    }
  });
});
