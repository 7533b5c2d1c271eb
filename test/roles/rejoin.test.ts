// The rejoin wait of group commit (lib/roles/write/rejoin.ts): a commit waits
// a moment for the connections the last one answered, so that two
// synchronous clients share one commit instead of taking turns.

import assert from 'node:assert/strict';
import { GroupCommit, type BatchMember } from '../../lib/roles/write/group-commit.js';
import { Rejoin } from '../../lib/roles/write/rejoin.js';
import { recordingLogger } from '../store/helpers.js';
import { SMALL, frame } from './writer-helpers.js';

/** A sink whose appends take `ms` (a timer: the event loop turns meanwhile), recording each append's frame count. */
function slowSink(ms: number, counts: number[]) {
  return {
    maxBatchBytes: 4096,
    append: (_entries: Buffer, count: number) => {
      counts.push(count);
      return new Promise<void>((resolve) => setTimeout(resolve, ms));
    },
  };
}

/** A client that sends its next frame `turns` turns of the event loop after each WIN, `rounds` times. */
function client(gc: GroupCommit, name: string, turns: number, rounds: number, done: () => void): BatchMember {
  let left = rounds;
  const f = frame(1, 'a', name);
  const send = (): void => {
    assert.equal(gc.add(m, f, 0, 1, name.length), true);
    gc.schedule();
  };
  const later = (n: number): void => {
    if (n === 0) send();
    else setImmediate(() => later(n - 1));
  };
  const m: BatchMember = {
    slotFrames: new Int32Array(2),
    failing: false,
    waitingRoom: false,
    awaited: false,
    durable: (n: number) => {
      if (--left > 0) later(turns);
      else done();
      return n;
    },
    failed: (n: number) => n,
    roomAvailable: () => {},
  };
  return Object.assign(m, { start: send });
}

async function run(rejoinUs: number, turnsB: number, rounds: number): Promise<{ counts: number[]; gc: GroupCommit }> {
  const counts: number[] = [];
  const gc = new GroupCommit(slowSink(30, counts), SMALL, recordingLogger([]), null, null, 4, rejoinUs);
  let finished = 0;
  const all = new Promise<void>((resolve) => {
    const done = (): void => {
      if (++finished === 2) resolve();
    };
    const a = client(gc, 'ka', 1, rounds, done) as BatchMember & { start(): void };
    const b = client(gc, 'kb', turnsB, rounds, done) as BatchMember & { start(): void };
    a.start();
    b.start();
  });
  await all;
  await gc.whenIdle();
  return { counts, gc };
}

describe('group commit: the rejoin wait', function () {
  this.timeout(20_000);

  it('two synchronous clients, one slower to send again: their frames share each commit (without the wait, they take turns)', async () => {
    const rounds = 20;
    const off = await run(0, 3, rounds);
    assert.equal(off.counts.reduce((x, y) => x + y, 0), 2 * rounds);
    assert.ok(off.counts.filter((c) => c === 1).length >= rounds, `without the wait most commits carry one frame: ${off.counts.join(',')}`);
    // Appends of 30 ms: the wait's bound is 15 ms, far more than three turns of the event loop.
    const on = await run(100_000, 3, rounds);
    assert.equal(on.counts.reduce((x, y) => x + y, 0), 2 * rounds);
    assert.deepEqual(on.counts, Array.from({ length: rounds }, () => 2), 'every commit carries both frames');
    assert.ok(on.gc.rejoin.waited >= rounds - 2, `commits that waited: ${on.gc.rejoin.waited}`);
    assert.equal(on.gc.rejoin.joinedAll, on.gc.rejoin.waited, 'each wait got the other client back');
  });

  it('a lone client never waits', async () => {
    const counts: number[] = [];
    const gc = new GroupCommit(slowSink(2, counts), SMALL, recordingLogger([]), null, null, 4, 200);
    await new Promise<void>((resolve) => {
      const a = client(gc, 'ka', 1, 10, resolve) as BatchMember & { start(): void };
      a.start();
    });
    await gc.whenIdle();
    assert.deepEqual(counts, Array.from({ length: 10 }, () => 1));
    assert.equal(gc.rejoin.waited, 0);
  });

  it('a connection that does not come back costs at most the bound per commit, and after four misses in a row none for 64 commits', () => {
    const r = new Rejoin(200);
    const gone = { awaited: false };
    r.committed(1000); // commits take 1 ms: the bound is min(500, 200) µs
    const t0 = 1000;
    for (let i = 0; i < 4; i++) {
      r.answering(t0);
      r.answered(gone, false);
      assert.equal(r.holds(t0 + 0.1), true, 'waits 100 µs after the WINs');
      assert.equal(r.holds(t0 + 0.2), false, 'not 200 µs after');
      r.starting(true);
    }
    assert.equal(r.waited, 4);
    assert.equal(r.joinedAll, 0);
    for (let i = 0; i < 64; i++) {
      r.answering(t0);
      r.answered(gone, false);
      assert.equal(r.holds(t0 + 0.01), false, `backing off (commit ${i})`);
      r.starting(false);
    }
    r.answering(t0);
    r.answered(gone, false);
    assert.equal(r.holds(t0 + 0.01), true, 'tries again after the back-off');
    // A connection whose next frame is already in the batch (pipelining) is not waited for.
    const piped = { awaited: false };
    r.answering(t0);
    r.answered(piped, true);
    assert.equal(r.holds(t0 + 0.01), false);
    // Nor one answered by an earlier commit.
    r.answering(t0);
    r.answered(gone, false);
    r.answering(t0 + 1);
    assert.equal(gone.awaited, false);
    assert.equal(r.holds(t0 + 1.01), false);
  });
});
