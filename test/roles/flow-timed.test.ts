// Flow control's bounds in time (--backlog-ms) on a real pool directory:
// logs leave the dirty state at a known pace (a stand-in worker chmods one
// log clean and another dirty every 100 ms), and FlowControl must measure
// that drain rate from its scans and put its bounds in force at a second of
// it, within the byte bounds (lib/roles/write/flow.ts, flow-drain.ts).

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { logName } from '../../lib/commitlog/filenames.js';
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

  it('keeps the byte bounds with --backlog-ms 0', async () => {
    await drainingPool();
    flow = new FlowControl({ dir, bounds: BYTES, seconds: 0, logSize: LOG, logger: silentLogger, pollMs: 20 });
    flow.start();
    await waitUntil('a drain rate measured', () => flow!.drainRate !== undefined, 10_000, 20);
    assert.deepEqual(flow.current, BYTES);
    assert.equal(flow.report().inForce, undefined);
  });
});
