// `countd start`: the supervisor and its two children, run as the real bin/countd.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { DaemonRecord } from '../../lib/datadir/daemon-record.js';
import { Daemon, isAlive, killAll, removeDir, startDaemon, tempDir, waitFor } from './helpers.js';
import { storeChildSettingsFor } from '../../lib/roles/memory-budget.js';

function httpGet(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** Commit-log locks of dead owners still inside the pool's grace period (2 s since their log last changed). */
async function deadLocks(dir: string): Promise<string[]> {
  const cl = path.join(dir, 'commitlog');
  const out: string[] = [];
  for (const f of await fsp.readdir(cl)) {
    const m = /^lock-(\d{10})$/.exec(f);
    if (!m) continue;
    const owner = await fsp.readFile(path.join(cl, `owner-${m[1]}`), 'utf8').then(
      (t) => JSON.parse(t) as { pid: number; start: string },
      () => undefined,
    );
    if (owner && isAlive(owner)) continue;
    const st = await fsp.stat(path.join(cl, f)).catch(() => undefined);
    if (st && Date.now() - st.ctimeMs < 2500) out.push(f);
  }
  return out;
}

describe('countd start (supervisor)', function () {
  this.timeout(40_000);
  let dir: string;
  let daemon: Daemon;
  let record: DaemonRecord;
  let client: Client;

  before(async () => {
    dir = await tempDir('sup');
    ({ daemon, record } = await startDaemon(dir, ['--metrics-port', '0', '--log-format', 'json', '--store-nice', '6', '--store-memory', '512MiB']));
    client = new Client({ dataDir: dir });
  });

  after(async () => {
    await client.close().catch(() => {});
    await killAll();
    await removeDir(dir);
  });

  const countOf = (key: string): Promise<bigint> =>
    waitFor(`count of ${key}`, async () => (await client.get('ks', key).catch(() => undefined)) ?? undefined);

  it('writes daemon.json with its PID and the ports it bound (port 0 picks free ones)', async () => {
    assert.equal(record.pid, daemon.pid);
    assert.ok(record.writePort > 0 && record.readPort > 0 && record.writePort !== record.readPort);
    assert.ok(record.metricsPort! > 0);
    assert.equal(record.listen, '127.0.0.1');
    const children = await daemon.children();
    assert.ok(children.writer && children.store, JSON.stringify(children));
  });

  it('runs the store child at --store-nice, every thread of it; the writer at the supervisor\'s priority', async () => {
    const children = await daemon.children();
    // Field 19 of a task's stat is its nice value (counted after the parenthesised name).
    const nices = async (pid: number): Promise<number[]> => {
      const out: number[] = [];
      for (const tid of await fsp.readdir(`/proc/${pid}/task`)) {
        const stat = await fsp.readFile(`/proc/${pid}/task/${tid}/stat`, 'latin1').catch(() => undefined);
        if (stat !== undefined) out.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
      }
      return out;
    };
    const store = await nices(children.store!);
    // The main thread and every thread created after it (LevelDB's, libuv's pool, the summing thread).
    assert.equal(store[0], 6, `store child threads: ${store.join(' ')}`);
    assert.ok(store.filter((n) => n === 6).length >= 3, `store child threads: ${store.join(' ')}`);
    assert.ok((await nices(children.writer!)).every((n) => n === 0));
  });

  it('caps the store child\'s V8 heap from --store-memory; the writer keeps the supervisor\'s Node.js options', async () => {
    const children = await daemon.children();
    const argv = async (pid: number): Promise<string[]> => (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const expected = `--max-old-space-size=${storeChildSettingsFor(512 * 1024 * 1024).heapLimit / (1024 * 1024)}`;
    assert.deepEqual((await argv(children.store!)).filter((a) => a.startsWith('--max-old-space-size')), [expected]);
    assert.deepEqual((await argv(children.writer!)).filter((a) => a.startsWith('--max-old-space-size')), []);
  });

  it('serves every child\'s metrics merged on --metrics-port, each family once', async () => {
    await client.increment('ks', 'm', 1);
    await client.increment('ks', 'm', 1);
    await countOf('m');
    const { status, body } = await httpGet(record.metricsPort!, '/metrics');
    assert.equal(status, 200);
    assert.match(body, /^countd_write_frames_acked_total 2$/m);
    assert.match(body, /^countd_worker_frames_applied_total [1-9]/m);
    assert.match(body, /^countd_read_requests_total\{kind="get"\} [1-9]/m);
    const types = body.split('\n').filter((l) => l.startsWith('# TYPE '));
    assert.equal(new Set(types).size, types.length, 'no metric family twice');
    assert.equal((await httpGet(record.metricsPort!, '/nope')).status, 404);
  });

  it('restarts the writer child after SIGKILL, on the same port; the daemon keeps serving', async () => {
    const before = await daemon.children();
    process.kill(before.writer!, 'SIGKILL');
    const after = await waitFor('a new writer child', async () => {
      const c = await daemon.children();
      return c.writer !== undefined && c.writer !== before.writer ? c : undefined;
    });
    assert.equal(after.store, before.store, 'the store child was left alone');
    // The first call after the loss may meet the old connection's end; the client reconnects for the next.
    await waitFor('an increment to succeed', async () => ((await client.increment('ks', 'after-writer', 5).then(() => true, () => false)) ? true : undefined));
    assert.ok((await countOf('after-writer')) >= 5n);
    const rec = JSON.parse(await fsp.readFile(path.join(dir, 'daemon.json'), 'utf8')) as DaemonRecord;
    assert.equal(rec.writePort, record.writePort);
    assert.match(daemon.stderr, /"role":"supervisor".*"msg":"writer child died; restarting"/);
  });

  it('restarts the store child after SIGKILL; reads come back', async () => {
    const before = await daemon.children();
    process.kill(before.store!, 'SIGKILL');
    await waitFor('a new store child', async () => {
      const c = await daemon.children();
      return c.store !== undefined && c.store !== before.store ? c : undefined;
    });
    await client.increment('ks', 'after-store', 3);
    const count = await waitFor('reads to come back', async () => {
      const v = await client.get('ks', 'after-store').catch(() => undefined);
      return v === 3n ? v : undefined;
    });
    assert.equal(count, 3n);
  });

  it('logs JSON lines with --log-format json', () => {
    const lines = daemon.stderr.trim().split('\n');
    assert.ok(lines.length > 3);
    for (const line of lines) {
      const obj = JSON.parse(line) as { role?: string; msg?: string };
      assert.equal(typeof obj.role, 'string', line);
      assert.equal(typeof obj.msg, 'string', line);
    }
  });

  it('on SIGTERM stops the children, removes daemon.json, its lock and every commit-log lock, exits 0', async () => {
    const children = await daemon.children();
    await client.close();
    // The children killed above left commit-log locks; the worker frees them once their grace
    // period passed, and the supervisor's stop frees what is stale by then. Wait for the grace.
    await waitFor('locks of killed children to be stale', async () => ((await deadLocks(dir)).length === 0 ? true : undefined), 15_000, 250);
    const exit = await daemon.stop('SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(!isAlive({ pid: children.writer!, start: '' }) && !isAlive({ pid: children.store!, start: '' }));
    const files = await fsp.readdir(dir);
    assert.deepEqual(files.filter((f) => f.startsWith('daemon.')), []);
    const logs = await fsp.readdir(path.join(dir, 'commitlog'));
    assert.deepEqual(logs.filter((f) => !/^\d{10}$/.test(f)), []);
  });
});
