// Issue 15 item 1: a commit log whose header is damaged while the daemon is
// down. The real daemon (`countd start`) acknowledges 5,000 increments into
// a log its writer still holds (--handover-ms 600000), is killed with
// SIGKILL, one byte of that log's header is flipped (offset 33, inside the
// streamId, so the header CRC fails), and the daemon is started again. Before
// the fix the log was released clean for reuse and 0 of the 5,000 were ever
// readable; now its records are salvaged exactly once and the log is
// quarantined (mode 0000) until the operator releases it.

import assert from 'node:assert/strict';
import fs, { promises as fsp } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { lockName, logName, parsePoolName } from '../../lib/commitlog/filenames.js';
import { DaemonRunner, killAllDaemons, waitUntil } from '../harness/daemon.js';
import { countd } from '../cli/helpers.js';
import { flipByte } from '../commitlog/helpers.js';

const FRAMES = 5000;
const KEYS = 50;

function httpGet(port: number, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

const modeOf = (file: string): number => fs.statSync(file).mode & 0o7777;

/** Every key's count through the daemon's read port (undefined counts as 0). */
async function readCounts(daemon: DaemonRunner): Promise<bigint[]> {
  const client = new Client({ host: '127.0.0.1', writePort: daemon.writePort!, readPort: daemon.readPort! });
  try {
    const counts: bigint[] = [];
    for (let k = 0; k < KEYS; k++) counts.push((await client.get('q', `key-${k}`)) ?? 0n);
    return counts;
  } finally {
    await client.close();
  }
}

describe('quarantine: a commit-log header damaged while the daemon is down (kill -9 of the real daemon)', function () {
  this.timeout(90_000);
  let root = '';

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-quarantine-'));
  });
  after(async () => {
    await killAllDaemons();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  it('5,000 acked increments in a held log, SIGKILL, header byte 33 flipped, restart: all 5,000 readable once, the log quarantined and reported', async () => {
    const dataDir = path.join(root, 'data');
    const pool = path.join(dataDir, 'commitlog');
    const daemon = new DaemonRunner(dataDir, ['--handover-ms', '600000', '--metrics-port', '0']);
    await daemon.start();
    const client = new Client({ host: '127.0.0.1', writePort: daemon.writePort!, readPort: daemon.readPort! });
    await Promise.all(Array.from({ length: FRAMES }, (_, i) => client.increment('q', `key-${i % KEYS}`)));
    await client.close();
    await daemon.kill('daemon');

    const held = (await fsp.readdir(pool)).map(parsePoolName).flatMap((p) => (p.kind === 'lock' ? [p.index] : []));
    assert.equal(held.length, 1, 'the writer held one log when it was killed');
    const index = held[0]!;
    const log = path.join(pool, logName(index));
    assert.equal(modeOf(log), 0o200, 'still clean: the writer never handed it over');
    flipByte(log, 33);

    await daemon.start();
    // Quarantined is mode 0000 and the worker's lock gone (it chmods, fsyncs, then unlocks).
    await waitUntil('the damaged log to be quarantined', () => modeOf(log) === 0o000 && !fs.existsSync(path.join(pool, lockName(index))), 30_000, 20);
    assert.deepEqual(await readCounts(daemon), Array.from({ length: KEYS }, () => BigInt(FRAMES / KEYS)), 'every acknowledged increment readable, once');

    // The gauge is set from a count of the pool right after the release.
    const metricsText = await waitUntil('the quarantine gauge', async () => {
      const text = await httpGet(daemon.record!.metricsPort!, '/metrics');
      return /^countd_worker_quarantined_logs 1$/m.test(text) ? text : undefined;
    }, 10_000, 20);
    assert.match(metricsText, new RegExp(`^countd_worker_frames_salvaged_total ${FRAMES}$`, 'm'));

    const json = await countd(dataDir, 'status', '--json');
    assert.equal(json.code, 0, json.stderr);
    const status = JSON.parse(json.stdout) as { commitLogs: { quarantined: number; quarantinedLogs: number[] } };
    assert.equal(status.commitLogs.quarantined, 1);
    assert.deepEqual(status.commitLogs.quarantinedLogs, [index]);
    const text = await countd(dataDir, 'status');
    assert.match(text.stdout, /quarantined 1\b/);
    assert.match(text.stdout, new RegExp(`QUARANTINED: +${logName(index)}`));

    // What the salvage applied, from the log itself.
    const shown = await countd(dataDir, 'commitlog', String(index));
    assert.equal(shown.code, 1, 'a damaged log exits 1');
    assert.equal(shown.stdout.trim().split('\n').length, FRAMES);
    assert.match(shown.stderr, /\(quarantined\): header cannot be verified/);
    assert.match(shown.stderr, new RegExp(`salvage: generation \\d+ \\(found by the header's generation field\\), \\d+ records, ${FRAMES} frames`));
    assert.match(shown.stderr, /damage at byte offset 0: header checksum mismatch; records of generation \d+ salvaged \(4096 bytes dropped\)/);

    // Killed again and restarted: the quarantined log is never applied twice nor reused.
    await daemon.kill('daemon');
    await daemon.start();
    const writer = new Client({ host: '127.0.0.1', writePort: daemon.writePort!, readPort: daemon.readPort! });
    await writer.increment('q', 'after');
    await writer.close();
    await daemon.stop();
    assert.equal(modeOf(log), 0o000, 'still quarantined after a restart and a clean stop');
    await daemon.start();
    await waitUntil('the increment after the restart to be readable', async () => {
      const c = new Client({ host: '127.0.0.1', writePort: daemon.writePort!, readPort: daemon.readPort! });
      try {
        return (await c.get('q', 'after')) === 1n;
      } finally {
        await c.close();
      }
    }, 20_000, 50);
    assert.deepEqual(await readCounts(daemon), Array.from({ length: KEYS }, () => BigInt(FRAMES / KEYS)), 'nothing applied twice');

    // The operator releases it: clean, reusable, no longer reported.
    const released = await countd(dataDir, 'commitlog', String(index), '--release');
    assert.equal(released.code, 0, released.stderr);
    assert.equal(modeOf(log), 0o200);
    const after = JSON.parse((await countd(dataDir, 'status', '--json')).stdout) as { commitLogs: { quarantined: number } };
    assert.equal(after.commitLogs.quarantined, 0);
    const again = await countd(dataDir, 'commitlog', String(index), '--release');
    assert.equal(again.code, 2, 'only a quarantined log can be released');
    assert.match(again.stderr, /is not quarantined/);
    await daemon.stop();
  });
});
