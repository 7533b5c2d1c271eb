/// <reference lib="dom" />
// `npm run screenshots`: the console's pages as PNGs in docs/console/, taken
// with headless Chromium against a daemon seeded with data and kept busy by
// a steady write load, so that the charts show the last minute of a live
// daemon. Run on demand (about a minute), not by the test suite.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { killAll, removeDir, startDaemon, tempDir } from '../cli/helpers.js';
import { launchBrowser } from '../harness/browser.js';
import { mulberry32 } from '../harness/rng.js';
import { ROOT } from '../harness/daemon.js';
import { damagedLog } from './fixture.js';

const OUT = path.join(ROOT, 'docs', 'console');
const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? 50);
const PLAYERS = 20_000;
const NAMES = ['ada', 'bjorn', 'chen', 'dara', 'emeka', 'farah', 'goran', 'hana', 'ivo', 'jun', 'kai', 'lena', 'mateo', 'noor', 'oskar', 'priya'];

function player(i: number): string {
  return `${NAMES[i % NAMES.length]}_${String(i).padStart(5, '0')}`;
}

async function seed(client: Client, rand: () => number): Promise<void> {
  const writes: Promise<void>[] = [];
  const flush = async (): Promise<void> => {
    await Promise.all(writes.splice(0));
  };
  for (let i = 0; i < PLAYERS; i++) {
    // A long tail: few players score high.
    writes.push(client.increment('game:season-7', player(i), Math.floor(1_000_000 / (1 + i * (0.5 + rand())))));
    if (writes.length >= 2000) await flush();
  }
  const small: Record<string, string[]> = {
    'pages:views': ['/', '/pricing', '/docs', '/docs/install', '/blog', '/blog/countd-0.5', '/about', '/careers'],
    'referrers': ['news.example', 'search.example', 'chat.example', 'mail.example', '(direct)'],
    'countries': ['NL', 'DE', 'FR', 'BR', 'IN', 'JP', 'US', 'KE', 'NG', 'AU'],
    'game:season-6': NAMES,
    'errors:by-code': ['E_TIMEOUT', 'E_AUTH', 'E_QUOTA', 'caf\\xe9 \\x01 raw bytes'],
  };
  for (const [ks, keys] of Object.entries(small)) {
    keys.forEach((k, i) => writes.push(client.increment(ks, Buffer.from(k.replace(/\\x([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1'), 10 + Math.floor(rand() * 5000) * (keys.length - i))));
  }
  for (let i = 0; i < 40; i++) writes.push(client.increment(`tenant-${String(i).padStart(3, '0')}:logins`, `user-${i}`, 1 + i));
  await flush();
}

/** A write load that rises and falls, so that the charts have a shape. */
async function load(client: Client, rand: () => number, seconds: number): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const phase = (Date.now() % 30_000) / 30_000;
    const perTick = Math.floor(150 + 250 * Math.sin(phase * 2 * Math.PI) ** 2);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < perTick; i++) writes.push(client.increment('game:season-7', player(Math.floor(PLAYERS * rand() ** 3)), 1 + Math.floor(rand() * 50)));
    await Promise.all(writes);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const dir = await tempDir('screenshots');
  const browser = await launchBrowser({ viewport: { width: 1280, height: 900 } });
  try {
    await damagedLog(dir);
    const { daemon, record } = await startDaemon(dir, ['--http-port', '0']);
    const base = `http://127.0.0.1:${record.httpPort}`;
    const client = new Client({ writePort: record.writePort, readPort: record.readPort });
    const rand = mulberry32(7);
    console.log(`seeding ${dir} …`);
    await seed(client, rand);
    console.log(`write load for ${LOAD_SECONDS} s …`);
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    await load(client, rand, LOAD_SECONDS);
    await fsp.mkdir(OUT, { recursive: true });
    const shot = async (name: string, hash: string, ready: string, fullPage = false): Promise<void> => {
      await page.goto(`${base}/${hash}`);
      await page.waitForSelector(ready);
      await page.waitForLoadState('networkidle').catch(() => {});
      await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage });
      console.log(`docs/console/${name}.png`);
    };
    await page.goto(`${base}/`);
    await page.waitForSelector('[data-field="version"]');
    // The charts fill from the server's history on load.
    await page.waitForFunction(() => /\d/.test(document.querySelector('[data-series="acked"]')?.textContent ?? ''));
    await page.screenshot({ path: path.join(OUT, 'overview.png'), fullPage: true });
    console.log('docs/console/overview.png');
    await shot('keyspaces', '#/keyspaces', '#keyspace-table tbody tr');
    await shot('leaderboard', '#/keyspace?name=game%3Aseason-7&offset=9000', '#page-table tbody tr');
    await shot('key-search', `#/keyspace?name=game%3Aseason-7&key=${player(4242)}`, '#around-table tbody tr');
    await shot('commitlogs', '#/commitlogs', '#log-table tbody tr');
    await shot('commitlog-damaged', '#/commitlog/0', '#log-report');
    await shot('commitlog-quarantined', '#/commitlog/1', '#log-report');
    if (browser.errors.length > 0) throw new Error(`console errors:\n${browser.errors.join('\n')}`);
    await client.close();
    await daemon.stop();
  } finally {
    await browser.close();
    await killAll();
    await removeDir(dir);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
