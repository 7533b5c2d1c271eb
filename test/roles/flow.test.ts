// Flow control's settings and delay curve (lib/roles/write/flow-bounds.ts):
// one test per error path of checkFlowBounds and checkBacklogSeconds, the
// shape of the curve, and the bounds in seconds of the measured drain rate.

import assert from 'node:assert/strict';
import { isCountdError } from '../../lib/errors.js';
import { MAX_ACK_DELAY_MS, MIN_BACKLOG_LOGS, RATE_SPAN, DEFAULT_BACKLOG_HARD, DEFAULT_BACKLOG_SECONDS, DEFAULT_BACKLOG_SOFT, ackDelayMs, checkBacklogSeconds, checkFlowBounds, delayedRate, timedBounds, MIN_TIMED_HARD_LOGS, MIN_TIMED_SOFT_LOGS } from '../../lib/roles/write/flow-bounds.js';
import { DrainMeter, FAST_WINDOW_LOGS, FAST_WINDOW_MS, WINDOW_MS } from '../../lib/roles/write/flow-drain.js';

const MiB = 1024 * 1024;
const LOG = 2 * MiB;

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => isCountdError(err) && err.code === 'COUNTD_INVALID_ARGUMENT' && pattern.test(err.message));
}

describe('flow control: settings', () => {
  it('defaults to 64 MiB soft and 128 MiB hard with 2 MiB logs', () => {
    assert.deepEqual(checkFlowBounds(undefined, undefined, LOG), { soft: DEFAULT_BACKLOG_SOFT, hard: DEFAULT_BACKLOG_HARD });
    assert.equal(DEFAULT_BACKLOG_SOFT, 64 * MiB);
    assert.equal(DEFAULT_BACKLOG_HARD, 128 * MiB);
  });
  it('a default follows the other bound and the log size', () => {
    assert.deepEqual(checkFlowBounds(256 * MiB, undefined, LOG), { soft: 256 * MiB, hard: 512 * MiB });
    assert.deepEqual(checkFlowBounds(undefined, 32 * MiB, LOG), { soft: 16 * MiB, hard: 32 * MiB });
    assert.deepEqual(checkFlowBounds(undefined, undefined, 64 * MiB), { soft: MIN_BACKLOG_LOGS * 64 * MiB, hard: 2 * MIN_BACKLOG_LOGS * 64 * MiB });
  });
  it('rejects a soft bound that is not a positive integer', () => {
    rejects(() => checkFlowBounds(1.5, undefined, LOG), /soft bound must be a positive integer/);
    rejects(() => checkFlowBounds(0, undefined, LOG), /soft bound must be a positive integer/);
  });
  it('rejects a hard bound that is not a positive integer', () => {
    rejects(() => checkFlowBounds(undefined, -1, LOG), /hard bound must be a positive integer/);
  });
  it('rejects a soft bound below a few logs', () => {
    rejects(() => checkFlowBounds(3 * LOG, undefined, LOG), /soft bound 6291456 is below 4 commit logs/);
  });
  it('rejects a hard bound at or below the soft bound', () => {
    rejects(() => checkFlowBounds(64 * MiB, 64 * MiB, LOG), /hard bound 67108864 must be above the soft bound 67108864/);
    rejects(() => checkFlowBounds(64 * MiB, 32 * MiB, LOG), /must be above the soft bound/);
  });
});

describe('flow control: delay curve', () => {
  const b = { soft: 64 * MiB, hard: 128 * MiB };
  const gap = b.hard - b.soft;

  it('holds nothing below the soft bound', () => {
    assert.equal(delayedRate(b.soft - 1, b), Infinity);
    assert.equal(ackDelayMs(MiB, 0, b), 0);
    assert.equal(ackDelayMs(MiB, b.soft - 1, b), 0);
  });
  it('admits the gap per second at the soft bound and 1/64 of it at the hard bound', () => {
    assert.equal(delayedRate(b.soft, b), gap);
    assert.equal(delayedRate(b.hard, b), gap / RATE_SPAN);
    assert.equal(delayedRate(b.hard * 2, b), gap / RATE_SPAN, 'no lower past the hard bound');
    // Halves every sixth of the way.
    assert.ok(Math.abs(delayedRate(b.soft + gap / 6, b) - gap / 2) < 1);
    assert.equal(ackDelayMs(64 * 1024, b.soft, b), 1000 * (64 * 1024) / gap);
  });
  it('grows the delay with the distance past the soft bound, up to its cap', () => {
    let last = 0;
    for (let i = 0; i <= 20; i++) {
      const d = ackDelayMs(256 * 1024, b.soft + (gap * i) / 20, b);
      assert.ok(d > last, `delay at step ${i} (${d}) above the one before (${last})`);
      last = d;
    }
    assert.equal(ackDelayMs(64 * MiB, b.hard, b), MAX_ACK_DELAY_MS);
    assert.equal(ackDelayMs(0, b.hard, b), 0, 'an empty batch waits for nothing');
  });
});

describe('flow control: bounds in time (--backlog-ms)', () => {
  const bytes = { soft: 64 * MiB, hard: 128 * MiB };

  it('defaults to one second and rejects what is not 0 to 3600 seconds', () => {
    assert.equal(checkBacklogSeconds(undefined), DEFAULT_BACKLOG_SECONDS);
    assert.equal(DEFAULT_BACKLOG_SECONDS, 1);
    assert.equal(checkBacklogSeconds(0), 0);
    rejects(() => checkBacklogSeconds(-0.5), /backlog seconds must be a number from 0 to 3600, got -0.5/);
    rejects(() => checkBacklogSeconds(Number.NaN), /backlog seconds must be a number from 0 to 3600, got NaN/);
    rejects(() => checkBacklogSeconds(3601), /got 3601/);
  });
  it('keeps the byte bounds until a drain rate is measured, or when off', () => {
    assert.deepEqual(timedBounds(bytes, 1, undefined, LOG), bytes);
    assert.deepEqual(timedBounds(bytes, 0, 10 * MiB, LOG), bytes);
  });
  it('bounds the backlog to the seconds of draining given, the soft bound at half', () => {
    assert.deepEqual(timedBounds(bytes, 1, 20 * MiB, LOG), { soft: 10 * MiB, hard: 20 * MiB, rate: 20 * MiB });
    assert.deepEqual(timedBounds(bytes, 0.5, 40 * MiB, LOG), { soft: 10 * MiB, hard: 20 * MiB, rate: 40 * MiB });
  });
  it('never goes above the byte bounds nor below three logs (hard) and two (soft)', () => {
    assert.deepEqual(timedBounds(bytes, 10, 100 * MiB, LOG), bytes);
    assert.deepEqual(timedBounds(bytes, 1, MiB, LOG), { soft: MIN_TIMED_SOFT_LOGS * LOG, hard: MIN_TIMED_HARD_LOGS * LOG, rate: LOG });
    assert.equal(MIN_TIMED_SOFT_LOGS, 2);
    assert.equal(MIN_TIMED_HARD_LOGS, 3);
  });
  it('slows the writer to the drain rate at the soft bound, 1/64 of it at the hard bound', () => {
    const b = timedBounds(bytes, 1, MiB, LOG);
    assert.equal(delayedRate(b.soft - 1, b), Infinity);
    assert.equal(delayedRate(b.soft, b), LOG, 'the gap (one log per second) when the drain is slower');
    const fast = timedBounds(bytes, 0.25, 40 * MiB, LOG);
    assert.equal(delayedRate(fast.soft, fast), 40 * MiB);
    assert.equal(delayedRate(fast.hard, fast), (40 * MiB) / RATE_SPAN);
  });
  it('measures the drain rate from the logs that leave the dirty state while a backlog is held', () => {
    const meter = new DrainMeter();
    assert.equal(meter.rate, undefined);
    // Nothing dirty: writes were slow, not applies fast; nothing is measured.
    meter.observe(0, new Map());
    meter.observe(5000, new Map([[1, LOG]]));
    assert.equal(meter.rate, undefined);
    // Log 1 applied and log 2 dirty 1 s later, log 2 applied 1 s after that: 2 logs in 2 s.
    meter.observe(6000, new Map([[2, LOG]]));
    assert.equal(meter.rate, undefined, 'a window is WINDOW_MS of backlog');
    meter.observe(5000 + WINDOW_MS, new Map());
    assert.equal(meter.rate, (2 * LOG * 1000) / WINDOW_MS);
    // Idle time after it does not count.
    meter.observe(60_000, new Map());
    assert.equal(meter.rate, (2 * LOG * 1000) / WINDOW_MS);
  });
  it('has no rate while the last window drained nothing (a stalled worker)', () => {
    const meter = new DrainMeter();
    meter.observe(0, new Map([[1, LOG], [2, LOG]]));
    meter.observe(WINDOW_MS, new Map([[2, LOG]]));
    assert.equal(meter.rate, (LOG * 1000) / WINDOW_MS);
    meter.observe(2 * WINDOW_MS, new Map([[2, LOG], [3, LOG]]));
    assert.equal(meter.rate, undefined, 'nothing applied for a whole window');
    meter.observe(3 * WINDOW_MS, new Map([[3, LOG]]));
    assert.equal(meter.rate, (LOG * 1000) / WINDOW_MS / 2, 'applying again: the average of the last two windows');
  });
  it('counts the logs made dirty and applied between two scans (a recycled pool at full load)', () => {
    const meter = new DrainMeter();
    // Log 1 stays dirty (being applied) while this writer hands over 3 more that are applied before the next scan.
    meter.observe(0, new Map([['1@a', LOG]]), 0);
    meter.observe(1000, new Map([['1@a', LOG]]), 3 * LOG);
    meter.observe(WINDOW_MS, new Map(), 3 * LOG);
    assert.equal(meter.rate, (4 * LOG * 1000) / WINDOW_MS, 'backlog before + handed over - backlog now');
  });
  it('tells two uses of one log apart (applied, then dirty again between two scans)', () => {
    const meter = new DrainMeter();
    meter.observe(0, new Map([['1@a', LOG], ['2@a', LOG]]));
    meter.observe(1000, new Map([['1@b', LOG], ['2@b', LOG]]));
    meter.observe(WINDOW_MS, new Map([['1@c', LOG], ['2@c', LOG]]));
    assert.equal(meter.rate, (4 * LOG * 1000) / WINDOW_MS, 'another writer\'s logs: each use that left counts');
  });
  it('closes a window early once it drained FAST_WINDOW_LOGS logs (a rising load meets its own rate soon)', () => {
    const meter = new DrainMeter(LOG);
    meter.observe(0, new Map([['1@a', LOG]]), 0);
    meter.observe(FAST_WINDOW_MS - 1, new Map([['1@a', LOG]]), FAST_WINDOW_LOGS * LOG);
    assert.equal(meter.rate, undefined, 'not before FAST_WINDOW_MS');
    meter.observe(FAST_WINDOW_MS, new Map([['1@a', LOG]]), FAST_WINDOW_LOGS * LOG);
    assert.equal(meter.rate, (FAST_WINDOW_LOGS * LOG * 1000) / FAST_WINDOW_MS);
    const slow = new DrainMeter(LOG);
    slow.observe(0, new Map([['1@a', LOG]]), 0);
    slow.observe(FAST_WINDOW_MS, new Map([['1@a', LOG]]), (FAST_WINDOW_LOGS - 1) * LOG);
    assert.equal(slow.rate, undefined, 'fewer logs: the window runs its WINDOW_MS');
  });
  it('averages the last two windows', () => {
    const meter = new DrainMeter();
    meter.observe(0, new Map([[1, LOG], [2, LOG], [3, LOG], [4, LOG]]));
    meter.observe(WINDOW_MS, new Map([[2, LOG], [3, LOG], [4, LOG]])); // 1 log
    meter.observe(2 * WINDOW_MS, new Map([[4, LOG]])); // 2 logs
    assert.equal(meter.rate, (1.5 * LOG * 1000) / WINDOW_MS);
    meter.observe(3 * WINDOW_MS, new Map([[5, LOG]])); // 1 log: the first window is dropped
    assert.equal(meter.rate, (1.5 * LOG * 1000) / WINDOW_MS);
    meter.observe(4 * WINDOW_MS, new Map([[6, LOG]])); // 1 log
    assert.equal(meter.rate, (LOG * 1000) / WINDOW_MS);
  });
});
