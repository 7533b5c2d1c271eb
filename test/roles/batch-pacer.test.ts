// The worker's batch pacer (lib/roles/work/batch-pacer.ts): batches hold what
// the store applies in the target time at the rate it measured.

import assert from 'node:assert/strict';
import { BatchPacer } from '../../lib/roles/work/batch-pacer.js';

describe('BatchPacer', () => {
  it('before any apply, assumes 100,000 keys/s', () => {
    assert.equal(new BatchPacer(500, 1_000_000).limit(), 50_000);
  });

  it('follows the measured rate: slower applies make smaller batches, faster ones bigger', () => {
    const pacer = new BatchPacer(500, 1_000_000);
    // 50,000 keys in 2 s: 25,000 keys/s, many times over.
    let t = 0;
    for (let i = 0; i < 20; i++) {
      pacer.record(50_000, t, t + 2000);
      t += 2000;
    }
    assert.ok(Math.abs(pacer.rate - 25_000) < 100, `rate ${pacer.rate}`);
    assert.ok(Math.abs(pacer.limit() - 12_500) < 100, `limit ${pacer.limit()}`);
    for (let i = 0; i < 20; i++) {
      pacer.record(50_000, t, t + 250);
      t += 250;
    }
    assert.ok(pacer.limit() > 90_000, `limit ${pacer.limit()}`);
  });

  it("counts only the store's busy time: an apply queued behind the one before is timed from that one's end", () => {
    const pacer = new BatchPacer(1000, 1_000_000);
    for (let i = 0; i < 30; i++) {
      // Handed over at the same time as the previous one finished... and 1 s earlier than that.
      const start = i * 1000;
      pacer.record(100_000, start - 1000, start + 1000);
    }
    assert.ok(Math.abs(pacer.rate - 100_000) < 1000, `rate ${pacer.rate}`);
  });

  it('ignores tiny batches (light traffic: their cost is the fsync), and stays within its bounds', () => {
    const pacer = new BatchPacer(500, 30_000);
    pacer.record(10, 0, 1000);
    assert.equal(pacer.rate, 100_000);
    assert.equal(pacer.limit(), 30_000, 'never above maxKeys');
    for (let i = 0; i < 50; i++) pacer.record(10_000, 2000 + i * 100_000, 2000 + (i + 1) * 100_000);
    assert.equal(pacer.limit(), 8192, 'never below the smallest useful batch');
    assert.equal(new BatchPacer(500, 1000).limit(), 1000, 'nor above a maxKeys below it');
  });
});
