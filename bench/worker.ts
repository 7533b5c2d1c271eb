// `npm run bench:worker`: how fast countd-worker drains a backlog of dirty
// commit logs into the store.
//
// For each workload, dirty logs are generated directly with CommitLogWriter
// (no network), then a worker is started on them and timed until no dirty log
// is left. Workloads: frames over 1,000,000 keys (key i in keyspace i % 1000),
//   (a) uniform random keys,
//   (b) Zipf s = 1.1 (ranks scrambled over the keys),
//   (c) every frame a new key, all in one keyspace (negative lookups only).
// Prints applied frames per second and where the time went (reading and
// summing the logs vs the store's batch). Targets: (a) >= 100,000 frames/s,
// (b) >= 300,000 frames/s.
//
// Options (environment): COUNTD_BENCH_FRAMES (default 2,000,000 per workload),
// COUNTD_BENCH_KEYS (default 1,000,000), COUNTD_BENCH_DIR (default os.tmpdir()), COUNTD_BENCH_RUNS (default 3: the
// verdict is on the median run), COUNTD_BENCH_SYNC=0 to apply without fsync,
// COUNTD_BENCH_COUNT_CACHE=<bytes> for the store's countCacheBytes (0: no count
// cache), COUNTD_BENCH_NULL_STORE=1 to time the worker alone (read, verify, sum,
// release) against a store whose apply() does nothing, COUNTD_BENCH_WORKLOADS=a
// (or b) to run one workload.
//
// The machine may be shared: besides wall-clock figures, each line prints the
// process's CPU time while draining (all threads, LevelDB's included) and the
// 1-minute load average; compare CPU time when the load is high.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CommitLogWriter } from '../lib/commitlog/writer.js';
import { encodeEntry, entrySize } from '../lib/commitlog/format.js';
import { openDataDir } from '../lib/datadir/meta.js';
import { DEFAULT_FIELD_SIZES } from '../lib/protocol/fields.js';
import { startWorker } from '../lib/roles/worker.js';
import { Store } from '../lib/store/store.js';
import { storeChildSettingsFor } from '../lib/roles/memory-budget.js';
import { parseSize } from '../lib/util/size.js';
import { mulberry32 as random } from '../test/harness/rng.js';
import { zipfCdf, zipfIndex } from './lib/keys.js';

/** COUNTD_BENCH_KEYS: keys of workloads (a) and (b) (default 1,000,000; the sustained load has ~200,000). */
const KEYS = Number(process.env.COUNTD_BENCH_KEYS ?? 1_000_000);
/** Workload (c): every key new, one keyspace. */
let ONE_KEYSPACE = false;
const KEYSPACES = 1000;
const FRAMES = Number(process.env.COUNTD_BENCH_FRAMES ?? 2_000_000);
const SYNC = process.env.COUNTD_BENCH_SYNC !== '0';
const RUNS = Number(process.env.COUNTD_BENCH_RUNS ?? 3);
const NULL_STORE = process.env.COUNTD_BENCH_NULL_STORE === '1';
const COUNT_CACHE = process.env.COUNTD_BENCH_COUNT_CACHE === undefined ? undefined : Number(process.env.COUNTD_BENCH_COUNT_CACHE);
/** COUNTD_BENCH_STORE_MEMORY=<size>: the store's caches and the worker's batch limit as the store child's at that --store-memory (run node with its heap cap to match). */
const STORE_MEMORY = process.env.COUNTD_BENCH_STORE_MEMORY === undefined ? undefined : storeChildSettingsFor(parseSize(process.env.COUNTD_BENCH_STORE_MEMORY)!);


function uniform(seed: number): () => number {
  const r = random(seed);
  return () => Math.floor(r() * KEYS);
}

/** Every frame a new key, all in one keyspace (a big leaderboard filling up): only negative lookups. */
function distinct(): () => number {
  let next = 0;
  return () => next++;
}

function zipf(seed: number, s: number): () => number {
  const cdf = zipfCdf(KEYS, s);
  const r = random(seed);
  return () => zipfIndex(cdf, r);
}

interface Result {
  name: string;
  frames: number;
  logs: number;
  distinct: number;
  generateSeconds: number;
  drainSeconds: number;
  /** CPU time of the whole process (every thread, LevelDB's included) while draining: steadier than wall time on a shared machine. */
  cpuSeconds: number;
  applySeconds: number;
  applies: number;
}

async function runWorkload(name: string, draw: () => number): Promise<Result> {
  const root = await mkdtemp(path.join(process.env.COUNTD_BENCH_DIR ?? os.tmpdir(), 'countd-bench-worker-'));
  try {
    const dataDir = await openDataDir(path.join(root, 'data'), { sizes: DEFAULT_FIELD_SIZES });
    // Generate: appends of up to ~1 MiB of entries each, straight into the pool.
    const t0 = performance.now();
    const writer = await CommitLogWriter.open({ dir: dataDir.paths.commitlog, sizes: dataDir.sizes, handoverMs: 3_600_000 });
    const names = Array.from({ length: KEYSPACES }, (_, i) => Buffer.from(`ks${i}`));
    const seen = new Uint8Array(Math.max(KEYS, FRAMES));
    let distinct = 0;
    const buf = Buffer.allocUnsafe(Math.min(writer.maxBatchBytes, 1 << 20));
    let at = 0;
    let count = 0;
    for (let i = 0; i < FRAMES; i++) {
      const k = draw();
      if (seen[k] === 0) {
        seen[k] = 1;
        distinct++;
      }
      const key = Buffer.from(`key${k}`);
      const ks = ONE_KEYSPACE ? names[0]! : names[k % KEYSPACES]!;
      if (at + entrySize(ks.length, key.length) > buf.length) {
        await writer.append(buf.subarray(0, at), count);
        at = 0;
        count = 0;
      }
      at = encodeEntry(buf, at, 1n, ks, key);
      count++;
    }
    if (count > 0) await writer.append(buf.subarray(0, at), count);
    await writer.close();
    const generateSeconds = (performance.now() - t0) / 1000;

    const store = await Store.open({
      location: dataDir.paths.db,
      sizes: dataDir.sizes,
      sync: SYNC,
      ...(STORE_MEMORY && { cacheSize: STORE_MEMORY.cacheSize, writeBufferSize: STORE_MEMORY.writeBufferSize, countCacheBytes: STORE_MEMORY.countCacheBytes, blockCacheBytes: STORE_MEMORY.blockCacheBytes, keyFilterBytes: STORE_MEMORY.keyFilterBytes }),
      ...(COUNT_CACHE === undefined ? {} : { countCacheBytes: COUNT_CACHE }),
    });
    const peak = { rss: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      for (const k of Object.keys(peak) as Array<keyof typeof peak>) peak[k] = Math.max(peak[k], m[k]);
    }, 100);
    let applySeconds = 0;
    let applies = 0;
    const apply = store.apply.bind(store);
    store.apply = async (...args) => {
      const s = performance.now();
      try {
        return NULL_STORE ? { keys: args[0].keys, saturated: 0 } : await apply(...args);
      } finally {
        applySeconds += (performance.now() - s) / 1000;
        applies++;
      }
    };
    const logs = (await import('node:fs')).readdirSync(dataDir.paths.commitlog).filter((n) => /^\d{10}$/.test(n)).length;
    const t1 = performance.now();
    const cpu0 = process.cpuUsage();
    const worker = await startWorker({ dataDir, store, ...(STORE_MEMORY && { maxBatchKeys: STORE_MEMORY.maxBatchKeys }) });
    await worker.drained();
    const drainSeconds = (performance.now() - t1) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    await worker.close();
    clearInterval(sampler);
    const MiB = 1024 * 1024;
    console.log(`  peak memory (MiB): rss ${(peak.rss / MiB).toFixed(0)}, V8 heap ${(peak.heapTotal / MiB).toFixed(0)}, external ${(peak.external / MiB).toFixed(0)} (array buffers ${(peak.arrayBuffers / MiB).toFixed(0)})`);
    // Sanity: every frame arrived (each frame adds 1 to some key).
    if (!NULL_STORE) {
      let total = 0n;
      for (const { name: ks } of await store.keyspaces()) for await (const e of store.iterate(ks)) total += e.count;
      if (total !== BigInt(FRAMES)) throw new Error(`${name}: the store holds ${total} increments, not ${FRAMES}`);
    }
    await store.close();
    return { name, frames: FRAMES, logs, distinct, generateSeconds, drainSeconds, cpuSeconds, applySeconds, applies };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  console.log(
    `countd-worker drain: ${fmt(FRAMES)} frames per workload, ${fmt(KEYS)} keys over ${KEYSPACES} keyspaces, ` +
      (NULL_STORE ? 'NULL store (worker alone)' : `store sync=${SYNC}`),
  );
  const workloads: Array<[string, () => () => number, number]> = [
    ['(a) uniform', () => uniform(1), 100_000],
    ['(b) Zipf s=1.1', () => zipf(2, 1.1), 300_000],
    ['(c) distinct, one keyspace', () => distinct(), 100_000],
  ];
  const only = process.env.COUNTD_BENCH_WORKLOADS;
  for (const [name, draw, target] of workloads) {
    if (only !== undefined && !only.split(',').some((w) => name.startsWith(`(${w.trim()})`))) continue;
    // The same frames (same seed) every run; the verdict is on the median run:
    // on this virtual disk one run's fsync latency moves a drain by 20%.
    const rates: number[] = [];
    for (let run = 1; run <= RUNS; run++) {
      ONE_KEYSPACE = name.startsWith('(c)');
      const r = await runWorkload(name, draw());
      const rate = r.frames / r.drainSeconds;
      rates.push(rate);
      console.log(
        `${r.name.padEnd(16)} run ${run}/${RUNS} ${fmt(rate).padStart(10)} frames/s` +
          `  drain ${r.drainSeconds.toFixed(2)} s, ${r.logs} logs, ${fmt(r.distinct)} distinct keys,` +
          ` store.apply ${r.applySeconds.toFixed(2)} s in ${r.applies} batches (${((100 * r.applySeconds) / r.drainSeconds).toFixed(0)}%),` +
          ` read+sum+release ${(r.drainSeconds - r.applySeconds).toFixed(2)} s; cpu ${r.cpuSeconds.toFixed(2)} s (${fmt(r.frames / r.cpuSeconds)} frames/cpu-s);` +
          ` generate ${r.generateSeconds.toFixed(2)} s; load ${os.loadavg()[0]!.toFixed(1)}`,
      );
    }
    const median = [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)]!;
    console.log(`${name.padEnd(16)} median of ${RUNS}: ${fmt(median)} frames/s (runs ${rates.map(fmt).join(', ')}; target ${fmt(target)}: ${median >= target ? 'met' : 'MISSED'})`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
});
