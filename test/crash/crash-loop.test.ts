// Crash loop (issue 6, item 1): the real daemon killed with SIGKILL at random
// moments under concurrent writers, restarted, again; every acknowledged
// increment is applied exactly once, nothing is applied twice, and frames
// answered ERR are never applied. `npm run soak` runs the same for 1,000
// cycles (test/soak/crash-soak.ts).

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCrashLoop, formatFigures } from '../harness/crash-loop.js';
import { killAllDaemons } from '../harness/daemon.js';
import { describeViolations } from '../harness/ledger.js';
import { seedFromEnv } from '../harness/rng.js';

describe('crash loop: SIGKILL of the daemon and its children under load', function () {
  this.timeout(60_000);
  let root = '';

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-crashloop-'));
  });
  after(async () => {
    await killAllDaemons();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  it('every acked increment applied exactly once, nothing twice, ERR never applied (8 kill cycles)', async function () {
    const seed = seedFromEnv();
    const result = await runCrashLoop({ dataDir: path.join(root, 'data'), cycles: 8, seed, minRunMs: 150, maxRunMs: 500 });
    console.log(`      seed ${seed}: ${result.cycles} cycles (kills: ${JSON.stringify(result.kills)}), ${result.framesAcked} acked, ${result.unackedApplied} unacked applied, ${result.framesErr} ERR, lost ${result.lost}, double-applied ${result.doubleApplied}, ${result.seconds.toFixed(1)} s`);
    for (const [w, n] of Object.entries(result.warnings)) console.log(`      daemon logged ${n}× ${w}`);
    const context = `seed ${seed} (replay: COUNTD_SEED=${seed})\n${formatFigures(result)}\n${describeViolations(result.violations)}`;
    assert.deepEqual(result.protocolErrors, [], context);
    assert.equal(result.violations.length, 0, context);
    assert.equal(result.lost, 0, context);
    assert.equal(result.doubleApplied, 0, context);
    assert.deepEqual(result.rankIndexBroken, [], `the rank index disagrees with the counts\n${context}`);
    assert.ok(result.framesAcked > 0, `no frame was acknowledged at all\n${context}`);
    assert.ok(result.kills.daemon + result.kills.supervisor + result.kills.writer + result.kills.store === 8);
  });
});
