/// <reference lib="dom" />
// The console in a real browser (headless Chromium, test/harness/browser.ts)
// against the real daemon: every page renders, its figures equal the API's
// and the CLI's, deep offsets and key search work, hostile names stay text,
// and no page logs an error.

import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { countd, killAll, removeDir, waitFor } from '../cli/helpers.js';
import { Browser, launchBrowser } from '../harness/browser.js';
import { BOARD, BOARD_KEYS, ConsoleDaemon, DAMAGED_LOG, QUARANTINED_LOG, HOSTILE_KEYS, HOSTILE_KEYSPACE_ESCAPED, SMALL_KEYSPACES, boardKey, request, startConsoleDaemon } from './fixture.js';

type Rows = string[][];

async function rows(page: Page, table: string): Promise<Rows> {
  return page.$$eval(`${table} tbody tr`, (trs) => trs.map((tr) => [...(tr as HTMLTableRowElement).cells].map((c) => c.textContent ?? '')));
}

const plain = (s: string): string => s.replace(/,/g, '');

/** Rows of a ranked table as the CLI prints `rank<TAB>key<TAB>count`. */
function asCli(r: Rows): string[] {
  return r.map(([rank, key, count]) => `${plain(rank!)}\t${key}\t${plain(count!)}`);
}

async function cliPage(dir: string, offset: number, length: number): Promise<string[]> {
  const out = (await countd(dir, 'read', BOARD, '--offset', String(offset), '--length', String(length))).stdout.trim().split('\n');
  return out.map((line, i) => `${offset + i}\t${line}`);
}

describe('console in headless Chromium', function () {
  this.timeout(60_000);
  let d: ConsoleDaemon;
  let browser: Browser;
  let page: Page;

  before(async function () {
    this.timeout(120_000);
    browser = await launchBrowser();
    d = await startConsoleDaemon();
    page = await browser.newPage();
  });

  after(async () => {
    await browser?.close();
    if (d) {
      await d.daemon.stop();
      await removeDir(d.dir);
    }
    await killAll();
  });

  afterEach(() => {
    assert.deepEqual(browser.errors.splice(0), [], 'no console errors');
  });

  it('overview: the daemon, the pool and the keyspace count as the API and `countd status` give them, and live charts', async () => {
    await page.goto(`${d.base}/`);
    await page.waitForSelector('[data-field="version"]');
    const api = (await request(d.base, '/api/v1/status')).json;
    const cli = JSON.parse((await countd(d.dir, 'status', '--json')).stdout);
    assert.equal(await page.textContent('[data-field="version"]'), api.version);
    assert.equal(await page.textContent('[data-field="pid"]'), String(cli.daemon.pid));
    assert.equal(await page.textContent('[data-field="dataDir"] code'), cli.dataDir);
    assert.match((await page.textContent('[data-field="listen"]'))!, new RegExp(`write ${cli.daemon.writePort}, read ${cli.daemon.readPort}, http ${d.record.httpPort}`));
    assert.equal(plain((await page.textContent('[data-field="keyspaces"]'))!), String(cli.keyspaces));
    assert.equal(cli.keyspaces, SMALL_KEYSPACES + 2);
    assert.equal(await page.textContent('[data-field="other mode"]'), String(api.commitLogs.other));
    assert.equal(await page.textContent('[data-field="quarantined"]'), String(cli.commitLogs.quarantined));
    assert.equal(cli.commitLogs.quarantined, 1);
    assert.equal(await page.textContent('[data-field="commit logs"]'), String(cli.commitLogs.logs));
    // Four charts, drawn by uPlot, whose legends fill in from the history.
    assert.equal(await page.locator('figure.chart canvas').count(), 4);
    for (const series of ['acked', 'applied', 'backlog', 'lag', 'stall']) {
      await page.waitForFunction((s) => /\d/.test(document.querySelector(`[data-series="${s}"]`)?.textContent ?? ''), series);
    }
  });

  it('keyspaces: the list of `countd keyspaces`, and the filter', async () => {
    await page.goto(`${d.base}/#/keyspaces`);
    await page.waitForSelector('#keyspace-table tbody tr');
    const cli = (await countd(d.dir, 'keyspaces')).stdout.trim().split('\n');
    assert.deepEqual((await rows(page, '#keyspace-table')).map(([name, keys]) => `${name}\t${plain(keys!)}`), cli);
    assert.match((await page.textContent('#keyspace-total'))!, new RegExp(`${cli.length} in all`));
    await page.fill('#keyspace-filter', 'ks-1');
    await page.waitForFunction(() => document.querySelectorAll('#keyspace-table tbody tr').length === 10);
    assert.deepEqual((await rows(page, '#keyspace-table')).map(([name]) => name), cli.map((l) => l.split('\t')[0]!).filter((n) => n.startsWith('ks-1')));
    assert.match(page.url(), /#\/keyspaces\?filter=ks-1$/);
    await page.click('#keyspace-table a');
    await page.waitForSelector('#page-table tbody tr');
    assert.match(page.url(), /#\/keyspace\?name=ks-10$/);
  });

  it('a leaderboard: the first page, the last page and a jump to a deep rank equal `countd read`', async () => {
    await page.goto(`${d.base}/#/keyspace?name=${BOARD}`);
    await page.waitForSelector('#page-table tbody tr');
    assert.equal(plain((await page.textContent('#keyspace-keys'))!), `${BOARD_KEYS} keys`);
    assert.deepEqual(asCli(await rows(page, '#page-table')), await cliPage(d.dir, 0, 50));
    await page.click('#page-last');
    await page.waitForFunction(() => document.querySelector('#page-table tbody tr td')?.textContent === '1,200');
    assert.deepEqual(asCli(await rows(page, '#page-table')), await cliPage(d.dir, 1200, 50));
    await page.fill('#jump-rank', '617');
    await page.click('#jump-go');
    await page.waitForFunction(() => document.querySelector('#page-table tbody tr td')?.textContent === '600');
    assert.match(page.url(), /offset=600/);
    assert.deepEqual(asCli(await rows(page, '#page-table')), await cliPage(d.dir, 600, 50));
    await page.click('#page-prev');
    await page.waitForFunction(() => document.querySelector('#page-table tbody tr td')?.textContent === '550');
    assert.deepEqual(asCli(await rows(page, '#page-table')), await cliPage(d.dir, 550, 50));
    // A deep link opens at its offset.
    await page.goto(`${d.base}/#/keyspace?name=${BOARD}&offset=1150`);
    await page.waitForFunction(() => document.querySelector('#page-table tbody tr td')?.textContent === '1,150');
    assert.deepEqual(asCli(await rows(page, '#page-table')), await cliPage(d.dir, 1150, 50));
  });

  it('key search: the rank of `countd rank` and the entries of `countd around`, the key highlighted', async () => {
    const key = boardKey(421);
    await page.goto(`${d.base}/#/keyspace?name=${BOARD}`);
    await page.fill('#key-search', key);
    await page.click('#key-go');
    await page.waitForSelector('#search-rank');
    const [rank, , count] = (await countd(d.dir, 'rank', BOARD, key)).stdout.trim().split('\t');
    assert.equal(plain((await page.textContent('#search-rank'))!), rank);
    assert.equal(plain((await page.textContent('#search-count'))!), count);
    const around = (await countd(d.dir, 'around', BOARD, key, '--n', '11')).stdout.trim().split('\n');
    assert.deepEqual(asCli(await rows(page, '#around-table')), around);
    assert.equal(await page.textContent('#around-table tr.hit td:nth-child(2)'), key);
  });

  it('a key that does not exist: the API error is shown with its code', async () => {
    await page.goto(`${d.base}/#/keyspace?name=${BOARD}&key=nobody`);
    await page.waitForSelector('#search-result .error');
    assert.match((await page.textContent('#search-result .error'))!, /^COUNTD_NOT_FOUND no key "nobody" in keyspace "board"/);
    // The browser logs the API's 404 as a failed resource: expected here, and only that.
    await waitFor('the failed request to be logged', () => (browser.errors.length > 0 ? true : undefined));
    const errors = browser.errors.splice(0);
    assert.ok(errors.every((e) => /status of 404/.test(e)), errors.join('\n'));
  });

  it('hostile names are shown in the escaped form of the CLI, as text', async () => {
    await page.goto(`${d.base}/#/keyspaces?filter=odd`);
    await page.waitForSelector('#keyspace-table tbody tr');
    assert.deepEqual((await rows(page, '#keyspace-table')).map(([n]) => n), [HOSTILE_KEYSPACE_ESCAPED]);
    await page.click('#keyspace-table a');
    await page.waitForSelector('#page-table tbody tr');
    assert.equal(await page.textContent('h1 bdi'), HOSTILE_KEYSPACE_ESCAPED);
    const cli = (await countd(d.dir, 'read', HOSTILE_KEYSPACE_ESCAPED, '--length', '50')).stdout.trim().split('\n');
    assert.deepEqual((await rows(page, '#page-table')).map(([, key, c]) => `${key}\t${c}`), cli);
    assert.deepEqual((await rows(page, '#page-table')).map(([, key]) => key).sort(), HOSTILE_KEYS.map((h) => h.escaped).sort());
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    assert.equal(await page.locator('main img, main script').count(), 0);
  });

  it('commit logs: every log with its state; a damaged and a quarantined one as `countd commitlog` reports them', async () => {
    await page.goto(`${d.base}/#/commitlogs`);
    await page.waitForSelector('#log-table tbody tr');
    const api = (await request(d.base, '/api/v1/commitlogs')).json;
    const table = await rows(page, '#log-table');
    assert.equal(table.length, api.logs.length);
    assert.deepEqual(table.map(([name, state]) => `${name} ${state}`), api.logs.map((l: { name: string; state: string }) => `${l.name} ${l.state}`));
    assert.equal(table.find(([name]) => name === '0000000000')![1], 'mode 600');
    assert.equal(table.find(([name]) => name === '0000000001')![1], 'quarantined');
    for (const index of [DAMAGED_LOG, QUARANTINED_LOG]) {
      await page.goto(`${d.base}/#/commitlogs`);
      await page.click(`a[href="#/commitlog/${index}"] >> nth=0`);
      await page.waitForSelector('#log-report');
      const cli = await countd(d.dir, 'commitlog', String(index));
      assert.deepEqual((await page.textContent('#log-report'))!.split('\n'), cli.stderr.trim().split('\n'));
      assert.ok(await page.isVisible('#log-damaged'));
      assert.equal(await page.isVisible('#log-quarantined'), index === QUARANTINED_LOG);
      assert.deepEqual((await rows(page, '#log-entries')).map((r) => r.join('\t')), cli.stdout.trim().split('\n'));
    }
  });
});

describe('the browser tests without Chromium', () => {
  it('fail loudly, saying how to install it', async () => {
    await assert.rejects(launchBrowser({ executablePath: '/nonexistent/chromium' }), /Chromium is not installed \(no \/nonexistent\/chromium\).*apt-get update && apt-get install -y chromium/);
  });
});
