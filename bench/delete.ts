// `npm run bench:delete`: does deleting a big keyspace stall reads or the
// worker? (issue 17: read p99 while a 1,000,000-key keyspace is deleted stays
// under 5x its idle value.)
//
// Builds a keyspace `board` of 10,000 keys directly in the Store, serves it
// with the real read server (page cache off: every read reaches LevelDB) and
// measures, over loopback, one request at a time, the latency of a 100-entry
// page of `board` at a random offset and of get() of a random key. Each
// round creates a keyspace `edge-<round>` of 100 keys, then `victim` of
// COUNTD_BENCH_KEYS keys (default 1,000,000) in one bulk batch
// (Store.createKeyspace), compacts the database (a quiet baseline, not the
// build's compactions), and runs:
//   alone   reads for PHASE_MS with nothing else running;
//   idle    (modes ending /applies) reads for PHASE_MS while small applies
//           to `board` (the worker's work) run back to back;
//   delete  reads from the apply that deletes `victim` (one small batch: its
//           name goes, its id is recorded dead) until the background clear
//           of its records (lib/store/collect.ts) has finished, with the same
//           applies back to back in /applies modes (their latency printed);
//   after   reads alone for PHASE_MS once the clear is done, then three
//           full scans of `edge-<round>`, whose ranges end just before the
//           victim's: a scan that reaches its end walks every tombstone of
//           the victim's range that no compaction has dropped yet.
// Prints read p50 / p99 / max of each phase, the delete's duration, the
// ratio of the p99s with met/MISSED against 5x: deleting over alone before,
// over alone after, over their geometric mean (the verdict: on a shared
// machine the load drifts, and a baseline on both sides of the delete
// cancels a steady drift), and over idle with the same applies, the event loop's delay, the process's
// CPU, the load average around each phase and the victim's files left after
// the clear, then a summary of every mode's ratios. Modes (COUNTD_BENCH_MODES,
// comma-separated; default "paced/reads,paced,paced-nocompact/reads,native"):
// `paced` the clear as it is (paced slices, then paced compaction of the
// cleared ranges), `paced-nocompact` as in 0.6.0 (no compaction), `native`
// one clear of each whole range (as before 0.6.0); `/reads` runs only reads
// while deleting, `/applies` (the default) applies beside. COUNTD_BENCH_ROUNDS
// (default: one per mode, cycling). The machine is shared: run it several
// times and read ranges. A benchmark that prints figures, not a test.

import { mkdtemp, rm } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import type { ClassicLevel } from 'classic-level';
import path from 'node:path';
import { Client } from '../lib/client/client.js';
import { DEFAULT_FIELD_SIZES } from '../lib/protocol/fields.js';
import { startReader } from '../lib/roles/reader.js';
import { DEFAULT_CLEAR_PACE } from '../lib/store/collect.js';
import { TAG_COUNT, TAG_INDEX, idPrefix, prefixEnd } from '../lib/store/encoding.js';
import { IncrementBatch, Store } from '../lib/store/store.js';
import { mulberry32 as random } from '../test/harness/rng.js';
import { formatMachineFacts, machineFacts } from './lib/machine.js';

const KEYS = Number(process.env.COUNTD_BENCH_KEYS ?? 1_000_000);
const BOARD = 10_000;
const EDGE = 100;
const BATCH = 100_000;
const PHASE_MS = 5000;
const MODES = (process.env.COUNTD_BENCH_MODES ?? 'paced/reads,paced,paced-nocompact/reads,native').split(',').map(parseMode);
const ROUNDS = Number(process.env.COUNTD_BENCH_ROUNDS ?? MODES.length);

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

/** A mode: how the clear runs, and whether applies run beside the reads while it does. */
interface Mode {
  name: string;
  pace: { sliceKeys: number; duty: number; compactMinBytes: number };
  withApplies: boolean;
}

function parseMode(text: string): Mode {
  const [clear = '', load = 'applies'] = text.split('/');
  const paces: Record<string, Mode['pace']> = {
    paced: DEFAULT_CLEAR_PACE,
    // 0.6.0: paced, the cleared ranges left to LevelDB's own compactions.
    'paced-nocompact': { ...DEFAULT_CLEAR_PACE, compactMinBytes: Infinity },
    // Before 0.6.0: one clear of each whole range (a slice bigger than any range).
    native: { sliceKeys: 2 ** 31 - 1, duty: 1, compactMinBytes: Infinity },
  };
  const pace = paces[clear];
  if (pace === undefined || !['applies', 'reads'].includes(load)) throw new Error(`COUNTD_BENCH_MODES: unknown mode ${text} (paced|paced-nocompact|native, then /applies or /reads)`);
  return { name: text, pace, withApplies: load === 'applies' };
}

interface RoundResult {
  mode: string;
  /** Read p99 while deleting over the geometric mean of the reads-alone p99s before and after. */
  vsAlone: number;
  vsIdle: number | undefined;
  clearS: number;
}

const load = (): string => os.loadavg().map((l) => l.toFixed(1)).join(' ');
const verdict = (ratio: number): string => `${ratio.toFixed(2)}x ${ratio < 5 ? 'met' : 'MISSED'} (target: under 5x)`;

/** Bytes LevelDB's files hold in keyspace id's count and index ranges (approximateSize). */
async function onDisk(db: StateView['db'], id: number): Promise<number> {
  let bytes = 0;
  for (const tag of [TAG_COUNT, TAG_INDEX]) bytes += await db.approximateSize(idPrefix(tag, id), prefixEnd(idPrefix(tag, id)));
  return bytes;
}

/** A full scan of keyspace `edge` (EDGE keys, the id just below the victim's: its ranges end where the victim's begin). */
async function scanEdge(store: Store, edge: string): Promise<number> {
  const started = performance.now();
  let n = 0;
  for await (const _ of store.iterate(edge)) n++;
  if (n !== EDGE) throw new Error(`${edge} holds ${n} keys`);
  return performance.now() - started;
}

type StateView = { db: ClassicLevel<Buffer, Buffer>; dir: Map<string, { id: number }>; collecting: Promise<void>; clearPace: Mode['pace'] };

async function round(store: Store, client: Client, rand: () => number, mode: Mode, victim: { keys: Buffer[]; counts: bigint[] }, r: number): Promise<RoundResult> {
  const state = (store as unknown as { state: StateView }).state;
  const edge = `edge-${r}`;
  await fill(store, edge, EDGE, rand);
  const built = Date.now();
  await store.createKeyspace('victim', victim.keys, victim.counts);
  const buildMs = Date.now() - built;
  // Settle the build's flushes and compactions, so the idle phases measure a quiet database.
  const settled = Date.now();
  await state.db.compactRange(Buffer.from([0]), Buffer.from([0xff]));
  const settleMs = Date.now() - settled;
  const id = state.dir.get('victim')!.id;
  const victimBytes = await onDisk(state.db, id);
  console.log(`--- ${mode.name}: victim (id ${id}) built in ${(buildMs / 1000).toFixed(1)} s, compacted in ${(settleMs / 1000).toFixed(1)} s, ${(victimBytes / 2 ** 20).toFixed(1)} MiB of files`);
  console.log(`load average before the idle phases: ${load()}`);
  const alone = figures(await reads(client, rand, deadline(PHASE_MS)));
  let idle: Figures | undefined;
  let idleApplies: Figures | undefined;
  let idleWhere: ReturnType<ReturnType<typeof probe>> | undefined;
  if (mode.withApplies) {
    const idleProbe = probe();
    const until = deadline(PHASE_MS);
    const [idleReads, idleApplyTimes] = await Promise.all([reads(client, rand, until), applies(store, rand, until)]);
    idleWhere = idleProbe();
    idle = figures(idleReads);
    idleApplies = figures(idleApplyTimes);
  }

  state.clearPace = mode.pace;
  console.log(`load average before the delete: ${load()}`);
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
  const [during, duringApplies, took] = await Promise.all([reads(client, rand, () => cleared), mode.withApplies ? applies(store, rand, () => cleared) : Promise.resolve([]), deleting]);
  const busyWhere = busyProbe();
  const busy = figures(during);
  console.log(`load average after the delete: ${load()}`);
  const after = figures(await reads(client, rand, deadline(PHASE_MS)));
  const scans = [await scanEdge(store, edge), await scanEdge(store, edge), await scanEdge(store, edge)].sort((a, b) => a - b);

  console.log(`delete of ${KEYS.toLocaleString('en')} keys: its apply ${took.applied.toFixed(1)} ms, background clear done after ${(took.cleared / 1000).toFixed(2)} s; victim's files left: ${(await onDisk(state.db, id) / 2 ** 20).toFixed(2)} MiB`);
  console.log(`reads alone (before):  ${show(alone)}`);
  if (idle !== undefined) console.log(`reads idle (applies):  ${show(idle)}`);
  console.log(`reads while deleting:  ${show(busy)}${mode.withApplies ? ' (applies beside)' : ' (reads only)'}`);
  console.log(`reads alone (after):   ${show(after)}`);
  const vsAlone = busy.p99 / Math.sqrt(alone.p99 * after.p99);
  const vsIdle = idle === undefined ? undefined : busy.p99 / idle.p99;
  console.log(`read p99 while deleting / reads alone before: ${(busy.p99 / alone.p99).toFixed(2)}x; after: ${(busy.p99 / after.p99).toFixed(2)}x`);
  console.log(`read p99 while deleting / reads alone (geometric mean of before and after): ${verdict(vsAlone)}`);
  if (vsIdle !== undefined) console.log(`read p99 while deleting / idle with the same applies: ${verdict(vsIdle)}`);
  if (idleApplies !== undefined) console.log(`applies idle:           ${show(idleApplies)}`);
  if (mode.withApplies) console.log(`applies while deleting: ${show(figures(duringApplies))}`);
  if (idleWhere !== undefined) console.log(`event loop delay idle: p99 ${idleWhere.loopP99.toFixed(2)} ms, max ${idleWhere.loopMax.toFixed(2)} ms; process CPU ${idleWhere.cores.toFixed(2)} cores`);
  console.log(`event loop delay deleting: p99 ${busyWhere.loopP99.toFixed(2)} ms, max ${busyWhere.loopMax.toFixed(2)} ms; process CPU ${busyWhere.cores.toFixed(2)} cores`);
  console.log(`full scan of ${edge} (${EDGE} keys, its ranges end where the victim's begin) after the clear: min ${scans[0]!.toFixed(2)} ms, max ${scans[2]!.toFixed(2)} ms`);
  if ((await store.keyspaces()).some((k) => k.name.toString() === 'victim')) throw new Error('victim still listed');
  return { mode: mode.name, vsAlone, vsIdle, clearS: took.cleared / 1000 };
}

const deadline = (ms: number): (() => boolean) => {
  const end = Date.now() + ms;
  return () => Date.now() >= end;
};

function summary(results: RoundResult[]): void {
  console.log('--- summary (read p99 while deleting over idle: reads alone before and after, geometric mean; target under 5x)');
  const range = (xs: number[]): string => (xs.length === 0 ? '-' : `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`);
  for (const name of [...new Set(results.map((r) => r.mode))]) {
    const mine = results.filter((r) => r.mode === name);
    const vsIdle = mine.flatMap((r) => (r.vsIdle === undefined ? [] : [r.vsIdle]));
    const met = (xs: number[]): string => `met in ${xs.filter((x) => x < 5).length} of ${xs.length}`;
    const alone = mine.map((r) => r.vsAlone);
    const idle = vsIdle.length === 0 ? '' : `; vs idle with the same applies ${range(vsIdle)}x (${met(vsIdle)})`;
    console.log(`${name}: ${mine.length} round(s); vs reads alone ${range(alone)}x (${met(alone)})${idle}; clear took ${range(mine.map((r) => r.clearS))} s`);
  }
  console.log(`load average at the end: ${load()}`);
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
    const results: RoundResult[] = [];
    for (let r = 0; r < ROUNDS; r++) results.push(await round(store, client, rand, MODES[r % MODES.length]!, victim, r));
    summary(results);
  } finally {
    await client.close();
    await reader.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
