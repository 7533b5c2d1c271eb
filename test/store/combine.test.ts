// The combine rule (lib/store/combine.ts): exact sums while a batch is
// summed, clamped to the signed 64-bit range when applied.

import assert from 'node:assert/strict';
import { INT64_MAX, INT64_MIN } from '../../lib/protocol/fields.js';
import { addDeltas, fitsInt64, saturate } from '../../lib/store/combine.js';

describe('combine rule', () => {
  it('sums deltas exactly, past the int64 range', () => {
    assert.equal(addDeltas(INT64_MAX, INT64_MAX), 2n * INT64_MAX);
    assert.equal(addDeltas(INT64_MIN, -1n), INT64_MIN - 1n);
    assert.equal(addDeltas(addDeltas(INT64_MAX, 5n), -5n), INT64_MAX, 'a sum that leaves the range and comes back is exact');
  });

  it('saturates an applied sum at the bounds, and leaves sums inside alone', () => {
    assert.equal(saturate(INT64_MAX + 1n), INT64_MAX);
    assert.equal(saturate(2n * INT64_MAX), INT64_MAX);
    assert.equal(saturate(INT64_MIN - 1n), INT64_MIN);
    for (const v of [0n, -1n, 1n, INT64_MAX, INT64_MIN, 123456789n]) assert.equal(saturate(v), v);
  });

  it('tells sums that fit a signed 64-bit field', () => {
    assert.equal(fitsInt64(INT64_MAX), true);
    assert.equal(fitsInt64(INT64_MIN), true);
    assert.equal(fitsInt64(INT64_MAX + 1n), false);
    assert.equal(fitsInt64(INT64_MIN - 1n), false);
  });
});
