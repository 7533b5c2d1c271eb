// `npm run bench:delete`: does deleting a big keyspace stall reads or the
// worker? (issue 17: read p99 while a 1,000,000-key keyspace is deleted stays
// under 5x its idle value.)
//
// Builds a keyspace `victim` of COUNTD_BENCH_KEYS keys (default 1,000,000)
// and a keyspace `board` of 10,000 keys directly in the Store, then
// serves them with the real read server (page cache off: every read reaches
// LevelDB) and measures, over loopback, one request at a time, the latency
// of a 100-entry page of `board` at a random offset and of get() of a random
// key:
//   alone   for PHASE_MS / 2 with nothing else running;
//   idle    for PHASE_MS while small applies to `board` (the worker's work)
//           run back to back: the baseline of the ratio;
//   delete  from the apply that deletes `victim` (one small batch: its name
//           goes, its id is recorded dead) until the background clear of its
//           records has finished, while the same applies run back to
//           back; their latency is printed too.
// Prints p50 / p99 / max of each and the ratio of the p99s, with the event
// loop's delay and the process's CPU (where the time goes). Rounds alternate
// the paced clear (lib/store/collect.ts, the default) and one native clear
// of each whole range (as before 0.6.0), each round with its own idle phase
// just before, so both meet the same load on a shared machine; `victim` is
// created anew for each round in one bulk batch (Store.createKeyspace).
// COUNTD_BENCH_ROUNDS (default 4), COUNTD_BENCH_MODES (default
// "paced,native"). A benchmark that prints figures, not a test.

import { mkdtemp, rm } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../lib/client/client.js';
import { DEFAULT_FIELD_SIZES } from '../lib/protocol/fields.js';
import { startReader } from '../lib/roles/reader.js';
import { DEFAULT_CLEAR_PACE } from '../lib/store/collect.js';
import { IncrementBatch, Store } from '../lib/store/store.js';
import { mulberry32 as random } from '../test/harness/rng.js';
import { formatMachineFacts, machineFacts } from './lib/machine.js';

const KEYS = Number(process.env.COUNTD_BENCH_KEYS ?? 1_000_000);
const BOARD = 10_000;
const BATCH = 100_000;
const PHASE_MS = 5000;
const ROUNDS = Number(process.env.COUNTD_BENCH_ROUNDS ?? 4);
const MODES = (process.env.COUNTD_BENCH_MODES ?? 'paced,native').split(',');

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

/** Where the time goes while a phase runs: event-loop delay and the process's CPU (all its threads). */
function probe(): () => { loopP99: number; loopMax: number; cores: number } {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const cpu = process.cpuUsage();
  const started = performance.now();
  return () => {
    loop.disable();
    const used = process.cpuUsage(cpu);
    return { loopP99: loop.percentile(99) / 1e6, loopMax: loop.max / 1e6, cores: (used.user + used.system) / 1000 / (performance.now() - started) };
  };
}

function bulk(n: number, rand: () => number): { keys: Buffer[]; counts: bigint[] } {
  const keys: Buffer[] = [];
  const counts: bigint[] = [];
  for (let i = 0; i < n; i++) {
    keys.push(Buffer.from(`key-${i}`));
    counts.push(BigInt(1 + Math.floor(rand() * 1000)));
  }
  return { keys, counts };
}

async function round(store: Store, client: Client, rand: () => number, mode: string, victim: { keys: Buffer[]; counts: bigint[] }): Promise<void> {
  type StateView = { collecting: Promise<void>; clearPace: { sliceKeys: number; duty: number } };
  const state = (store as unknown as { state: StateView }).state;
  const built = Date.now();
  await store.createKeyspace('victim', victim.keys, victim.counts);
  // Let the build's flushes and compactions settle a little before the idle phase.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const buildMs = Date.now() - built;
  // Idle: the same reads and back-to-back applies as while deleting, without the delete (a read
  // waits for the apply being committed: state.ts), and the reads alone, for reference.
  const aloneEnd = Date.now() + PHASE_MS / 2;
  const alone = figures(await reads(client, rand, () => Date.now() >= aloneEnd));
  const idleEnd = Date.now() + PHASE_MS;
  const idleProbe = probe();
  const [idleReads, idleApplyTimes] = await Promise.all([reads(client, rand, () => Date.now() >= idleEnd), applies(store, rand, () => Date.now() >= idleEnd)]);
  const idleWhere = idleProbe();
  const idle = figures(idleReads);
  const idleApplies = figures(idleApplyTimes);

  // native: one clear of each whole range, as before 0.6.0 (a slice bigger than any range).
  state.clearPace = mode === 'native' ? { sliceKeys: 2 ** 31 - 1, duty: 1 } : DEFAULT_CLEAR_PACE;
  let cleared = false;
  const started = process.hrtime.bigint();
  const drop = new IncrementBatch();
  drop.deleteKeyspace(Buffer.from('victim'));
  const busyProbe = probe();
  const deleting = store.apply(drop).then(async () => {
    const applied = Number(process.hrtime.bigint() - started) / 1e6;
    // The background clear is the store's `collecting` chain (state.ts): done once it settles.
    await state.collecting;
    cleared = true;
    return { applied, cleared: Number(process.hrtime.bigint() - started) / 1e6 };
  });
  const [during, duringApplies, took] = await Promise.all([reads(client, rand, () => cleared), applies(store, rand, () => cleared), deleting]);
  const busyWhere = busyProbe();
  const busy = figures(during);
  console.log(`--- ${mode} clear (victim built in ${(buildMs / 1000).toFixed(1)} s; load average ${os.loadavg()[0]!.toFixed(1)})`);
  console.log(`delete of ${KEYS.toLocaleString('en')} keys: its apply ${took.applied.toFixed(1)} ms, background clear done after ${(took.cleared / 1000).toFixed(2)} s`);
  console.log(`reads alone:           ${show(alone)}`);
  console.log(`reads idle (applies):  ${show(idle)}`);
  console.log(`reads while deleting:  ${show(busy)}`);
  console.log(`read p99 while deleting / idle: ${(busy.p99 / idle.p99).toFixed(2)}x (target: under 5x)`);
  console.log(`applies idle:           ${show(idleApplies)}`);
  console.log(`applies while deleting: ${show(figures(duringApplies))}`);
  console.log(`event loop delay idle: p99 ${idleWhere.loopP99.toFixed(2)} ms, max ${idleWhere.loopMax.toFixed(2)} ms; deleting: p99 ${busyWhere.loopP99.toFixed(2)} ms, max ${busyWhere.loopMax.toFixed(2)} ms`);
  console.log(`process CPU idle: ${idleWhere.cores.toFixed(2)} cores; deleting: ${busyWhere.cores.toFixed(2)} cores`);
  if ((await store.keyspaces()).some((k) => k.name.toString() === 'victim')) throw new Error('victim still listed');
}

async function main(): Promise<void> {
  const root = process.env.COUNTD_BENCH_DIR ?? os.tmpdir();
  for (const line of formatMachineFacts(machineFacts(root, undefined))) console.log(line);
  const dir = await mkdtemp(path.join(root, 'countd-bench-delete-'));
  const store = await Store.open({ location: dir, sizes: DEFAULT_FIELD_SIZES });
  const rand = random(17);
  await fill(store, 'board', BOARD, rand);
  const victim = bulk(KEYS, rand);
  const reader = await startReader({ store, sizes: DEFAULT_FIELD_SIZES, listen: '127.0.0.1', port: 0, pageCacheBytes: 0 });
  const client = new Client({ host: '127.0.0.1', readPort: reader.port, writePort: 1 });
  try {
    await reads(client, rand, (() => { let n = 0; return () => n++ >= 2000; })()); // warm up
    for (let r = 0; r < ROUNDS; r++) await round(store, client, rand, MODES[r % MODES.length]!, victim);
  } finally {
    await client.close();
    await reader.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
