// `--ties first`, dense rank, count --min and keyspace settings through the
// real bin/countd: against a running daemon (read port), then from the
// database directly after it stops.

import assert from 'node:assert/strict';
import { Daemon, countd, isOneCleanLine, killAll, pollOutput, removeDir, startDaemon, tempDir } from './helpers.js';

describe('countd CLI: ties first, dense rank, count, keyspace settings', function () {
  this.timeout(30_000);
  let dir: string;
  let daemon: Daemon;

  before(async () => {
    dir = await tempDir();
    ({ daemon } = await startDaemon(dir));
  });

  after(async () => {
    await killAll();
    await removeDir(dir);
  });

  /** Run a write command, then wait until `dump lb` shows `expected` (applied). */
  const step = async (args: string[], expected: string): Promise<void> => {
    const r = await countd(dir, ...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    const d = await pollOutput(() => countd(dir, 'dump', 'lb'), (out) => out === expected);
    assert.equal(d.stdout, expected);
  };

  it('create --ties first: equal counts rank by who reached the count first, also after a move down', async () => {
    assert.equal((await countd(dir, 'create', 'lb', '--ties', 'first')).code, 0);
    await step(['write', 'lb', 'zed', '5'], 'zed\t5\n');
    // amy sorts before zed by key bytes, but reached 5 later.
    await step(['write', 'lb', 'amy', '5'], 'zed\t5\namy\t5\n');
    // zed leaves 5 and comes back down to it (a set): it reached 5 after amy now.
    await step(['write', 'lb', 'zed', '2'], 'zed\t7\namy\t5\n');
    await step(['set', 'lb', 'zed', '5'], 'amy\t5\nzed\t5\n');
    await step(['write', 'lb', 'bo', '9'], 'bo\t9\namy\t5\nzed\t5\n');
    const rank = await countd(dir, 'rank', 'lb', 'zed');
    assert.equal(rank.stdout, '2\tzed\t5\n', rank.stderr);
  });

  it('rank --dense and count --min, through the read port', async () => {
    const dense = await countd(dir, 'rank', 'lb', 'zed', '--dense');
    assert.equal(dense.stdout, '2\t1\tzed\t5\n', dense.stderr);
    const json = await countd(dir, 'rank', 'lb', 'bo', '--dense', '--json');
    assert.equal(json.stdout, '{"rank": 0, "dense": 0, "key": "bo", "count": 9}\n', json.stderr);
    for (const [args, out] of [
      [['count', 'lb'], '3\n'],
      [['count', 'lb', '--min', '5'], '3\n'],
      [['count', 'lb', '--min', '6'], '1\n'],
      [['count', 'lb', '--min', '-9223372036854775808'], '3\n'],
      [['count', 'lb', '--min', '9223372036854775807'], '0\n'],
      [['count', 'nothing'], '0\n'],
      [['count', 'lb', '--min', '6', '--json'], '{"keyspace": "lb", "keys": 1, "min": 6}\n'],
    ] as const) {
      const r = await countd(dir, ...args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, out, args.join(' '));
    }
    const missing = await countd(dir, 'rank', 'lb', 'nope', '--dense');
    assert.equal(missing.code, 1);
    assert.ok(isOneCleanLine(missing.stderr), missing.stderr);
  });

  const settingsLines = '{"keyspace": "empty", "keys": 0, "op": "max", "ties": "key"}\n{"keyspace": "lb", "keys": 3, "op": "sum", "ties": "first"}\n{"keyspace": "plain", "keys": 1}\n';

  it('keyspaces --json shows each keyspace\'s settings through the read port, declared ones without keys too', async () => {
    assert.equal((await countd(dir, 'create', 'empty', '--op', 'max')).code, 0);
    assert.equal((await countd(dir, 'write', 'plain', 'x', '1')).code, 0);
    const r = await pollOutput(() => countd(dir, 'keyspaces', '--json'), (out) => out === settingsLines);
    assert.equal(r.stdout, settingsLines);
    const text = await countd(dir, 'keyspaces');
    assert.equal(text.stdout, 'lb\t3\nplain\t1\n');
  });

  it('user errors: an unknown tie rule, a --min that is not a 64-bit integer (exit 2)', async () => {
    for (const [args, message] of [
      [['create', 'x', '--ties', 'last'], /Invalid values/],
      [['count', 'lb', '--min', 'abc'], /--min must be an integer/],
      [['count', 'lb', '--min', '9223372036854775808'], /--min must be an integer from -9223372036854775808 to 9223372036854775807/],
    ] as const) {
      const r = await countd(dir, ...args);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(isOneCleanLine(r.stderr), r.stderr);
      assert.match(r.stderr, message);
    }
  });

  it('after the daemon stops, the same answers come from the database directly', async () => {
    assert.deepEqual(await daemon.stop('SIGTERM'), { code: 0, signal: null });
    assert.equal((await countd(dir, 'dump', 'lb')).stdout, 'bo\t9\namy\t5\nzed\t5\n');
    assert.equal((await countd(dir, 'rank', 'lb', 'zed', '--dense')).stdout, '2\t1\tzed\t5\n');
    assert.equal((await countd(dir, 'count', 'lb', '--min', '6')).stdout, '1\n');
    assert.equal((await countd(dir, 'keyspaces', '--json')).stdout, settingsLines);
  });
});
