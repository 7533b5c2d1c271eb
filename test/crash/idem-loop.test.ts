// Idempotent producers under kill -9 (issue 16): clients of the client
// library write as producers and retry every unacknowledged increment by
// themselves, through SIGKILLs of the daemon, its supervisor, its writer
// child and its store child. Every increment must end acknowledged and be
// applied exactly once: the ledger matches exactly (0 lost, 0 double, none
// left unacknowledged). `npm run soak` runs the same for at least 100 cycles
// (test/soak/idem-soak.ts).

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killAllDaemons } from '../harness/daemon.js';
import { formatIdemFigures, runIdemLoop } from '../harness/idem-loop.js';
import { describeViolations } from '../harness/ledger.js';
import { seedFromEnv } from '../harness/rng.js';

describe('idempotent producers: kill -9 loop with clients that retry every unacknowledged increment', function () {
  this.timeout(90_000);
  let root = '';

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-idemloop-'));
  });
  after(async () => {
    await killAllDaemons();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  it('every increment acknowledged in the end and applied exactly once (8 kill cycles)', async function () {
    const seed = seedFromEnv();
    const r = await runIdemLoop({ dataDir: path.join(root, 'data'), cycles: 8, seed });
    console.log(`      seed ${seed}: kills ${JSON.stringify(r.kills)}, ${r.framesAcked} acked (${r.duplicates} duplicates), lost ${r.lost}, double ${r.doubleApplied}, ${r.seconds.toFixed(1)} s`);
    const context = `seed ${seed} (replay: COUNTD_SEED=${seed})\n${formatIdemFigures(r)}\n${describeViolations(r.violations)}\n${r.failures.slice(0, 10).join('\n')}`;
    assert.deepEqual(r.failures, [], context);
    assert.equal(r.violations.length, 0, context);
    assert.equal(r.lost, 0, context);
    assert.equal(r.doubleApplied, 0, context);
    assert.equal(r.framesAcked, r.framesSent, `every increment sent must end acknowledged\n${context}`);
    assert.deepEqual(r.rankIndexBroken, [], context);
    assert.ok(r.framesAcked > 0, context);
  });
});
