/// <reference lib="dom" />
// npm run bench:console: is the console responsive on a large daemon?
// Builds a data directory with 10,000 small keyspaces and one keyspace of
// 10,000,000 keys (Store.createKeyspace, the store's bulk load: one sorted
// pass), starts `countd start --http-port 0` on it, and measures (wall
// clock, median and max of several runs) the JSON API's answers and the
// console in headless Chromium: the keyspace list and its filter, the
// leaderboard's first page, a deep link at rank 9,999,950, the "last" and
// "go to rank" navigation, and a key search.
//
// Options (environment): COUNTD_BENCH_DIR (default os.tmpdir()),
// BIG_KEYS (10,000,000), SMALL_KEYSPACES (10,000), RUNS (5),
// KEEP_DIR=1 (keep the data directory; a later run with COUNTD_BENCH_DATA
// pointing at it skips the build).

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { openDataDir } from '../lib/datadir/meta.js';
import { Store } from '../lib/store/store.js';
import { COUNTD_BIN } from '../test/harness/daemon.js';
import { Browser, launchBrowser } from '../test/harness/browser.js';
import { formatMachineFacts, machineFacts } from './lib/machine.js';
import type { DaemonRecord } from '../lib/datadir/daemon-record.js';
import { promises as fsp } from 'node:fs';

const BIG_KEYS = Number(process.env.BIG_KEYS ?? 10_000_000);
const SMALL = Number(process.env.SMALL_KEYSPACES ?? 10_000);
const RUNS = Number(process.env.RUNS ?? 5);
const BIG = 'leaderboard';
const CHUNK = 1_000_000;

const bigKey = (i: number): string => `user-${String(i).padStart(8, '0')}`;
/** Counts spread over 1..1e9, a permutation-like spread so that rank order differs from key order. */
const bigCount = (i: number): bigint => BigInt(((i * 2654435761) % 1_000_000_007) + 1);

async function build(root: string): Promise<void> {
  const dir = await openDataDir(root, { create: true });
  const store = await Store.open({ location: dir.paths.db, sizes: dir.sizes });
  try {
    let t = Date.now();
    for (let k = 0; k < SMALL; k++) {
      const n = 1 + (k % 50);
      const keys = Array.from({ length: n }, (_, i) => Buffer.from(`k${i}`));
      await store.createKeyspace(`ks-${String(k).padStart(5, '0')}`, keys, keys.map((_, i) => BigInt(i + 1)));
    }
    console.log(`  ${SMALL.toLocaleString('en-US')} small keyspaces built in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    t = Date.now();
    const keys: Buffer[] = new Array(BIG_KEYS);
    const counts: bigint[] = new Array(BIG_KEYS);
    for (let i = 0; i < BIG_KEYS; i++) {
      keys[i] = Buffer.from(bigKey(i));
      counts[i] = bigCount(i);
      if (i % CHUNK === 0 && i > 0) process.stdout.write(`  … ${i.toLocaleString('en-US')} keys prepared\r`);
    }
    await store.createKeyspace(BIG, keys, counts);
    console.log(`  one keyspace of ${BIG_KEYS.toLocaleString('en-US')} keys built in ${((Date.now() - t) / 1000).toFixed(1)} s (Store.createKeyspace)`);
  } finally {
    await store.close();
  }
}

function get(base: string, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(base + p, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

async function startDaemon(root: string): Promise<{ record: DaemonRecord; stop: () => Promise<void> }> {
  const proc = spawn(process.execPath, [COUNTD_BIN, 'start', '--data-dir', root, '--write-port', '0', '--read-port', '0', '--http-port', '0'], { stdio: ['ignore', 'ignore', 'ignore'] });
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      const record = JSON.parse(await fsp.readFile(path.join(root, 'daemon.json'), 'utf8')) as DaemonRecord;
      if (record.pid === proc.pid) return { record, stop: async () => { proc.kill('SIGTERM'); await exited; } };
    } catch {
      // not yet written
    }
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error('the daemon did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Figure { what: string; ms: number[] }
const figures: Figure[] = [];

async function measure(what: string, fn: () => Promise<void>, before?: () => Promise<void>): Promise<void> {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await before?.();
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  figures.push({ what, ms });
  const sorted = [...ms].sort((a, b) => a - b);
  console.log(`  ${what.padEnd(68)} median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1).padStart(7)} ms   max ${sorted.at(-1)!.toFixed(1).padStart(7)} ms`);
}

const DEEP = BIG_KEYS - 50;
const PROBE = bigKey(4_242_424 % BIG_KEYS);

async function measureApi(base: string): Promise<void> {
  console.log('JSON API (one request at a time, after one warm-up):');
  const api = async (what: string, p: string): Promise<void> => {
    const first = await get(base, p);
    if (first.status !== 200) throw new Error(`${p}: ${first.status} ${first.body}`);
    await measure(what, async () => void (await get(base, p)));
  };
  // The keyspace list is fetched from the read port at most once a second; measure both sides of that.
  await measure(
    `GET /api/v1/keyspaces?limit=50 (the list of ${(SMALL + 1).toLocaleString('en-US')} refetched)`,
    async () => void (await get(base, '/api/v1/keyspaces?limit=50')),
    () => new Promise((r) => setTimeout(r, 1100)),
  );
  await api('GET /api/v1/keyspaces?limit=50 (list cached)', '/api/v1/keyspaces?limit=50');
  await api('GET /api/v1/keyspaces?filter=ks-0999&limit=50', '/api/v1/keyspaces?filter=ks-0999&limit=50');
  await api('GET /api/v1/keyspaces?sort=keys&limit=50', '/api/v1/keyspaces?sort=keys&limit=50');
  await api('GET /api/v1/status', '/api/v1/status');
  await api(`GET /api/v1/keyspace?name=${BIG}&offset=0&limit=50`, `/api/v1/keyspace?name=${BIG}&offset=0&limit=50`);
  await api(`GET /api/v1/keyspace?name=${BIG}&offset=${Math.floor(BIG_KEYS / 2)}&limit=50`, `/api/v1/keyspace?name=${BIG}&offset=${Math.floor(BIG_KEYS / 2)}&limit=50`);
  await api(`GET /api/v1/keyspace?name=${BIG}&offset=${DEEP}&limit=50`, `/api/v1/keyspace?name=${BIG}&offset=${DEEP}&limit=50`);
  await api(`GET /api/v1/keyspace/search?name=${BIG}&key=${PROBE}`, `/api/v1/keyspace/search?name=${BIG}&key=${PROBE}`);
  // Cold pages: a fresh offset each run (no cache has it).
  let cold = 1_000_003;
  await measure(`GET /api/v1/keyspace?name=${BIG}&offset=<a new deep offset each run>`, async () => {
    cold += 1_234_567;
    const r = await get(base, `/api/v1/keyspace?name=${BIG}&offset=${cold % BIG_KEYS}&limit=50`);
    if (r.status !== 200) throw new Error(r.body);
  });
}

async function measureConsole(base: string, browser: Browser): Promise<void> {
  console.log('Console in headless Chromium (navigation to rendered rows):');
  const page = await browser.newPage();
  // A full page load each run: the page, its modules and libraries, then the API calls.
  const blank = async (): Promise<void> => void (await page.goto('about:blank'));
  const firstCell = (v: string) => page.waitForFunction((want) => document.querySelector('#page-table tbody tr td')?.textContent === want, v, { timeout: 60_000 });
  await measure(`keyspace list: load the page, 50 of ${(SMALL + 1).toLocaleString('en-US')} rows`, async () => {
    await page.goto(`${base}/#/keyspaces`);
    await page.waitForSelector('#keyspace-table tbody tr');
  }, blank);
  await measure('keyspace list: type a filter, rows updated (250 ms typing pause included)', async () => {
    await page.fill('#keyspace-filter', 'ks-0999');
    await page.waitForFunction(() => document.querySelectorAll('#keyspace-table tbody tr').length === 10);
  }, async () => {
    await page.goto(`${base}/#/keyspaces`);
    await page.waitForSelector('#keyspace-table tbody tr');
  });
  await measure(`leaderboard (${BIG_KEYS.toLocaleString('en-US')} keys): load at rank 0`, async () => {
    await page.goto(`${base}/#/keyspace?name=${BIG}`);
    await firstCell('0');
  }, blank);
  await measure(`leaderboard: deep link at rank ${DEEP.toLocaleString('en-US')}`, async () => {
    await page.goto(`${base}/#/keyspace?name=${BIG}&offset=${DEEP}`);
    await firstCell(DEEP.toLocaleString('en-US'));
  }, blank);
  await measure('leaderboard: click "last »" from rank 0', async () => {
    await page.click('#page-last');
    await firstCell((Math.floor((BIG_KEYS - 1) / 50) * 50).toLocaleString('en-US'));
  }, async () => {
    await page.goto(`${base}/#/keyspace?name=${BIG}`);
    await firstCell('0');
  });
  let jump = 123_457;
  await measure('leaderboard: "go to rank" to a new deep rank each run', async () => {
    jump = (jump + 2_345_678) % BIG_KEYS;
    await page.fill('#jump-rank', String(jump));
    await page.click('#jump-go');
    await firstCell((Math.floor(jump / 50) * 50).toLocaleString('en-US'));
  });
  await measure('leaderboard: key search, rank and the entries around it', async () => {
    await page.fill('#key-search', PROBE);
    await page.click('#key-go');
    await page.waitForSelector('#around-table tr.hit');
  }, async () => {
    await page.goto(`${base}/#/keyspace?name=${BIG}`);
    await firstCell('0');
  });
}

async function main(): Promise<void> {
  console.log('bench:console');
  const given = process.env.COUNTD_BENCH_DATA;
  const root = given ?? (await mkdtemp(path.join(process.env.COUNTD_BENCH_DIR ?? os.tmpdir(), 'countd-bench-console-')));
  for (const line of formatMachineFacts(machineFacts(root, undefined))) console.log(`  ${line}`);
  if (!given) await build(root);
  const daemon = await startDaemon(root);
  const base = `http://127.0.0.1:${daemon.record.httpPort}`;
  const browser = await launchBrowser({ viewport: { width: 1280, height: 900 } });
  try {
    await measureApi(base);
    await measureConsole(base, browser);
    if (browser.errors.length > 0) throw new Error(`console errors:\n${browser.errors.join('\n')}`);
  } finally {
    await browser.close();
    await daemon.stop();
    if (!given && process.env.KEEP_DIR !== '1') await rm(root, { recursive: true, force: true });
    else console.log(`data directory kept: ${root}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
