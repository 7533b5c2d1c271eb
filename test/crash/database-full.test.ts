// A database whose disk is full (issue 15, item 4), on a real 40 MiB tmpfs
// mounted on db/: writes go on being acknowledged (the commit logs are on
// another file system), the worker stalls without writing to the full disk
// (its failed attempts do not grow, the free space does not shrink), the
// stall shows in the read port's health op and `countd status`, and once
// space is freed the backlog drains with no restart; every acknowledged
// increment is then readable exactly once.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { CommitLogPool } from '../../lib/commitlog/pool.js';
import { openDataDir } from '../../lib/datadir/meta.js';
import { startReader, ReaderHandle } from '../../lib/roles/reader.js';
import { startWorker, WorkerHandle } from '../../lib/roles/worker.js';
import { startWriter, WriterHandle } from '../../lib/roles/writer.js';
import { Store } from '../../lib/store/store.js';
import { countd } from '../cli/helpers.js';
import { DaemonRunner, killAllDaemons, waitUntil } from '../harness/daemon.js';
import { Ledger, describeViolations } from '../harness/ledger.js';
import { LedgerClient } from '../harness/ledger-client.js';
import { rng, seedFromEnv } from '../harness/rng.js';
import { drainAndCheck } from '../harness/verify.js';
import { SmallFs } from '../harness/small-fs.js';
import { createLogger } from '../../lib/util/log.js';

const SIZES = { keyspaceSize: 16, keySize: 16 };

/** Every acknowledged increment of `ledger` reads back exactly once through the running daemon's read port. */
async function checkLive(client: Client, ledger: Ledger, seed: number): Promise<void> {
  const counts = new Map<string, bigint>();
  for (const ks of ['a', 'b']) for await (const e of client.dump(ks)) counts.set(`${ks}\0${e.key.toString('latin1')}`, e.count);
  const live = ledger.check((ks, key) => counts.get(`${ks}\0${key}`));
  assert.equal(live.violations.length, 0, `seed ${seed}: ${JSON.stringify(live.figures)}\n${describeViolations(live.violations)}`);
  assert.ok(live.figures.framesAcked > 0);
}

describe('a database whose disk is full', function () {
  this.timeout(120_000);
  let root = '';
  let small: SmallFs | undefined;
  const clients: LedgerClient[] = [];
  const stops: Array<() => Promise<void>> = [];

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'countd-test-dbfull-'));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop(0)));
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
    await killAllDaemons();
    small?.unmount();
    small = undefined;
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('stalls without consuming the disk, shows it in status, and drains the backlog once space is freed, exactly once', async () => {
    const seed = seedFromEnv();
    const dataDir = await openDataDir(path.join(root, 'data'), { create: true, sizes: SIZES });
    small = SmallFs.mount(dataDir.paths.db, '40m');
    const location = dataDir.paths.db;
    // A small write buffer, so the disk also fills during compactions (the error LevelDB keeps until reopened).
    const store = await Store.open({ location, sizes: SIZES, writeBufferSize: 256 * 1024 });
    stops.push(() => store.close());
    const worker: WorkerHandle = await startWorker({ dataDir, store, pollMs: 5, ...(process.env.DEBUG_DBFULL ? { logger: createLogger({ role: 'worker', debug: false }) } : {}) });
    stops.push(() => worker.close());
    const reader: ReaderHandle = await startReader({ store, sizes: SIZES, port: 0, health: worker.health });
    stops.push(() => reader.close());
    const writer: WriterHandle = await startWriter({ dataDir, port: 0, logSize: 64 * 1024, handoverMs: 50 });
    stops.push(() => writer.close());
    const client = new Client({ readPort: reader.port, writePort: writer.port, ...SIZES });
    stops.push(() => client.close());

    const ledger = new Ledger();
    for (let i = 0; i < 3; i++) {
      clients.push(new LedgerClient({ ledger, rng: rng(seed + i), sizes: SIZES, port: () => writer.port, name: `w${i}`, keyspaces: ['a', 'b'], window: 32, keysPerSession: 64 }));
    }
    for (const c of clients) c.start();
    await waitUntil('applies before the disk fills', async () => (await client.keyspaces()).length === 2, 20_000);
    assert.equal((await client.health()).state, 'applying');

    const filler = small.fill('filler', 512 * 1024);
    await waitUntil('the worker to stall on the full disk', async () => (await client.health()).state === 'stalled', 60_000);
    const stalled = await client.health();
    assert.equal(stalled.code, 'COUNTD_NO_SPACE');
    assert.ok(stalled.since > 0 && stalled.since <= Date.now(), `since ${stalled.since}`);
    assert.match(stalled.message, /disk full/);

    // countd status (the real binary) shows it, through the read port.
    const status = await countd(dataDir.paths.root, 'status', '--json', '--read-port', String(reader.port));
    assert.equal(status.code, 0, status.stderr);
    const report = JSON.parse(status.stdout) as { worker: { state: string; code: string; since: number } };
    assert.equal(report.worker.state, 'stalled');
    assert.equal(report.worker.code, 'COUNTD_NO_SPACE');
    const text = await countd(dataDir.paths.root, 'status', '--read-port', String(reader.port));
    assert.match(text.stdout, /^worker: +STALLED \(database disk full; applies resume once space is free\) since \d{4}-\d\d-\d\dT.* COUNTD_NO_SPACE: /m);

    // While full, writes are still acknowledged, and the worker writes nothing: no more attempts, no space eaten.
    const pool = await CommitLogPool.open({ dir: dataDir.paths.commitlog, sizes: SIZES });
    const freeAtStall = small.free();
    const dirtyAtStall = (await pool.status()).dirty;
    const winsAtStall = clients.reduce((n, c) => n + c.stats.wins, 0);
    await waitUntil('ten more logs handed over while stalled', async () => (await pool.status()).dirty >= dirtyAtStall + 10, 60_000);
    assert.ok(clients.reduce((n, c) => n + c.stats.wins, 0) > winsAtStall, 'writes are still acknowledged');
    const still = await client.health();
    assert.equal(still.state, 'stalled');
    assert.equal(still.failures, stalled.failures, 'no retry while the disk is full');
    assert.ok(small.free() >= freeAtStall, `free space shrank while stalled: ${freeAtStall} -> ${small.free()}`);

    // Free 20 MiB: the backlog drains with no restart (same worker, same store).
    fs.truncateSync(filler, Math.max(0, fs.statSync(filler).size - 20 * 1024 * 1024));
    await Promise.all(clients.map((c) => c.stop()));
    await waitUntil('the backlog drained', async () => {
      const s = await pool.status();
      return s.dirty === 0 && s.backlogFrames === 0 && (await client.health()).state === 'applying';
    }, 60_000);
    assert.ok(small.free() > 8 * 1024 * 1024, `space stays free after the drain: ${small.free()}`);
    // Every acknowledged increment is readable through the running reader, exactly once.
    await checkLive(client, ledger, seed);

    for (const stop of stops.splice(0).reverse()) await stop();
    const { figures, violations, rankIndexBroken } = await drainAndCheck(dataDir.paths.root, ledger);
    assert.equal(violations.length, 0, `seed ${seed}: ${JSON.stringify(figures)}\n${describeViolations(violations)}`);
    assert.deepEqual(rankIndexBroken, []);
  });

  it('countd start: the store child stalls, countd status and the metrics say so, and it drains once space is freed, with no restart', async () => {
    const seed = seedFromEnv();
    const dataDir = await openDataDir(path.join(root, 'data'), { create: true, sizes: SIZES });
    small = SmallFs.mount(dataDir.paths.db, '40m');
    const daemon = new DaemonRunner(dataDir.paths.root, ['--metrics-port', '0', '--handover-ms', '50', '--log-size', String(64 * 1024), '--store-memory', '256MiB']);
    stops.push(() => daemon.stop());
    const record = await daemon.start();
    const storePid = (await daemon.pids()).store;
    assert.ok(storePid !== undefined);
    const client = new Client({ dataDir: dataDir.paths.root });
    stops.push(() => client.close());
    const metricsText = async (): Promise<string> => (await fetch(`http://127.0.0.1:${record.metricsPort}/metrics`)).text();
    const status = async (): Promise<{ worker: { state: string; code: string; since: number }; commitLogs: { dirty: number; backlogFrames: number } }> => {
      const r = await countd(dataDir.paths.root, 'status', '--json');
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout);
    };

    const ledger = new Ledger();
    for (let i = 0; i < 3; i++) {
      clients.push(new LedgerClient({ ledger, rng: rng(seed + i), sizes: SIZES, port: () => daemon.writePort, name: `d${i}`, keyspaces: ['a', 'b'], window: 32, keysPerSession: 64 }));
    }
    for (const c of clients) c.start();
    await waitUntil('applies before the disk fills', async () => (await client.keyspaces()).length === 2, 20_000);
    assert.match(await metricsText(), /^countd_worker_state\{state="applying"\} 1$/m);

    const filler = small.fill('filler', 512 * 1024);
    await waitUntil('countd status to show the stall', async () => (await status()).worker.state === 'stalled', 60_000);
    const s = await status();
    assert.equal(s.worker.code, 'COUNTD_NO_SPACE');
    assert.ok(s.worker.since > 0);
    const m = await metricsText();
    assert.match(m, /^countd_worker_state\{state="stalled"\} 1$/m);
    assert.match(m, /^countd_worker_state\{state="applying"\} 0$/m);
    assert.match(m, /^countd_worker_apply_failures_total\{code="COUNTD_NO_SPACE"\} [1-9]/m);
    const since = /^countd_worker_failing_since_seconds (\S+)$/m.exec(m);
    assert.ok(since && Math.abs(Number(since[1]) * 1000 - s.worker.since) < 1000, `failing since ${since?.[1]} vs ${s.worker.since}`);

    fs.truncateSync(filler, Math.max(0, fs.statSync(filler).size - 20 * 1024 * 1024));
    await Promise.all(clients.map((c) => c.stop()));
    await waitUntil('the backlog drained', async () => {
      const st = await status();
      return st.worker.state === 'applying' && st.commitLogs.dirty === 0 && st.commitLogs.backlogFrames === 0;
    }, 60_000);
    assert.equal((await daemon.pids()).store, storePid, 'the store child was not restarted');
    await checkLive(client, ledger, seed);
    for (const stop of stops.splice(0).reverse()) await stop();
    const { violations } = await drainAndCheck(dataDir.paths.root, ledger);
    assert.equal(violations.length, 0, describeViolations(violations));
  });
});
