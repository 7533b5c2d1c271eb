// Flow control's settings and delay curve (lib/roles/write/flow-bounds.ts):
// one test per error path of checkFlowBounds, and the shape of the curve.

import assert from 'node:assert/strict';
import { isCountdError } from '../../lib/errors.js';
import { MAX_ACK_DELAY_MS, MIN_BACKLOG_LOGS, RATE_SPAN, DEFAULT_BACKLOG_HARD, DEFAULT_BACKLOG_SOFT, ackDelayMs, checkFlowBounds, delayedRate } from '../../lib/roles/write/flow-bounds.js';

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
