import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lockName } from '../../lib/commitlog/filenames.js';
import { readLogFile } from '../../lib/commitlog/reader.js';
import { DataDir } from '../../lib/datadir/meta.js';
import { CountdError, ErrorCodes } from '../../lib/errors.js';
import { metrics } from '../../lib/metrics.js';
import { FieldSizes } from '../../lib/protocol/fields.js';
import { startWorker } from '../../lib/roles/worker.js';
import { appliedMarkName } from '../../lib/store/marks.js';
import { Store } from '../../lib/store/store.js';
import { Logger, createLogger } from '../../lib/util/log.js';
import { ModelStore } from './reader-helpers.js';
import { Frame, frame, tempDataDir, writeFrames } from './worker-helpers.js';
import { mulberry32 as prng } from '../harness/rng.js';
import { waitUntil } from '../harness/daemon.js';

const sizes: FieldSizes = { keyspaceSize: 16, keySize: 24 };
const LOG_NAME = /^\d{10}$/;


function logFiles(dataDir: DataDir): string[] {
  return fs
    .readdirSync(dataDir.paths.commitlog)
    .filter((n) => LOG_NAME.test(n))
    .map((n) => path.join(dataDir.paths.commitlog, n));
}

const modeOf = (file: string): number => fs.statSync(file).mode & 0o777;

/** Every keyspace of the model read back from the store equals the model, in rank order. */
async function assertStoreEqualsModel(store: Store, model: ModelStore): Promise<void> {
  const names = (await store.keyspaces()).map((k) => k.name.toString('latin1')).sort();
  assert.deepEqual(names, [...model.spaces.keys()].sort(), 'keyspaces');
  for (const ks of model.spaces.keys()) {
    const want = model.ranked(Buffer.from(ks, 'latin1'));
    const got = await store.page(Buffer.from(ks, 'latin1'), 0, want.length + 1);
    assert.equal(got.length, want.length, `size of ${ks}`);
    for (let i = 0; i < want.length; i++) {
      assert.deepEqual(got[i], want[i], `entry ${i} of ${ks}`);
    }
  }
}

/** The value of a gauge or counter without labels. */
async function metric(m: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await m.get()).values[0]?.value ?? 0;
}

/** A logger that keeps its lines, for asserting on warnings. */
function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ role: 'test', write: (l) => lines.push(l) }), lines };
}

describe('countd-worker', function () {
  this.timeout(60_000);
  const cleanup: string[] = [];
  const stores: Store[] = [];

  async function setup(tag: string): Promise<{ dataDir: DataDir; store: Store; model: ModelStore }> {
    const dataDir = await tempDataDir(sizes, tag);
    cleanup.push(path.dirname(dataDir.paths.root));
    const store = await Store.open({ location: dataDir.paths.db, sizes, sync: false });
    stores.push(store);
    return { dataDir, store, model: new ModelStore() };
  }

  after(async () => {
    for (const s of stores) await s.close().catch(() => {});
    for (const d of cleanup) await rm(d, { recursive: true, force: true });
  });

  it('applies every dirty log exactly, and leaves the logs clean', async () => {
    const { dataDir, store, model } = await setup('worker-apply');
    const frames: Frame[] = [];
    for (let i = 0; i < 3000; i++) frames.push(frame(BigInt((i % 7) - 2), `ks${i % 3}`, `key-${i % 500}`));
    frames.push(frame(2n ** 53n + 1n, 'big', 'past-2^53'), frame(0n, 'big', 'zero-only'), frame(-(2n ** 60n), 'big', 'negative'));
    await writeFrames(dataDir, frames, { model, logSize: 16 * 1024 });
    const logs = logFiles(dataDir);
    assert.ok(logs.filter((f) => modeOf(f) === 0o400).length >= 5, 'several dirty logs');
    const before = (await metrics.framesApplied.get()).values[0]?.value ?? 0;

    const worker = await startWorker({ dataDir, store, pollMs: 5, maxLogsPerApply: 3 });
    await worker.drained();
    await worker.close();

    await assertStoreEqualsModel(store, model);
    assert.equal(await store.get('big', 'zero-only'), undefined, 'an increment of 0 creates nothing');
    assert.equal(await store.get('big', 'past-2^53'), 2n ** 53n + 1n);
    for (const f of logFiles(dataDir)) assert.equal(modeOf(f), 0o200, `${path.basename(f)} is clean`);
    assert.deepEqual(fs.readdirSync(dataDir.paths.commitlog).filter((n) => n.startsWith('lock-')), [], 'no lock left');
    const after = (await metrics.framesApplied.get()).values[0]?.value ?? 0;
    assert.equal(after - before, frames.length, 'framesApplied counts every frame');
  });

  it('sums no log into a batch that already holds maxBatchKeys keys: the log waits, dirty, for the next batch', async () => {
    const { dataDir, store, model } = await setup('worker-full-batch');
    const frames = Array.from({ length: 9000 }, (_, i) => frame(1n, `ks${i % 5}`, `key-${i}`));
    await writeFrames(dataDir, frames, { model, logSize: 16 * 1024 });
    const dirty = logFiles(dataDir).filter((f) => modeOf(f) === 0o400).length;
    const logsPerApply: number[] = [];
    const apply = store.apply.bind(store);
    store.apply = (batch, marks) => {
      logsPerApply.push(marks?.filter((m) => m.name.startsWith('applied/')).length ?? 0); // one applied mark per log (producer and token marks aside)
      return apply(batch, marks);
    };
    // Every log holds hundreds of distinct keys: a batch is full after its first log.
    const worker = await startWorker({ dataDir, store, pollMs: 5, maxBatchKeys: 10 });
    await worker.drained();
    await worker.close();
    await assertStoreEqualsModel(store, model);
    assert.deepEqual(logsPerApply, new Array(dirty).fill(1));
    for (const f of logFiles(dataDir)) assert.equal(modeOf(f), 0o200, `${path.basename(f)} is clean`);
  });

  it('keeps batches to two logs while the heap is under pressure, and claims eight at a time otherwise', async () => {
    for (const pressure of [true, false]) {
      const { dataDir, store, model } = await setup(`worker-pressure-${pressure}`);
      const frames = Array.from({ length: 9000 }, (_, i) => frame(1n, `ks${i % 5}`, `key-${i}`));
      await writeFrames(dataDir, frames, { model, logSize: 16 * 1024 });
      const dirty = logFiles(dataDir).filter((f) => modeOf(f) === 0o400).length;
      assert.ok(dirty >= 10, `${dirty} dirty logs`);
      const logsPerApply: number[] = [];
      const apply = store.apply.bind(store);
      store.apply = (batch, marks) => {
        logsPerApply.push(marks?.filter((m) => m.name.startsWith('applied/')).length ?? 0); // one applied mark per log (producer and token marks aside)
        return apply(batch, marks);
      };
      const worker = await startWorker({ dataDir, store, pollMs: 5, heapPressure: () => pressure });
      await worker.drained();
      await worker.close();
      await assertStoreEqualsModel(store, model);
      assert.equal(logsPerApply.reduce((a, b) => a + b, 0), dirty, 'every log applied once');
      if (pressure) assert.ok(logsPerApply.every((n) => n <= 2), `logs per apply: ${logsPerApply.join(' ')}`);
      else assert.equal(logsPerApply[0], 8, `logs per apply: ${logsPerApply.join(' ')}`);
    }
  });

  it('claims logs that come dirty while the store is busy with an apply, during that apply rather than after it', async () => {
    const { dataDir, store, model } = await setup('worker-overlap');
    const batch = (from: number, n: number): Frame[] => Array.from({ length: n }, (_, i) => frame(1n, `ks${i % 3}`, `key-${from + i}`));
    await writeFrames(dataDir, batch(0, 900), { model, logSize: 16 * 1024 });
    const firstLogs = new Set(logFiles(dataDir).filter((f) => modeOf(f) === 0o400));
    // The first apply is held as if the store were still preparing it.
    let holding = true;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let applies = 0;
    const busy = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'preparing') return holding || target.preparing;
        if (prop === 'apply') {
          return async (...args: Parameters<Store['apply']>) => {
            if (++applies === 1) await held;
            return target.apply(...args);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const worker = await startWorker({ dataDir, store: busy, pollMs: 5 });
    try {
      await waitUntil('the first apply', () => applies === 1, 5000);
      // More logs come dirty meanwhile.
      await writeFrames(dataDir, batch(900, 900), { model, logSize: 16 * 1024 });
      const later = logFiles(dataDir).filter((f) => !firstLogs.has(f) && modeOf(f) === 0o400);
      assert.ok(later.length >= 2, `${later.length} later dirty logs`);
      const locked = (f: string): boolean => fs.existsSync(path.join(dataDir.paths.commitlog, lockName(Number(path.basename(f)))));
      await waitUntil('the later logs to be claimed while the first apply is held', () => later.every(locked), 5000);
      assert.equal(applies, 1, 'the first apply is still held');
    } finally {
      holding = false;
      release();
    }
    await worker.drained();
    await worker.close();
    await assertStoreEqualsModel(store, model);
    assert.deepEqual(logFiles(dataDir).map(modeOf), logFiles(dataDir).map(() => 0o200), 'every log applied and released clean');
  });

  it('does not apply a log twice: applied then marked dirty again (killed before release) is skipped', async () => {
    const { dataDir, store, model } = await setup('worker-twice');
    const frames = Array.from({ length: 1200 }, (_, i) => frame(BigInt(i + 1), 'ks', `k${i % 40}`));
    await writeFrames(dataDir, frames, { model, logSize: 16 * 1024 });
    const used = logFiles(dataDir).filter((f) => modeOf(f) === 0o400);
    let worker = await startWorker({ dataDir, store, pollMs: 5 });
    await worker.drained();
    await worker.close();
    await assertStoreEqualsModel(store, model);

    // The marks hold each log's generation.
    for (const f of used) {
      const contents = await readLogFile(f, sizes);
      const mark = await store.getMark(appliedMarkName(Number(path.basename(f))));
      assert.equal(mark?.readBigUInt64LE(0), contents.generation);
    }
    // Simulate a crash between the database batch and the release: the logs are dirty again.
    for (const f of used) fs.chmodSync(f, 0o400);
    const { logger, lines } = captureLogger();
    worker = await startWorker({ dataDir, store, pollMs: 5, logger });
    await worker.drained();
    await worker.close();
    await assertStoreEqualsModel(store, model);
    for (const f of used) assert.equal(modeOf(f), 0o200);
    assert.equal(lines.filter((l) => l.includes('already applied')).length, used.length);

    // The writer reuses the clean logs: a new generation is applied again.
    const more = Array.from({ length: 500 }, (_, i) => frame(-1n, 'ks', `k${i % 40}`));
    await writeFrames(dataDir, more, { model, logSize: 16 * 1024 });
    worker = await startWorker({ dataDir, store, pollMs: 5 });
    await worker.drained();
    await worker.close();
    await assertStoreEqualsModel(store, model);
  });

  it('salvages a log whose header cannot be verified exactly once, then quarantines it (issue 15 item 1)', async () => {
    const { dataDir, store, model } = await setup('worker-salvage');
    const frames = Array.from({ length: 1200 }, (_, i) => frame(BigInt(i + 1), 'ks', `k${i % 40}`));
    await writeFrames(dataDir, frames, { model, logSize: 8 * 1024 });
    const dirty = logFiles(dataDir).filter((f) => modeOf(f) === 0o400);
    assert.ok(dirty.length >= 3, `${dirty.length} dirty logs`);
    const victim = dirty[1]!;
    const before = await readLogFile(victim, sizes);
    assert.ok(before.frames > 0);
    fs.chmodSync(victim, 0o600);
    const fd = fs.openSync(victim, 'r+');
    fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, 33); // the header's streamId: its CRC fails
    fs.closeSync(fd);
    fs.chmodSync(victim, 0o400);
    const salvagedBefore = await metric(metrics.framesSalvaged);

    const { logger, lines } = captureLogger();
    let worker = await startWorker({ dataDir, store, pollMs: 5, logger });
    await worker.drained();
    await worker.close();
    await assertStoreEqualsModel(store, model);
    assert.equal(modeOf(victim), 0o000, 'quarantined, never reused');
    for (const f of dirty) if (f !== victim) assert.equal(modeOf(f), 0o200);
    const mark = await store.getMark(appliedMarkName(Number(path.basename(victim))));
    assert.equal(mark?.readBigUInt64LE(0), before.generation, 'the salvaged use is marked applied');
    assert.equal((await metric(metrics.framesSalvaged)) - salvagedBefore, before.frames);
    assert.equal(await metric(metrics.quarantinedLogs), 1);
    assert.ok(lines.some((l) => l.includes('salvaging its records and quarantining it') && l.includes('salvage=apply')), lines.join('\n'));

    // Killed after the salvage's apply, before the chmod to 0000: dirty again, applied mark = its generation.
    fs.chmodSync(victim, 0o400);
    const again = captureLogger();
    worker = await startWorker({ dataDir, store, pollMs: 5, logger: again.logger });
    await worker.drained();
    await worker.close();
    await assertStoreEqualsModel(store, model);
    assert.equal(modeOf(victim), 0o000);
    assert.ok(again.lines.some((l) => l.includes('salvage=already-applied')), again.lines.join('\n'));
  });

  it('refreshes the backlog gauge as it claims logs, while a backlog is being applied (issue 15 item 6)', async () => {
    const { dataDir, store, model } = await setup('worker-gauge');
    await writeFrames(dataDir, Array.from({ length: 2000 }, (_, i) => frame(1n, 'ks', `k${i % 50}`)), { model, logSize: 8 * 1024 });
    const dirty = logFiles(dataDir).filter((f) => modeOf(f) === 0o400).length;
    assert.ok(dirty >= 10, `${dirty} dirty logs`);
    metrics.dirtyBacklogLogs.set(0);
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    const gated = {
      apply: async (...args: Parameters<Store['apply']>) => {
        await gate;
        return store.apply(...args);
      },
      getMark: (name: string) => store.getMark(name),
      operators: () => store.operators(),
      windows: () => store.windows(),
      expirePeriods: (now: number) => store.expirePeriods(now),
    } as unknown as Store;
    const worker = await startWorker({ dataDir, store: gated, pollMs: 5, maxLogsPerApply: 2 });
    try {
      // No apply has finished, so the worker has never been idle: only a claim can have set the gauge.
      await waitUntil('the backlog gauge to show the dirty logs', async () => (await metric(metrics.dirtyBacklogLogs)) === dirty, 10_000, 5);
    } finally {
      open();
    }
    await worker.drained();
    await worker.close();
    await assertStoreEqualsModel(store, model);
    assert.equal(await metric(metrics.dirtyBacklogLogs), 0);
  });

  it('retries after a database error with backoff, applying each log once', async () => {
    const { dataDir, store, model } = await setup('worker-retry');
    await writeFrames(dataDir, Array.from({ length: 800 }, (_, i) => frame(3n, 'ks', `k${i % 10}`)), { model, logSize: 16 * 1024 });
    let failures = 2;
    const flaky = {
      apply: (...args: Parameters<Store['apply']>) => {
        if (failures-- > 0) return Promise.reject(new CountdError(ErrorCodes.DATABASE, 'simulated database failure'));
        return store.apply(...args);
      },
      getMark: (name: string) => store.getMark(name),
      operators: () => store.operators(),
      windows: () => store.windows(),
      expirePeriods: (now: number) => store.expirePeriods(now),
    } as unknown as Store;
    const { logger, lines } = captureLogger();
    const worker = await startWorker({ dataDir, store: flaky, pollMs: 5, logger });
    await worker.drained();
    await worker.close();
    await assertStoreEqualsModel(store, model);
    assert.equal(lines.filter((l) => l.includes('apply failed; retrying')).length, 2);
    assert.ok(lines.some((l) => l.includes('simulated database failure') && l.includes('retryInMs=')));
  });

  it('applies the valid records of a damaged log and reports the bytes dropped', async () => {
    const { dataDir, store } = await setup('worker-damaged');
    // Three appends (three records) in one log; then damage the middle one.
    const a = Array.from({ length: 50 }, (_, i) => frame(1n, 'ks', `a${i}`));
    const b = Array.from({ length: 50 }, (_, i) => frame(1n, 'ks', `b${i}`));
    const c = Array.from({ length: 50 }, (_, i) => frame(1n, 'ks', `c${i}`));
    await writeFrames(dataDir, [...a, ...b, ...c], { perAppend: 50, logSize: 64 * 1024 });
    const [file] = logFiles(dataDir).filter((f) => modeOf(f) === 0o400);
    assert.ok(file);
    const contents = await readLogFile(file, sizes);
    assert.equal(contents.records.length, 3);
    const second = contents.records[1]!;
    fs.chmodSync(file, 0o600);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0xff ^ contents.records[1]!.payload[10]!]), 0, 1, second.offset + 32 + 10);
    fs.closeSync(fd);
    fs.chmodSync(file, 0o400);

    const { logger, lines } = captureLogger();
    const worker = await startWorker({ dataDir, store, pollMs: 5, logger });
    await worker.drained();
    await worker.close();
    const model = new ModelStore();
    for (const f of [...a, ...c]) model.add(f.keyspace, f.key, f.increment);
    await assertStoreEqualsModel(store, model);
    const warning = lines.find((l) => l.includes('commit log damaged'));
    assert.ok(warning, 'the damage is logged');
    assert.match(warning, new RegExp(`offset=${second.offset}\\b`));
    assert.match(warning, /bytesDropped=[1-9]/);
  });

  it('matches an in-memory model on random increments: negative, zero, past 2^53, ties', async () => {
    const { dataDir, store, model } = await setup('worker-model');
    const rnd = prng(20261125);
    const pick = (n: number) => Math.floor(rnd() * n);
    const frames: Frame[] = [];
    for (let round = 0; round < 3; round++) {
      frames.length = 0;
      for (let i = 0; i < 4000; i++) {
        const r = rnd();
        // Small increments make many ties; a few huge ones pass 2^53 (at most 2^56 each, so no key can overflow).
        const inc = r < 0.1 ? 0n : r < 0.8 ? BigInt(pick(9) - 3) : BigInt(pick(1 << 20)) * 2n ** 36n * (rnd() < 0.5 ? -1n : 1n);
        const ks = `ks${pick(4)}`;
        const key = rnd() < 0.05 ? `k${'x'.repeat(pick(20))}` : `k${pick(300)}`;
        frames.push(frame(inc, ks, key));
      }
      await writeFrames(dataDir, frames, { model, logSize: 32 * 1024, perAppend: 1 + pick(200) });
      // maxBatchKeys small now and then: batches then stop growing at the key budget.
      const worker = await startWorker({ dataDir, store, pollMs: 5, maxLogsPerApply: 1 + pick(8), ...(rnd() < 0.5 ? { maxBatchKeys: 1 + pick(400) } : {}) });
      await worker.drained();
      await worker.close();
      // Random pages, compared with the model.
      for (let i = 0; i < 100; i++) {
        const ks = `ks${pick(5)}`; // ks4 never exists
        const all = model.ranked(ks);
        const offset = pick(all.length + 5);
        const length = pick(50);
        assert.deepEqual(await store.page(ks, offset, length), all.slice(offset, offset + length), `page ${ks} ${offset} ${length}`);
      }
    }
    await assertStoreEqualsModel(store, model);
  });

  it('survives SIGKILL at random moments: the final counts equal the sum of every frame', async function () {
    const rnd = prng(1234);
    const frames: Frame[] = [];
    for (let i = 0; i < 30_000; i++) frames.push(frame(BigInt(1 + Math.floor(rnd() * 5)), `ks${i % 5}`, `k${Math.floor(rnd() * 3000)}`));
    await survivesKills('worker-kill', frames, rnd);
  });

  it('survives SIGKILL at random moments on mostly new keys of keyspaces created as the logs go (the key filter: lib/store/key-filter.ts)', async function () {
    const rnd = prng(4321);
    const frames: Frame[] = [];
    // Keyspace j first appears at frame 3,000 j; keys mostly new, one in five an existing one.
    for (let i = 0; i < 30_000; i++) {
      const ks = Math.floor(rnd() * (1 + i / 3000));
      const key = rnd() < 0.2 ? Math.floor(rnd() * (i + 1)) : i;
      frames.push(frame(BigInt(1 + Math.floor(rnd() * 5)), `fresh${ks}`, `k${key}`));
    }
    await survivesKills('worker-kill-fresh', frames, rnd);
  });

  /** Kill worker children at random moments while they apply `frames`; the final counts must equal the model's. */
  async function survivesKills(tag: string, frames: Frame[], rnd: () => number): Promise<void> {
    const { dataDir, store, model } = await setup(tag);
    // This store must not hold the database while the children run.
    await store.close();
    stores.splice(stores.indexOf(store), 1);
    await writeFrames(dataDir, frames, { model, logSize: 16 * 1024, perAppend: 50 });
    const dirty = logFiles(dataDir).filter((f) => modeOf(f) === 0o400).length;
    assert.ok(dirty >= 40, `many dirty logs (${dirty})`);

    const child = fileURLToPath(new URL('./worker-child.js', import.meta.url));
    const children = new Set<ChildProcess>();
    /** Run a worker child; kill it killAfterMs after it started, or have it kill itself after its killAfterApply-th batch. */
    const run = (killAfterMs: number | undefined, killAfterApply = 0): Promise<'drained' | 'killed'> =>
      new Promise((resolve, reject) => {
        const p = spawn(process.execPath, [child, dataDir.paths.root, '2'], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, COUNTD_TEST_KILL_AFTER_APPLY: String(killAfterApply) },
        });
        children.add(p);
        let out = '';
        let err = '';
        let timer: NodeJS.Timeout | undefined;
        p.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (killAfterMs !== undefined && out.includes('started') && timer === undefined) {
            timer = setTimeout(() => p.kill('SIGKILL'), killAfterMs);
          }
        });
        p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        p.on('exit', (code, signal) => {
          clearTimeout(timer);
          children.delete(p);
          if (signal === 'SIGKILL') resolve('killed');
          else if (code === 0 && out.includes('drained')) resolve('drained');
          else reject(new Error(`worker child exited with ${code ?? signal}: ${err}`));
        });
      });
    try {
      let kills = 0;
      for (let i = 0; i < 10; i++) {
        // Odd rounds: a kill at a random moment. Even rounds: right after a batch commits, before release.
        const outcome = i % 2 === 1 ? await run(Math.floor(rnd() * 250)) : await run(undefined, 1 + Math.floor(rnd() * 3));
        if (outcome === 'killed') kills++;
        else break; // drained before the kill
      }
      assert.ok(kills >= 6, `killed the worker mid-way ${kills} times`);
      assert.equal(await run(undefined), 'drained');
    } finally {
      for (const p of children) p.kill('SIGKILL');
    }
    const reopened = await Store.open({ location: dataDir.paths.db, sizes });
    stores.push(reopened);
    await assertStoreEqualsModel(reopened, model);
    for (const f of logFiles(dataDir)) assert.equal(modeOf(f), 0o200, `${path.basename(f)} is clean`);
  }

  it('rejects invalid options', async () => {
    const { dataDir, store } = await setup('worker-options');
    await assert.rejects(startWorker({ dataDir, store, pollMs: 0 }), /pollMs/);
    await assert.rejects(startWorker({ dataDir, store, maxLogsPerApply: 0 }), /maxLogsPerApply/);
    await assert.rejects(startWorker({ dataDir, store, maxBatchKeys: 0 }), /maxBatchKeys/);
    await assert.rejects(startWorker({ dataDir, store, maxBatchKeys: 1.5 }), /maxBatchKeys/);
  });
});
