// Flow control's bounds in time (--backlog-ms) on a real pool directory:
// logs leave the dirty state at a known pace (a stand-in worker chmods one
// log clean and another dirty every 100 ms), and FlowControl must measure
// that drain rate from its scans and put its bounds in force at a second of
// it, within the byte bounds (lib/roles/write/flow.ts, flow-drain.ts).

import assert from 'node:assert/strict';
import fs, { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type FileOps, realFileOps } from '../../lib/commitlog/fileops.js';
import { logName } from '../../lib/commitlog/filenames.js';
import { HandOvers } from '../../lib/commitlog/handover.js';
import { MODE_CLEAN, MODE_DIRTY } from '../../lib/commitlog/pool.js';
import { FlowControl } from '../../lib/roles/write/flow.js';
import { MIN_TIMED_HARD_LOGS, MIN_TIMED_SOFT_LOGS } from '../../lib/roles/write/flow-bounds.js';
import { silentLogger } from '../../lib/util/log.js';
import { waitUntil } from '../harness/daemon.js';

const LOG = 64 * 1024;
const BYTES = { soft: 256 * LOG, hard: 512 * LOG };

describe('flow control: bounds in time on a draining pool', function () {
  this.timeout(30_000);
  let dir: string;
  let flow: FlowControl | undefined;
  let pacing: NodeJS.Timeout | undefined;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-flow-timed-'));
  });
  afterEach(async () => {
    clearInterval(pacing);
    flow?.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  /** Logs 0..3 dirty; every 100 ms the oldest goes clean and a new one dirty: 10 logs a second. */
  async function drainingPool(): Promise<void> {
    const make = async (i: number): Promise<void> => {
      const file = path.join(dir, logName(i));
      await fsp.writeFile(file, Buffer.alloc(LOG));
      await fsp.chmod(file, MODE_DIRTY);
    };
    for (let i = 0; i < 4; i++) await make(i);
    let oldest = 0;
    pacing = setInterval(() => {
      const i = oldest++;
      void fsp.chmod(path.join(dir, logName(i)), MODE_CLEAN).then(() => make(i + 4));
    }, 100);
  }

  it('measures the drain rate and bounds the backlog to a second of it', async () => {
    await drainingPool();
    flow = new FlowControl({ dir, bounds: BYTES, seconds: 1, logSize: LOG, logger: silentLogger, pollMs: 20 });
    assert.deepEqual(flow.current, BYTES, 'the byte bounds until a rate is measured');
    flow.start();
    await waitUntil('a drain rate measured', () => flow!.drainRate !== undefined, 10_000, 20);
    const rate = flow.drainRate!;
    // 10 logs a second, give or take the timers of a busy machine.
    assert.ok(rate > 3 * LOG && rate < 20 * LOG, `drain rate ${rate} bytes/s`);
    const b = flow.current;
    assert.equal(b.hard, Math.max(MIN_TIMED_HARD_LOGS * LOG, Math.floor(rate)));
    assert.equal(b.soft, Math.max(MIN_TIMED_SOFT_LOGS * LOG, Math.floor(b.hard / 2)));
    assert.ok(b.hard < BYTES.hard);
    const report = flow.report();
    assert.equal(report.soft, BYTES.soft, 'the report keeps the settings');
    assert.equal(report.hard, BYTES.hard);
    assert.deepEqual(report.inForce, b);
    assert.equal(report.drainRate, Math.round(rate));
  });

  it('measures the drain rate of a recycled pool: the same logs applied and made dirty again between scans', async () => {
    // What a writer and a worker do at full load: a few logs, each written
    // (new data), handed over and applied several times a second.
    const logs = 4;
    for (let i = 0; i < logs; i++) await fsp.writeFile(path.join(dir, logName(i)), Buffer.alloc(LOG));
    let added = 0;
    let next = 0;
    let busy = false;
    pacing = setInterval(() => {
      if (busy) return;
      busy = true;
      const file = path.join(dir, logName(next++ % logs));
      void (async () => {
        await fsp.chmod(file, MODE_CLEAN);
        await fsp.writeFile(file, Buffer.alloc(LOG, next & 0xff));
        await fsp.chmod(file, MODE_DIRTY);
        added += LOG;
      })().finally(() => (busy = false));
    }, 25);
    flow = new FlowControl({ dir, bounds: BYTES, seconds: 1, logSize: LOG, logger: silentLogger, pollMs: 20 });
    flow.attach(() => 0, () => {}, () => added);
    flow.start();
    await waitUntil('a drain rate measured', () => flow!.drainRate !== undefined, 10_000, 20);
    const t0 = performance.now();
    const a0 = added;
    await waitUntil('another window', () => performance.now() - t0 > 2500, 10_000, 50);
    const offered = ((added - a0) * 1000) / (performance.now() - t0);
    const rate = flow.drainRate!;
    // Up to 40 logs a second, each dirty for at most 25 ms: the scans see
    // every index dirty nearly always, yet the pool drains what is offered.
    assert.ok(rate > offered / 3, `drain rate ${Math.round(rate)} bytes/s, logs handed over at ${Math.round(offered)} bytes/s`);
  });

  it('counts a log being handed over once, before and after its chmod: a writer that keeps up is not delayed', async () => {
    // A writer's hand-overs held at two points: log 0 chmodded dirty (its
    // fsync not done), log 1 before its chmod. The scan sees log 0 dirty.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const ops: FileOps = {
      ...realFileOps,
      fsync: async (fd) => {
        await held;
        return realFileOps.fsync(fd);
      },
      chmod: async (p, mode) => {
        if (p.endsWith(logName(1))) await held;
        return realFileOps.chmod(p, mode);
      },
    };
    const handOvers = new HandOvers(ops, dir, silentLogger);
    for (const index of [0, 1]) {
      const file = path.join(dir, logName(index));
      await fsp.writeFile(file, Buffer.alloc(LOG));
      const fd = await realFileOps.open(file, fs.constants.O_RDWR);
      handOvers.start({ index, path: file, fd, dirty: true, seal: null, sealAt: 0, reason: 'full', frames: 1, size: LOG });
    }
    // Soft at three logs: two logs (one applied, one handed over) are below it.
    flow = new FlowControl({ dir, bounds: { soft: 3 * LOG, hard: 4 * LOG }, seconds: 0, logSize: LOG, logger: silentLogger, pollMs: 20 });
    flow.attach((seen) => handOvers.handingOver(seen), () => {});
    try {
      await waitUntil('log 0 dirty on disk', async () => ((await fsp.stat(path.join(dir, logName(0)))).mode & 0o777) === MODE_DIRTY, 5_000, 10);
      flow.start();
      await waitUntil('a scan that saw log 0', () => flow!.report().backlogBytes > 0, 5_000, 10);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(flow.backlog, 2 * LOG, 'log 0 once (dirty on disk, still being handed over), log 1 once (being handed over)');
      assert.equal(flow.state, 'normal');
      assert.equal(flow.delayMs(64 * 1024), 0, 'no acknowledgement held');
    } finally {
      release();
      await handOvers.settle();
    }
    assert.equal(handOvers.handingOver(), 0);
  });

  it('keeps the byte bounds with --backlog-ms 0', async () => {
    await drainingPool();
    flow = new FlowControl({ dir, bounds: BYTES, seconds: 0, logSize: LOG, logger: silentLogger, pollMs: 20 });
    flow.start();
    await waitUntil('a drain rate measured', () => flow!.drainRate !== undefined, 10_000, 20);
    assert.deepEqual(flow.current, BYTES);
    assert.equal(flow.report().inForce, undefined);
  });

  it('admits a new log from a scan at most two polls old when it leaves room (no scan on the commit path), and scans afresh when the logs this writer made dirty since might not leave room', async () => {
    for (let i = 0; i < 2; i++) {
      const file = path.join(dir, logName(i));
      await fsp.writeFile(file, Buffer.alloc(LOG));
      await fsp.chmod(file, MODE_DIRTY);
    }
    let scans = 0;
    const ops: FileOps = {
      ...realFileOps,
      readdir: (d) => {
        scans++;
        return realFileOps.readdir(d);
      },
    };
    let added = 0;
    // No poll during the test (10 s): only start()'s first scan and admit()'s own.
    flow = new FlowControl({ dir, bounds: { soft: 4 * LOG, hard: 6 * LOG }, seconds: 0, logSize: LOG, ops, logger: silentLogger, pollMs: 10_000 });
    flow.attach(() => 0, () => {}, () => added);
    flow.start();
    await waitUntil('the first scan', () => flow!.report().backlogBytes === 2 * LOG, 5_000, 10);
    assert.equal(scans, 1);
    await flow.admit(LOG);
    assert.equal(scans, 1, 'two dirty logs + one: admitted by the last scan');
    // This writer made three logs dirty since: 2 + 3 + 1 = 6 logs, at the hard bound, still fits.
    added = 3 * LOG;
    await flow.admit(LOG);
    assert.equal(scans, 1);
    // Four since: 7 logs by the last scan, over the bound; a fresh scan finds two (a worker applied them).
    added = 4 * LOG;
    await flow.admit(LOG);
    assert.equal(scans, 2, 'scanned afresh');
    assert.equal(flow.state, 'normal');
    // A scan older than two polls is not used.
    const stale = new FlowControl({ dir, bounds: { soft: 4 * LOG, hard: 6 * LOG }, seconds: 0, logSize: LOG, ops, logger: silentLogger, pollMs: 10 });
    stale.attach(() => 0, () => {}, () => 0);
    await stale.admit(LOG);
    assert.equal(scans, 3);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await stale.admit(LOG);
    assert.equal(scans, 4, 'the last scan is older than two polls');
    stale.close();
  });
});
