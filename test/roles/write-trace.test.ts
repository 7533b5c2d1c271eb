// Commit tracing (lib/roles/write/trace.ts): the phases it logs come from
// real calls, and it is off unless COUNTD_TRACE_COMMITS=1.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { realFileOps } from '../../lib/commitlog/fileops.js';
import { BACKGROUND_CLAIM, BACKGROUND_HANDOVER, BACKGROUND_SCAN, CommitTrace, backgroundName, commitTraceFromEnv } from '../../lib/roles/write/trace.js';
import { createLogger } from '../../lib/util/log.js';

describe('countd-write: commit tracing', function () {
  it('is off unless COUNTD_TRACE_COMMITS=1', function () {
    const logger = createLogger({ role: 'test', write: () => {} });
    assert.equal(commitTraceFromEnv(logger, {}), null);
    assert.equal(commitTraceFromEnv(logger, { COUNTD_TRACE_COMMITS: '0' }), null);
    const trace = commitTraceFromEnv(logger, { COUNTD_TRACE_COMMITS: '1' });
    assert.ok(trace instanceof CommitTrace);
    trace.stop();
  });

  it('logs the p50 and p99 of each phase, timing the real write and fdatasync calls', async function () {
    const lines: string[] = [];
    const trace = new CommitTrace(createLogger({ role: 'test', format: 'json', write: (l) => lines.push(l) }));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'countd-trace-'));
    const fd = fs.openSync(path.join(dir, 'f'), 'w+');
    try {
      const ops = trace.timed(realFileOps);
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        await ops.pwritev(fd, [Buffer.alloc(520, 1)], i * 520, i % 2 === 0);
        await ops.fdatasync(fd, i % 2 === 0);
        trace.since('commit', t);
      }
      trace.stop();
    } finally {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(lines.length, 2);
    assert.equal((JSON.parse(lines[1]!) as Record<string, unknown>).msg, 'commit overlaps');
    const o = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(o.msg, 'commit phases');
    assert.equal(o.commits, 5);
    for (const phase of ['write', 'sync', 'commit']) {
      assert.ok((o[`${phase}P50us`] as number) > 0, phase);
      assert.ok((o[`${phase}P99us`] as number) >= (o[`${phase}P50us`] as number), phase);
    }
    assert.ok((o.commitP50us as number) >= (o.syncP50us as number) * 0.9, 'a commit holds its fdatasync');
    assert.equal(o.waitP50us, null, 'no wait recorded: NaN, written as null');
  });

  it('logs the commits again by the background work they overlapped: count, p50 and p99 per kind', function () {
    const lines: string[] = [];
    const trace = new CommitTrace(createLogger({ role: 'test', format: 'json', write: (l) => lines.push(l) }));
    const t = performance.now() - 0.5;
    for (let i = 0; i < 3; i++) trace.since('commit', t);
    trace.overlapped(t, 0);
    trace.overlapped(t, 0);
    trace.overlapped(t, BACKGROUND_HANDOVER | BACKGROUND_SCAN);
    trace.stop();
    const o = JSON.parse(lines[1]!) as Record<string, unknown>;
    assert.equal(o.msg, 'commit overlaps');
    assert.equal(o.noneCommits, 2);
    assert.equal(o['handover+scanCommits'], 1);
    assert.ok((o.noneP50us as number) >= 500, 'the commits lasted at least 0.5 ms');
    assert.equal(o.claimCommits, undefined, 'no commit beside a claim');
    assert.equal(backgroundName(BACKGROUND_CLAIM | BACKGROUND_HANDOVER), 'handover+claim');
    assert.equal(backgroundName(0), 'none');
  });
});
