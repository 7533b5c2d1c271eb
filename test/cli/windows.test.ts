// Time windows end to end through the real binaries: `countd create --window
// 10s --keep 2`, writes, and reads with --ago while the periods roll over on
// the real clock. No expectation depends on when the test runs: each step
// waits for a condition (a write seen in the period before the current one
// means the clock has moved past the write's period), and what it then
// asserts holds whichever period the clock is in by then. Plus the error
// paths of --window, --keep and --ago.

import assert from 'node:assert/strict';
import { countd, isOneCleanLine, pollOutput, removeDir, startDaemon, tempDir, type Daemon } from './helpers.js';

describe('countd: windowed keyspaces (--window, --keep, --ago) through the real binaries', function () {
  this.timeout(90_000);
  let dir: string;
  let daemon: Daemon;

  before(async () => {
    dir = await tempDir('windows');
    ({ daemon } = await startDaemon(dir));
  });

  after(async () => {
    await daemon?.stop();
    await removeDir(dir);
  });

  it('--window 10s: a write counts into its period, is read with --ago 1 once the next period starts, and is gone after --keep periods', async () => {
    const created = await countd(dir, 'create', 'lap', '--window', '10s', '--keep', '2', '--op', 'max');
    assert.equal(created.code, 0, created.stderr);
    const ks = await countd(dir, 'keyspaces', '--json');
    assert.equal(ks.code, 0, ks.stderr);
    for (const v of ['5', '12', '3']) assert.equal((await countd(dir, 'write', 'lap', 'ann', v)).code, 0);
    // The three writes are in one period or two (a boundary between them); max keeps the best of each.
    const seen = await pollOutput(
      async () => {
        const now = await countd(dir, 'dump', 'lap', '--json');
        const before = await countd(dir, 'dump', 'lap', '--ago', '1', '--json');
        return { ...now, stdout: now.stdout + before.stdout, code: now.code ?? before.code };
      },
      (out) => out.includes('"ann"'),
    );
    assert.match(seen.stdout, /"count": ?"?(12|5|3)"?/);
    // Wait until the clock has passed the period of the last write: the current period holds no ann (asked
    // first: the clock only moves on) and --ago 1 does. ann in --ago 1 alone is not enough: with a boundary
    // between the writes, the 5 alone is in --ago 1 while the current period holds the 12 and the 3.
    const past = await pollOutput(
      async () => {
        const current = await countd(dir, 'get', 'lap', 'ann');
        const before = await countd(dir, 'get', 'lap', 'ann', '--ago', '1');
        return { ...before, stdout: current.code === 1 ? before.stdout : '' };
      },
      (out) => out.startsWith('ann\t'),
      25_000,
    );
    assert.match(past.stdout, /^ann\t(12|3)\n$/);
    // Whatever period the clock is in now, the current one holds no write of ann.
    const current = await countd(dir, 'get', 'lap', 'ann');
    assert.equal(current.code, 1, current.stdout);
    assert.ok(isOneCleanLine(current.stderr), current.stderr);
    // A new write goes to the current period, beside the old one.
    assert.equal((await countd(dir, 'write', 'lap', 'bob', '8')).code, 0);
    await pollOutput(
      async () => {
        const now = await countd(dir, 'get', 'lap', 'bob');
        const before = await countd(dir, 'get', 'lap', 'bob', '--ago', '1');
        return { ...now, stdout: now.stdout + before.stdout, code: 0 };
      },
      (out) => out.includes('bob\t8'),
    );
    // Two periods later ann's period is past --keep 2: no read reaches it.
    await pollOutput(() => countd(dir, 'dump', 'lap', '--ago', '1'), (out) => !out.includes('ann'), 25_000);
    const current2 = await countd(dir, 'dump', 'lap');
    assert.doesNotMatch(current2.stdout, /ann/);
    const beyond = await countd(dir, 'read', 'lap', '--ago', '2');
    assert.notEqual(beyond.code, 0);
    assert.ok(isOneCleanLine(beyond.stderr), beyond.stderr);
    assert.match(beyond.stderr, /lap has no period --ago 2/);
  });

  it('keyspaces --json shows the window and --keep of a windowed keyspace, through the read port and from the database alike', async () => {
    const settingsOf = async (): Promise<Record<string, unknown>> => {
      const r = await countd(dir, 'keyspaces', '--json');
      assert.equal(r.code, 0, r.stderr);
      const lap = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => o.keyspace === 'lap');
      assert.ok(lap !== undefined, r.stdout);
      assert.equal(lap.op, 'max');
      assert.equal(lap.ties, 'key');
      assert.equal(lap.window, '10s');
      assert.ok(lap.keep === 2 || lap.keep === '2', JSON.stringify(lap));
      // The size is the current period's, which the clock may have moved between the two reads.
      const { keys: _keys, ...settings } = lap;
      return settings;
    };
    const throughDaemon = await settingsOf();
    await daemon.stop();
    try {
      assert.deepEqual(await settingsOf(), throughDaemon);
    } finally {
      ({ daemon } = await startDaemon(dir));
    }
  });

  it('errors: a bad --window, --keep without --window, --keep 0, --ago beyond --keep, --ago on a keyspace without a window', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['create', 'x', '--window', '10q'], /--window must be a duration \(10s, 5m, 2h, 7d\) or hour, day, week or month, got '10q'/],
      [['create', 'x', '--window', '0s'], /--window must be a duration/],
      [['create', 'x', '--window', '400d'], /a fixed window must be from 1 to 31622400 seconds/],
      [['create', 'x', '--keep', '3'], /--keep needs --window/],
      [['create', 'x', '--window', 'day', '--keep', '0'], /--keep/],
      [['read', 'lap', '--ago', '-1'], /--ago/],
      [['get', 'lap', 'ann', '--ago', '2'], /lap has no period --ago 2/],
      [['rank', 'lap', 'ann', '--ago', '5'], /lap has no period --ago 5/],
      [['around', 'lap', 'ann', '--ago', '9'], /lap has no period --ago 9/],
      [['dump', 'lap', '--ago', '2'], /lap has no period --ago 2/],
      [['rank', 'lap', 'ann', '--dense', '--ago', '2'], /lap has no period --ago 2/],
      [['count', 'lap', '--ago', '3'], /lap has no period --ago 3/],
    ];
    assert.equal((await countd(dir, 'write', 'plain', 'k', '1')).code, 0);
    cases.push([['read', 'plain', '--ago', '1'], /plain has no period --ago 1/]);
    for (const [args, message] of cases) {
      const r = await countd(dir, ...args);
      assert.notEqual(r.code, 0, `${args.join(' ')}: ${r.stdout}`);
      assert.ok(isOneCleanLine(r.stderr), `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    // Nothing was created by the refused commands.
    const ks = await countd(dir, 'keyspaces', '--json');
    assert.doesNotMatch(ks.stdout, /"keyspace":"x"/);
  });
});
