// The replies of a version-2 write connection (lib/roles/write/reply-queue.ts):
// frames answered WIN with the batch's token, producers' WINs with their
// sequence, statuses decided at once (duplicate, fenced, ...) and 40-byte
// FLAG_RESULT replies, mixed in one batch or not, in frame order; what the
// producers learn; ERR for failed frames.

import assert from 'node:assert/strict';
import { REPLY2_RESULT_SIZE, REPLY2_SIZE, Reply2, ResultState, decodeReply2, decodeReplyResult } from '../../lib/protocol/write-ops.js';
import { ProducerTable, Verdict } from '../../lib/roles/write/producers.js';
import { ReplyQueue, type ResultSlot } from '../../lib/roles/write/reply-queue.js';

const TOKEN = 0x1a2513bc00000009n;

function decodeAll(buf: Buffer, sizes: number[]): Array<{ status: string; token: bigint; detail: bigint; state?: number }> {
  const out = [];
  let at = 0;
  for (const size of sizes) {
    const r = size === REPLY2_SIZE ? decodeReply2(buf, at) : decodeReplyResult(buf, at);
    assert.ok(r !== null, `a valid reply at ${at}`);
    out.push({ status: String.fromCharCode(r.status), token: r.token, detail: r.detail, ...('state' in r ? { state: r.state as number } : {}) });
    at += size;
  }
  assert.equal(at, buf.length, 'no byte more');
  return out;
}

describe('version-2 reply queue', () => {
  it('a batch of plain WINs: every reply carries the batch token and detail 0, across the ring wrapping and growing', () => {
    const q = new ReplyQueue(4, new ProducerTable());
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 6; i++) q.pushWin();
      const token = TOKEN + BigInt(round);
      const buf = q.durable(6, token);
      assert.deepEqual(decodeAll(buf, Array(6).fill(REPLY2_SIZE)), Array(6).fill({ status: 'W', token, detail: 0n }));
    }
    assert.throws(() => q.durable(1, TOKEN), /underflow/);
  });

  it('mixed: plain WINs, a producer WIN (detail = its sequence; the producer learns it durable), a duplicate and a result frame, in frame order', () => {
    const table = new ProducerTable();
    const owner = {};
    assert.equal(table.admit(owner, 42n, 1, 7n, 0), Verdict.Accept);
    const st = table.state!;
    const q = new ReplyQueue(2, table);
    q.pushWin();
    q.push(Reply2.win, st, 7n, 0n, 0n);
    q.push(Reply2.duplicate, null, 0n, 77n, 6n);
    q.pushWin();
    q.push(Reply2.win, null, 0n, 0n, 0n, [Buffer.from('ks'), Buffer.from('k')]);
    q.push(Reply2.fenced, null, 0n, 0n, 3n);
    const lookups: ResultSlot[] = [];
    const buf = q.durable(6, TOKEN, lookups);
    assert.deepEqual(decodeAll(buf, [24, 24, 24, 24, REPLY2_RESULT_SIZE, 24]), [
      { status: 'W', token: TOKEN, detail: 0n },
      { status: 'W', token: TOKEN, detail: 7n },
      { status: 'D', token: 77n, detail: 6n },
      { status: 'W', token: TOKEN, detail: 0n },
      { status: 'W', token: TOKEN, detail: 0n, state: ResultState.none },
      { status: 'F', token: 0n, detail: 3n },
    ]);
    assert.equal(lookups.length, 1);
    assert.equal(lookups[0]!.offset, 4 * REPLY2_SIZE);
    assert.equal(lookups[0]!.token, TOKEN);
    assert.equal(st.durable, 7n);
    assert.equal(st.token, TOKEN);
    assert.equal(st.undecided, 0);
    // After the mixed batch, plain WINs alone again.
    q.pushWin();
    assert.deepEqual(decodeAll(q.durable(1, TOKEN + 1n), [24]), [{ status: 'W', token: TOKEN + 1n, detail: 0n }]);
  });

  it('a producer-only batch without result frames: every WIN carries its own sequence', () => {
    const table = new ProducerTable();
    const q = new ReplyQueue(4, table);
    const owner = {};
    for (let s = 0n; s < 5n; s++) {
      assert.equal(table.admit(owner, 9n, 2, s + (1n << 40n), 0), Verdict.Accept);
      q.push(Reply2.win, table.state!, s + (1n << 40n), 0n, 0n);
    }
    const got = decodeAll(q.durable(5, TOKEN), Array(5).fill(24));
    assert.deepEqual(got.map((r) => r.detail), [0n, 1n, 2n, 3n, 4n].map((s) => s + (1n << 40n)));
    assert.ok(got.every((r) => r.status === 'W' && r.token === TOKEN));
    assert.equal(table.get(9n)!.durable, 4n + (1n << 40n));
  });

  it('failed frames: ERR for each, the producer back to its durable sequence', () => {
    const table = new ProducerTable();
    const owner = {};
    const q = new ReplyQueue(4, table);
    assert.equal(table.admit(owner, 5n, 1, 0n, 0), Verdict.Accept);
    q.push(Reply2.win, table.state!, 0n, 0n, 0n);
    q.durable(1, TOKEN);
    q.pushWin();
    assert.equal(table.admit(owner, 5n, 1, 1n, 0), Verdict.Accept);
    q.push(Reply2.win, table.state!, 1n, 0n, 0n);
    assert.deepEqual(decodeAll(q.failed(2, false), [24, 24]), [{ status: 'E', token: 0n, detail: 0n }, { status: 'E', token: 0n, detail: 0n }]);
    const st = table.get(5n)!;
    assert.equal(st.pending, 0n);
    assert.equal(st.undecided, 0);
    // The queue is plain again: a WIN batch is answered by the fast path with the right token.
    q.pushWin();
    assert.deepEqual(decodeAll(q.durable(1, TOKEN + 2n), [24]), [{ status: 'W', token: TOKEN + 2n, detail: 0n }]);
  });
});
