// `npm run bench:delete`: does deleting a big keyspace stall reads or the
// worker? (issue 17: read p99 while a 1,000,000-key keyspace is deleted stays
// under 5x its idle value.)
//
// Builds a keyspace `victim` of COUNTD_BENCH_KEYS keys (default 1,000,000)
// and a keyspace `board` of 10,000 keys directly through Store.apply, then
// serves them with the real read server (page cache off: every read reaches
// LevelDB) and measures, over loopback, one request at a time, the latency
// of a 100-entry page of `board` at a random offset and of get() of a random
// key:
//   idle    for PHASE_MS with nothing else running;
//   delete  from the apply that deletes `victim` (one small batch: its name
//           goes, its id is recorded dead) until the background clear of its
//           records (LevelDB clear in 16 KiB batches) has finished, while
//           small applies to `board` (the worker's work) run back to back;
//           their latency is printed too.
// Prints p50 / p99 / max of each and the ratio of the p99s. A benchmark that
// prints figures, not a test: run it several times on a quiet machine.

import { mkdtemp, rm } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../lib/client/client.js';
import { DEFAULT_FIELD_SIZES } from '../lib/protocol/fields.js';
import { startReader } from '../lib/roles/reader.js';
import { IncrementBatch, Store } from '../lib/store/store.js';
import { mulberry32 as random } from '../test/harness/rng.js';
import { formatMachineFacts, machineFacts } from './lib/machine.js';

const KEYS = Number(process.env.COUNTD_BENCH_KEYS ?? 1_000_000);
const BOARD = 10_000;
const BATCH = 100_000;
const PHASE_MS = 5000;

interface Figures {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function figures(times: number[]): Figures {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? NaN };
}

const show = (f: Figures): string => `p50 ${f.p50.toFixed(3)} ms, p99 ${f.p99.toFixed(3)} ms, max ${f.max.toFixed(3)} ms (${f.n} requests)`;

async function fill(store: Store, ks: string, n: number, rand: () => number): Promise<void> {
  for (let start = 0; start < n; start += BATCH) {
    const batch = new IncrementBatch();
    const name = Buffer.from(ks);
    for (let i = start; i < Math.min(n, start + BATCH); i++) batch.add(name, Buffer.from(`key-${i}`), BigInt(1 + Math.floor(rand() * 1000)));
    await store.apply(batch);
  }
}

/** Reads, one at a time, until `until()` is true: their latencies in ms. */
async function reads(client: Client, rand: () => number, until: () => boolean): Promise<number[]> {
  const times: number[] = [];
  while (!until()) {
    const start = process.hrtime.bigint();
    if (rand() < 0.5) await client.page('board', Math.floor(rand() * (BOARD - 100)), 100);
    else await client.get('board', `key-${Math.floor(rand() * BOARD)}`);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return times;
}

/** Small applies to `board`, back to back, until `until()` is true: their latencies in ms. */
async function applies(store: Store, rand: () => number, until: () => boolean): Promise<number[]> {
  const times: number[] = [];
  while (!until()) {
    const batch = new IncrementBatch();
    for (let i = 0; i < 100; i++) batch.add(Buffer.from('board'), Buffer.from(`key-${Math.floor(rand() * BOARD)}`), 1n);
    const start = process.hrtime.bigint();
    await store.apply(batch);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return times;
}

async function main(): Promise<void> {
  const root = process.env.COUNTD_BENCH_DIR ?? os.tmpdir();
  for (const line of formatMachineFacts(machineFacts(root, undefined))) console.log(line);
  const dir = await mkdtemp(path.join(root, 'countd-bench-delete-'));
  const store = await Store.open({ location: dir, sizes: DEFAULT_FIELD_SIZES });
  const rand = random(17);
  const built = Date.now();
  await fill(store, 'victim', KEYS, rand);
  await fill(store, 'board', BOARD, rand);
  console.log(`built ${KEYS.toLocaleString('en')} + ${BOARD.toLocaleString('en')} keys in ${((Date.now() - built) / 1000).toFixed(1)} s`);
  const reader = await startReader({ store, sizes: DEFAULT_FIELD_SIZES, listen: '127.0.0.1', port: 0, pageCacheBytes: 0 });
  const client = new Client({ host: '127.0.0.1', readPort: reader.port, writePort: 1 });
  try {
    await reads(client, rand, (() => { let n = 0; return () => n++ >= 2000; })()); // warm up
    const idleEnd = Date.now() + PHASE_MS;
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const cpuIdle = process.cpuUsage();
    const idle = figures(await reads(client, rand, () => Date.now() >= idleEnd));
    const idleCpu = process.cpuUsage(cpuIdle);
    loop.disable();
    const idleLoop = { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 };
    loop.reset();
    const idleApplies = figures(await applies(store, rand, (() => { const end = Date.now() + PHASE_MS / 2; return () => Date.now() >= end; })()));

    // The background clear is the store's `collecting` chain (state.ts): done once it settles.
    const state = (store as unknown as { state: { collecting: Promise<void> } }).state;
    let cleared = false;
    const started = process.hrtime.bigint();
    const drop = new IncrementBatch();
    drop.deleteKeyspace(Buffer.from('victim'));
    const deleting = store.apply(drop).then(async () => {
      const applied = Number(process.hrtime.bigint() - started) / 1e6;
      await state.collecting;
      cleared = true;
      return { applied, cleared: Number(process.hrtime.bigint() - started) / 1e6 };
    });
    loop.enable();
    const cpuBusy = process.cpuUsage();
    const [during, duringApplies, took] = await Promise.all([reads(client, rand, () => cleared), applies(store, rand, () => cleared), deleting]);
    const busyCpu = process.cpuUsage(cpuBusy);
    loop.disable();
    const busyLoop = { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 };
    const busy = figures(during);
    console.log(`delete of ${KEYS.toLocaleString('en')} keys: its apply ${took.applied.toFixed(1)} ms, background clear done after ${(took.cleared / 1000).toFixed(2)} s`);
    console.log(`reads idle:            ${show(idle)}`);
    console.log(`reads while deleting:  ${show(busy)}`);
    console.log(`read p99 while deleting / idle: ${(busy.p99 / idle.p99).toFixed(2)}x (target: under 5x)`);
    console.log(`applies idle:           ${show(idleApplies)}`);
    console.log(`applies while deleting: ${show(figures(duringApplies))}`);
    // Where the time goes: a blocked event loop (the reads' thread) shows in its delay; the process's
    // CPU (all threads: JS, LevelDB's clear and compaction) per second of wall time.
    const cpuShare = (u: NodeJS.CpuUsage, ms: number): string => `${((u.user + u.system) / 1000 / ms).toFixed(2)} cores`;
    console.log(`event loop delay idle: p99 ${idleLoop.p99.toFixed(2)} ms, max ${idleLoop.max.toFixed(2)} ms; deleting: p99 ${busyLoop.p99.toFixed(2)} ms, max ${busyLoop.max.toFixed(2)} ms`);
    console.log(`process CPU idle reads: ${cpuShare(idleCpu, PHASE_MS)}; while deleting: ${cpuShare(busyCpu, took.cleared)}`);
    console.log(`machine load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    if ((await store.keyspaces()).some((k) => k.name.toString() === 'victim')) throw new Error('victim still listed');
  } finally {
    await client.close();
    await reader.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
