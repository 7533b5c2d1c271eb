// The worker's watch on the commit-log pool (lib/roles/work/pool-watch.ts):
// it wakes on a lock link made or removed, not on other names, and not once
// stopped; a directory it cannot watch leaves polling alone, without error.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PoolWatch } from '../../lib/roles/work/pool-watch.js';
import { silentLogger } from '../../lib/util/log.js';

async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('worker: the watch on the commit-log pool', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-poolwatch-'));
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('wakes on a lock link made or removed, not on a log written or another name, and not once stopped', async () => {
    let wakes = 0;
    const watch = new PoolWatch(dir, () => wakes++, silentLogger);
    watch.start();
    watch.start(); // once only
    // Events arrive in order: the log's and the owner file's come before the lock's.
    await fsp.writeFile(path.join(dir, '0000000001'), 'x');
    await fsp.chmod(path.join(dir, '0000000001'), 0o400);
    await fsp.writeFile(path.join(dir, 'owner-0000000001'), 'x');
    await fsp.link(path.join(dir, '0000000001'), path.join(dir, 'lock-0000000001'));
    await until('a wake for the lock made', () => wakes >= 1);
    assert.equal(wakes, 1);
    await fsp.unlink(path.join(dir, 'lock-0000000001'));
    await until('a wake for the lock removed', () => wakes >= 2);
    assert.equal(wakes, 2);
    watch.stop();
    // Stopped: a second watch sees the next lock, the first does not.
    let other = 0;
    const second = new PoolWatch(dir, () => other++, silentLogger);
    second.start();
    await fsp.link(path.join(dir, '0000000001'), path.join(dir, 'lock-0000000001'));
    await until('the second watch woken', () => other >= 1);
    second.stop();
    assert.equal(wakes, 2);
  });

  it('a directory that cannot be watched: no error, no wake, and it does not try again', async () => {
    let wakes = 0;
    const missing = path.join(dir, 'missing');
    const watch = new PoolWatch(missing, () => wakes++, silentLogger);
    watch.start();
    // The directory appears; the watch gave up, so a lock made there wakes nothing (a watch of its own does).
    await fsp.mkdir(missing);
    watch.start();
    let other = 0;
    const second = new PoolWatch(missing, () => other++, silentLogger);
    second.start();
    await fsp.writeFile(path.join(missing, 'lock-0000000002'), 'x');
    await until('the second watch woken', () => other >= 1);
    second.stop();
    watch.stop();
    assert.equal(wakes, 0);
  });
});
