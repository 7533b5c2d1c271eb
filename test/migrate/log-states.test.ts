// What countd migrate makes of each legacy commit log from its mode, lock link
// and content (lib/migrate/log-states.ts, docs/legacy-format.md), on small
// synthetic logs: every state, and the --legacy-log rules and their errors.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { legacyFrame } from '../../fixtures/make-legacy-fixture.js';
import { ErrorCodes } from '../../lib/errors.js';
import { decideLogs, isAmbiguous, parseLogRule, type LogRule } from '../../lib/migrate/log-states.js';
import type { LegacyLog } from '../../lib/migrate/scan.js';
import { rejectsWith, removeTempDirs, tempDir } from './helpers.js';

const ZERO = Buffer.alloc(520);

async function log(dir: string, index: number, mode: number, frames: Buffer[]): Promise<LegacyLog> {
  const name = String(index).padStart(10, '0');
  const file = path.join(dir, name);
  const bytes = Buffer.concat(frames);
  await fsp.writeFile(file, bytes, { mode });
  await fsp.chmod(file, mode);
  return { index, name, path: file, size: bytes.length, mode };
}

const f = (n: bigint): Buffer => legacyFrame(n, 'ks', 'k');

describe('countd migrate: the state of each legacy log', function () {
  after(removeTempDirs);

  it('decides every state from mode, lock link and content', async function () {
    const dir = await tempDir();
    const logs = [
      await log(dir, 0, 0o400, [f(1n), f(2n), ZERO]), // dirty, no lock
      await log(dir, 1, 0o400, [f(1n), f(2n)]), // dirty, lock: interrupted apply
      await log(dir, 2, 0o200, [f(1n), f(2n)]), // clean, no lock: applied
      await log(dir, 3, 0o200, [ZERO, ZERO]), // clean, lock, zeros: empty
      await log(dir, 4, 0o200, [f(1n), f(2n), f(3n), ZERO, ZERO]), // writer in progress
      await log(dir, 5, 0o200, [f(1n), f(2n)]), // clean, lock, full: ambiguous
      await log(dir, 6, 0o200, [f(1n), ZERO, f(2n), ZERO]), // clean, lock, data after zero: ambiguous
    ];
    const d = await decideLogs(logs, new Set([1, 3, 4, 5, 6]), new Map());
    assert.deepEqual(
      d.map((x) => [x.log.index, x.state, x.replay, isAmbiguous(x)]),
      [
        [0, 'dirty', 3, false],
        [1, 'interrupted-apply', 0, true],
        [2, 'applied', 0, false],
        [3, 'empty', 0, false],
        [4, 'writer-in-progress', 3, false],
        [5, 'ambiguous', 0, true],
        [6, 'ambiguous', 0, true],
      ],
    );
    assert.match(d[6]!.reason, /frames after an all-zero frame \(at frame 1\)/);
  });

  it('a rule overrides the state, and the log is then decided', async function () {
    const dir = await tempDir();
    const logs = [await log(dir, 5, 0o200, [f(1n), f(2n), f(3n)]), await log(dir, 4, 0o200, [f(1n), ZERO])];
    const d = await decideLogs(logs, new Set([4, 5]), new Map<number, LogRule>([[5, 2], [4, 'skip']]));
    assert.deepEqual(d.map((x) => [x.log.index, x.replay, x.rule, isAmbiguous(x)]), [[5, 2, 2, false], [4, 0, 'skip', false]]);
  });

  it('refuses a rule for a log that does not exist, or for more frames than it has', async function () {
    const dir = await tempDir();
    const logs = [await log(dir, 0, 0o200, [f(1n)])];
    await rejectsWith(decideLogs(logs, new Set(), new Map<number, LogRule>([[3, 'all']])), ErrorCodes.INVALID_ARGUMENT, /no commit log 0000000003/);
    await rejectsWith(decideLogs(logs, new Set(), new Map<number, LogRule>([[0, 2]])), ErrorCodes.INVALID_ARGUMENT, /has only 1 frame$/);
  });

  it('parses INDEX=skip|all|FRAMES and refuses anything else', function () {
    assert.deepEqual(parseLogRule('2=all'), { index: 2, rule: 'all' });
    assert.deepEqual(parseLogRule('0=skip'), { index: 0, rule: 'skip' });
    assert.deepEqual(parseLogRule('12=118'), { index: 12, rule: 118 });
    for (const bad of ['2', '=all', '2=', '2=some', '-1=all', '2=-3', 'x=1']) {
      assert.throws(() => parseLogRule(bad), (err: Error & { code?: string }) => err.code === ErrorCodes.INVALID_ARGUMENT, bad);
    }
  });
});
