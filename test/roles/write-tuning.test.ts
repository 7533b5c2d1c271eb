// countd-write's settings from its environment (lib/roles/write/tuning.ts):
// each value understood, and each one not understood refused with a clear
// error rather than ignored.

import assert from 'node:assert/strict';
import { isCountdError } from '../../lib/errors.js';
import { commitTuningFromEnv } from '../../lib/roles/write/tuning.js';

describe('countd-write tuning from the environment', function () {
  it('is empty when nothing is set (the defaults apply)', function () {
    assert.deepEqual(commitTuningFromEnv({}), {});
    assert.deepEqual(commitTuningFromEnv({ COUNTD_COMMIT_DURABILITY: '', COUNTD_INLINE_MAX: '' }), {});
  });

  it('reads COUNTD_COMMIT_DURABILITY and COUNTD_INLINE_MAX', function () {
    assert.deepEqual(commitTuningFromEnv({ COUNTD_COMMIT_DURABILITY: 'fdatasync', COUNTD_INLINE_MAX: '0' }), { durability: 'fdatasync', inlineMax: 0 });
    assert.deepEqual(commitTuningFromEnv({ COUNTD_COMMIT_DURABILITY: 'dsync', COUNTD_INLINE_MAX: '12' }), { durability: 'dsync', inlineMax: 12 });
  });

  it('refuses a durability it does not know', function () {
    assert.throws(
      () => commitTuningFromEnv({ COUNTD_COMMIT_DURABILITY: 'none' }),
      (err: unknown) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT') && /COUNTD_COMMIT_DURABILITY must be one of dsync, fdatasync, got "none"/.test(err.message),
    );
  });

  it('refuses an inline bound that is not a whole number', function () {
    for (const bad of ['-1', '2.5', 'four', '1e3']) {
      assert.throws(
        () => commitTuningFromEnv({ COUNTD_INLINE_MAX: bad }),
        (err: unknown) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT') && /COUNTD_INLINE_MAX must be a whole number/.test(err.message),
        bad,
      );
    }
  });

  it('reads COUNTD_FLOW_POLL_MS and refuses one out of 10 … 10000 ms', function () {
    assert.deepEqual(commitTuningFromEnv({ COUNTD_FLOW_POLL_MS: '250' }), { flowPollMs: 250 });
    for (const bad of ['9', '10001', '1.5', 'soon']) {
      assert.throws(
        () => commitTuningFromEnv({ COUNTD_FLOW_POLL_MS: bad }),
        (err: unknown) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT') && /COUNTD_FLOW_POLL_MS must be a whole number of ms from 10 to 10000/.test(err.message),
        bad,
      );
    }
  });

  it('reads COUNTD_REJOIN_US (0: commits never wait for the connections just answered) and refuses one out of 0 … 100000 µs', function () {
    assert.deepEqual(commitTuningFromEnv({ COUNTD_REJOIN_US: '0' }), { rejoinUs: 0 });
    assert.deepEqual(commitTuningFromEnv({ COUNTD_REJOIN_US: '150' }), { rejoinUs: 150 });
    for (const bad of ['-1', '100001', '1.5', 'brief']) {
      assert.throws(
        () => commitTuningFromEnv({ COUNTD_REJOIN_US: bad }),
        (err: unknown) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT') && /COUNTD_REJOIN_US must be a whole number of µs from 0 to 100000/.test(err.message),
        bad,
      );
    }
  });
});
