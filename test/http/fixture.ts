// A daemon for the console tests: `countd start --http-port 0` on a data
// directory seeded with a leaderboard of BOARD_KEYS keys, keyspaces with
// hostile names, and one damaged commit log that no worker claims (mode
// 0600), as countd-write leaves it and a disk could damage it.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { HEADER_SIZE, RECORD_HEADER_SIZE } from '../../lib/commitlog/format.js';
import type { DaemonRecord } from '../../lib/datadir/daemon-record.js';
import { Daemon, flipByte, startDaemon, startRole, tempDir, waitFor } from '../cli/helpers.js';

export const BOARD = 'board';
export const BOARD_KEYS = 1234;
/** Names that must be shown escaped and never become markup. */
export const HOSTILE_KEYSPACE = Buffer.from('odd\x01<script>alert(1)</script>');
export const HOSTILE_KEYSPACE_ESCAPED = 'odd\\x01<script>alert(1)</script>';
export const HOSTILE_KEYS: Array<{ key: Buffer; escaped: string; count: number }> = [
  { key: Buffer.from('<img src=x onerror="window.__pwned=1">'), escaped: '<img src=x onerror="window.__pwned=1">', count: 5 },
  { key: Buffer.from([0x6b, 0xff, 0x0a]), escaped: 'k\\xff\\n', count: 3 },
  { key: Buffer.from('tab\there'), escaped: 'tab\\there', count: 2 },
];
export const SMALL_KEYSPACES = 30;
/** A log with a damaged record that nobody claims (mode 0600). */
export const DAMAGED_LOG = 0;
/** A log whose header was wiped, quarantined (mode 0000) after its salvage. */
export const QUARANTINED_LOG = 1;

export function boardKey(i: number): string {
  return `player-${String(i).padStart(5, '0')}`;
}

/** Counts spread so that ranks differ from key order. */
export function boardCount(i: number): number {
  return ((i * 7919) % 10007) + 1;
}

export interface ConsoleDaemon {
  dir: string;
  daemon: Daemon;
  record: DaemonRecord;
  base: string;
}

/**
 * Log 0 written by countd-write alone (three records), one payload byte
 * flipped, left in mode 0600; log 1 a copy of it before the damage, its
 * header wiped, quarantined (mode 0000) as the worker leaves such a log.
 */
export async function damagedLog(dir: string): Promise<void> {
  const writer = startRole('countd-write', ['--data-dir', dir, '--port', '0', '--handover-ms', '60000']);
  const port = await waitFor('countd-write to listen', () => /running: write port (\d+)/.exec(writer.out.stderr)?.[1], 30_000);
  const client = new Client({ writePort: Number(port) });
  await client.increment('logged', 'first', 7);
  await client.increment('logged', 'second', 3);
  await client.increment('logged', 'third', 1);
  await client.close();
  writer.proc.kill('SIGTERM');
  assert.equal((await writer.exited).code, 0, writer.out.stderr);
  const log = path.join(dir, 'commitlog', '0000000000');
  await fsp.chmod(log, 0o600);
  const quarantined = path.join(dir, 'commitlog', '0000000001');
  await fsp.copyFile(log, quarantined);
  const fh = await fsp.open(quarantined, 'r+');
  try {
    await fh.write(Buffer.alloc(HEADER_SIZE), 0, HEADER_SIZE, 0);
  } finally {
    await fh.close();
  }
  await fsp.chmod(quarantined, 0o000);
  await flipByte(log, HEADER_SIZE + RECORD_HEADER_SIZE + 2);
}

export async function startConsoleDaemon(extra: string[] = []): Promise<ConsoleDaemon> {
  const dir = await tempDir('http');
  await damagedLog(dir);
  const { daemon, record } = await startDaemon(dir, ['--http-port', '0', ...extra]);
  assert.ok(record.httpPort! > 0, 'daemon.json records the HTTP port');
  const client = new Client({ writePort: record.writePort, readPort: record.readPort });
  const writes: Promise<void>[] = [];
  for (let i = 0; i < BOARD_KEYS; i++) writes.push(client.increment(BOARD, boardKey(i), boardCount(i)));
  for (let i = 0; i < SMALL_KEYSPACES; i++) writes.push(client.increment(`ks-${String(i).padStart(2, '0')}`, 'k', i + 1));
  for (const h of HOSTILE_KEYS) writes.push(client.increment(HOSTILE_KEYSPACE, h.key, h.count));
  await Promise.all(writes);
  await waitFor('the seed to be readable', async () => {
    const ks = await client.keyspaces();
    const board = ks.find((k) => k.name.toString() === BOARD);
    return ks.length === SMALL_KEYSPACES + 2 && board?.size === BigInt(BOARD_KEYS) ? true : undefined;
  }, 30_000, 50);
  await client.close();
  return { dir, daemon, record, base: `http://127.0.0.1:${record.httpPort}` };
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** One HTTP request; `json` is the parsed body when it is JSON. */
export function request(base: string, pathAndQuery: string, method = 'GET'): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(base + pathAndQuery, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        let json: unknown;
        if (body !== '' && /json/.test(res.headers['content-type'] ?? '')) json = JSON.parse(body);
        resolve({ status: res.statusCode!, headers: res.headers, body, json });
      });
    });
    req.on('error', reject);
    req.end();
  });
}
