// The worker's health and stall rules (lib/roles/work/apply-health.ts): which
// errors stall it, how much free space it waits for, and what it reports.

import assert from 'node:assert/strict';
import { CountdError, ErrorCodes, translateFsError } from '../../lib/errors.js';
import { ApplyHealth, MIN_FREE_BYTES, isDatabaseFull } from '../../lib/roles/work/apply-health.js';
import { translateDbError } from '../../lib/store/errors.js';

/** What classic-level rejects with when LevelDB's write fails for want of space. */
function levelNoSpace(): Error {
  const inner = Object.assign(new Error('IO error: /d/db/000005.ldb: No space left on device'), { code: 'LEVEL_IO_ERROR' });
  return translateDbError(inner, 'apply', '/d/db');
}

describe('worker health (apply-health.ts)', () => {
  it('a LevelDB no-space error is COUNTD_NO_SPACE and a full database disk; a full commit-log disk or another database error is not', () => {
    const db = levelNoSpace();
    assert.ok(db instanceof CountdError && db.code === ErrorCodes.NO_SPACE, String(db));
    assert.equal(isDatabaseFull(db), true);
    const log = translateFsError(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }), 'append commit log');
    assert.equal(log.code, ErrorCodes.NO_SPACE);
    assert.equal(isDatabaseFull(log), false);
    const other = translateDbError(Object.assign(new Error('IO error: /d/db/LOG: Input/output error'), { code: 'LEVEL_IO_ERROR' }), 'apply', '/d/db');
    assert.equal(other.code, ErrorCodes.DATABASE);
    assert.equal(isDatabaseFull(other), false);
  });

  it('reports failing or stalled since the first failure, doubles the space asked for after each retry that runs out again, and resets on success', () => {
    const h = new ApplyHealth();
    assert.deepEqual(h.report(), { state: 'applying', since: 0, failures: 0, code: '', message: '' });
    const before = Date.now();
    h.failed(new CountdError(ErrorCodes.DATABASE, 'database /d/db: apply failed: boom'));
    const failing = h.report();
    assert.equal(failing.state, 'failing');
    assert.ok(failing.since >= before && failing.since <= Date.now());
    assert.equal(failing.code, ErrorCodes.DATABASE);
    h.failed(levelNoSpace());
    assert.equal(h.state, 'stalled');
    assert.equal(h.report().since, failing.since, 'since: when the run of failures began');
    assert.equal(h.report().failures, 2);
    assert.equal(h.need, MIN_FREE_BYTES, 'the first stall asks for the minimum');
    h.failed(levelNoSpace()); // no retry in between (e.g. the reopen's own failure before any wait): no doubling
    assert.equal(h.need, MIN_FREE_BYTES);
    h.retrying();
    h.failed(levelNoSpace());
    assert.equal(h.need, 2 * MIN_FREE_BYTES, 'a retry after the wait that ran out of space again waits for twice as much');
    h.retrying();
    h.failed(levelNoSpace());
    assert.equal(h.need, 4 * MIN_FREE_BYTES);
    h.succeeded();
    assert.deepEqual(h.report(), { state: 'applying', since: 0, failures: 0, code: '', message: '' });
    assert.equal(h.need, MIN_FREE_BYTES);
  });
});
