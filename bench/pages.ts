// `npm run bench:pages`: does a page cost the same at any depth? (issue 8)
//
// Builds one keyspace of 1,000,000 keys directly through Store.apply (big
// batches, random counts with many ties), then prints the median latency of a
// 100-entry page at offset 0 and at offset 900,000, of rank() and of
// around() for random keys. Target: deep page <= 3x shallow page.
//
// Options (environment): COUNTD_BENCH_KEYS (default 1,000,000),
// COUNTD_BENCH_DIR (default os.tmpdir()), COUNTD_BENCH_FENCE (rankFenceSize).

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_FIELD_SIZES } from '../lib/protocol/fields.js';
import { IncrementBatch, Store } from '../lib/store/store.js';
import { mulberry32 as random } from '../test/harness/rng.js';

const KEYS = Number(process.env.COUNTD_BENCH_KEYS ?? 1_000_000);
const BATCH = 100_000;
const RUNS = 300;
const PAGE = 100;
const FENCE = process.env.COUNTD_BENCH_FENCE ? Number(process.env.COUNTD_BENCH_FENCE) : undefined;


async function median(runs: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await fn(i); // warm up
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await fn(i);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const ms = (x: number): string => `${x.toFixed(3)} ms`;

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(process.env.COUNTD_BENCH_DIR ?? os.tmpdir(), 'countd-bench-pages-'));
  let store: Store | undefined;
  try {
    store = await Store.open({ location: path.join(root, 'db'), sizes: DEFAULT_FIELD_SIZES, rankFenceSize: FENCE });
    const rand = random(1);
    const ks = Buffer.from('pages');
    const names: Buffer[] = [];
    const buildStart = Date.now();
    for (let start = 0; start < KEYS; start += BATCH) {
      const batch = new IncrementBatch();
      for (let i = start; i < Math.min(KEYS, start + BATCH); i++) {
        const key = Buffer.from('key' + i);
        names.push(key);
        batch.add(ks, key, BigInt(1 + Math.floor(rand() * 100_000)));
      }
      await store.apply(batch);
    }
    const buildSeconds = (Date.now() - buildStart) / 1000;
    // Move keys across fences with a few ordinary applies, as the worker would.
    for (let round = 0; round < 5; round++) {
      const batch = new IncrementBatch();
      for (let i = 0; i < 50_000; i++) batch.add(ks, names[Math.floor(rand() * KEYS)], BigInt(Math.floor(rand() * 2001) - 1000));
      await store.apply(batch);
    }
    const size = await store.size(ks);
    const deepOffset = Math.floor(KEYS * 0.9);
    const shallow = await median(RUNS, () => store!.page(ks, 0, PAGE));
    const deep = await median(RUNS, () => store!.page(ks, deepOffset, PAGE));
    const randomPage = await median(RUNS, () => store!.page(ks, Math.floor(rand() * (KEYS - PAGE)), PAGE));
    const rank = await median(RUNS, () => store!.rank(ks, names[Math.floor(rand() * KEYS)]));
    const around = await median(RUNS, () => store!.around(ks, names[Math.floor(rand() * KEYS)], PAGE));
    const page = await store.page(ks, deepOffset, PAGE);
    if (page.length !== PAGE || (await store.rank(ks, page[0].key)) !== deepOffset) throw new Error('deep page and rank disagree');

    console.log(`bench:pages — one keyspace of ${size.toLocaleString('en-US')} keys (built in ${buildSeconds.toFixed(1)} s through Store.apply)`);
    console.log(`  page(0, ${PAGE})                median ${ms(shallow)}`);
    console.log(`  page(${deepOffset.toLocaleString('en-US')}, ${PAGE})          median ${ms(deep)}   (${(deep / shallow).toFixed(2)}x shallow; target <= 3x)`);
    console.log(`  page(random, ${PAGE})           median ${ms(randomPage)}`);
    console.log(`  rank(random key)            median ${ms(rank)}`);
    console.log(`  around(random key, ${PAGE})     median ${ms(around)}`);
  } finally {
    await store?.close();
    await rm(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench:pages failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
