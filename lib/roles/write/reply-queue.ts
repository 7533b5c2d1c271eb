// The replies of a version-2 write connection (docs/write-protocol-extensions.md):
// one 24-byte reply per frame, in frame order. Every frame takes a slot
// when it is taken (its status decided then, or WIN once its batch is
// durable); GroupCommit then reports the connection's frames durable or
// failed in the same order, and the queue answers that many slots. A frame
// answered without a write (duplicate, fenced, ...) still joins the batch as
// an empty frame, so its reply never overtakes the WINs of the frames
// before it. A frame with FLAG_RESULT takes a 40-byte reply whose count and
// rank its connection fills in once the write is applied (ResultSlot).

import { Reply2, REPLY2_RESULT_SIZE, REPLY2_SIZE, ResultState, writeReply2, writeReplyResult } from '../../protocol/write-ops.js';
import { writeU64LE } from '../../util/int64.js';
import type { ProducerState, ProducerTable } from './producers.js';

/** A 40-byte reply of a durable FLAG_RESULT frame whose count and rank are still to be looked up. */
export interface ResultSlot {
  /** Where the reply starts in the buffer durable() returned. */
  offset: number;
  keyspace: Buffer;
  key: Buffer;
  /** The token to wait for: the frame's (W), or the producer's last durable one (D). */
  token: bigint;
}

const NO_RESULT = { state: ResultState.none, count: 0n, rank: 0n };

export class ReplyQueue {
  #status: Uint8Array;
  // Plain arrays of BigInts, not BigUint64Arrays: reading a BigUint64Array makes a new BigInt each time.
  #detail: bigint[];
  #seq: bigint[];
  #state: Array<ProducerState | null>;
  /** FLAG_RESULT frames: their names (keyspace, key), else null. */
  #names: Array<[Buffer, Buffer] | null>;
  #head = 0;
  #length = 0;
  /** Slots pushed that are not a plain WIN (a producer's, a status decided at once, or a FLAG_RESULT frame). */
  #special = 0;
  /** The 24-byte WIN of a frame without producer, with the token of the batch being answered. */
  readonly #win = Buffer.alloc(REPLY2_SIZE);
  readonly #table: ProducerTable;

  constructor(capacity: number, table: ProducerTable) {
    this.#status = new Uint8Array(capacity);
    this.#detail = new Array<bigint>(capacity).fill(0n);
    this.#seq = new Array<bigint>(capacity).fill(0n);
    this.#state = new Array<ProducerState | null>(capacity).fill(null);
    this.#names = new Array<[Buffer, Buffer] | null>(capacity).fill(null);
    this.#table = table;
  }

  /**
   * One more frame: `status` Reply2.win for a frame written (answered once
   * durable, with the batch's token; `state`/`seq` its producer's, if any),
   * any other status answered as is with `token` and `detail`. `names`:
   * the frame asked for the key's count and rank (FLAG_RESULT).
   */
  push(status: number, state: ProducerState | null, seq: bigint, token: bigint, detail: bigint, names: [Buffer, Buffer] | null = null): void {
    if (this.#length === this.#status.length) this.#grow();
    const i = (this.#head + this.#length++) % this.#status.length;
    this.#status[i] = status;
    this.#state[i] = state;
    this.#seq[i] = status === Reply2.win ? seq : token;
    this.#detail[i] = detail;
    this.#names[i] = names;
    if (status !== Reply2.win || state !== null || names !== null) this.#special++;
  }

  /** push(Reply2.win, null, 0n, 0n, 0n): a frame without producer nor FLAG_RESULT, answered WIN once durable (the common case, kept cheap). */
  pushWin(): void {
    if (this.#length === this.#status.length) this.#grow();
    const i = (this.#head + this.#length++) % this.#status.length;
    this.#status[i] = Reply2.win;
    this.#state[i] = null;
    this.#names[i] = null;
  }

  /** Bytes of the replies of the next `frames` frames. */
  #bytes(frames: number): number {
    let n = 0;
    for (let k = 0; k < frames; k++) n += this.#names[(this.#head + k) % this.#status.length] === null ? REPLY2_SIZE : REPLY2_RESULT_SIZE;
    return n;
  }

  /**
   * The next `frames` frames are durable: their replies (WINs carry
   * `token`); their producers learn it. The 40-byte replies of FLAG_RESULT
   * frames answered W or D are added to `lookups`, to be completed.
   */
  durable(frames: number, token: bigint, lookups?: ResultSlot[]): Buffer {
    const win = this.#win;
    win[0] = Reply2.win;
    writeU64LE(win, 8, token);
    if (this.#special === 0) {
      // Every reply is the same WIN: one native fill, no per-frame work.
      this.#skip(frames);
      return Buffer.allocUnsafe(frames * REPLY2_SIZE).fill(win);
    }
    const bytes = this.#bytes(frames);
    const out = Buffer.allocUnsafe(bytes);
    // Without 40-byte replies every reply is 24 bytes: start from the WIN in every slot, then write what differs.
    const uniform = bytes === frames * REPLY2_SIZE;
    if (uniform) out.fill(win);
    let at = 0;
    for (let k = 0; k < frames; k++) {
      const i = this.#shift();
      const status = this.#status[i]!;
      const state = this.#state[i]!;
      const names = this.#names[i]!;
      if (status === Reply2.win && state === null && names === null) {
        if (!uniform) win.copy(out, at);
        at += REPLY2_SIZE;
        continue;
      }
      this.#special--;
      const replyToken = status === Reply2.win ? token : this.#seq[i]!;
      const detail = status === Reply2.win ? (state !== null ? this.#seq[i]! : 0n) : this.#detail[i]!;
      if (status === Reply2.win && state !== null) this.#table.durable(state, this.#seq[i]!, token);
      if (names === null && status === Reply2.win) {
        if (!uniform) win.copy(out, at);
        writeU64LE(out, at + 16, detail);
        at += REPLY2_SIZE;
      } else if (names === null) {
        writeReply2(out, at, status, replyToken, detail);
        at += REPLY2_SIZE;
      } else {
        writeReplyResult(out, at, status, replyToken, detail, NO_RESULT);
        if (status === Reply2.win || status === Reply2.duplicate) lookups?.push({ offset: at, keyspace: names[0], key: names[1], token: replyToken });
        at += REPLY2_RESULT_SIZE;
      }
      this.#state[i] = null;
      this.#names[i] = null;
    }
    return out;
  }

  /** The next `frames` frames failed (`unknown`: they may be applied after all); replies ERR for each. */
  failed(frames: number, unknown: boolean): Buffer {
    const out = Buffer.alloc(this.#bytes(frames));
    let at = 0;
    for (let k = 0; k < frames; k++) {
      const i = this.#shift();
      const state = this.#state[i]!;
      if (this.#status[i] !== Reply2.win || state !== null || this.#names[i] !== null) this.#special--;
      if (this.#status[i] === Reply2.win && state !== null) this.#table.failed(state, unknown);
      this.#state[i] = null;
      writeReply2(out, at, Reply2.err, 0n, 0n);
      at += this.#names[i] === null ? REPLY2_SIZE : REPLY2_RESULT_SIZE;
      this.#names[i] = null;
    }
    return out;
  }

  /** Drop the next `frames` slots, all plain WINs (nothing to clear). */
  #skip(frames: number): void {
    if (frames > this.#length) throw new Error('reply queue underflow');
    this.#head = (this.#head + frames) % this.#status.length;
    this.#length -= frames;
  }

  #shift(): number {
    if (this.#length === 0) throw new Error('reply queue underflow');
    const i = this.#head;
    this.#head = (this.#head + 1) % this.#status.length;
    this.#length--;
    return i;
  }

  #grow(): void {
    const n = this.#status.length;
    const order = Array.from({ length: this.#length }, (_, k) => (this.#head + k) % n);
    const status = new Uint8Array(n * 2);
    const detail = new Array<bigint>(n * 2).fill(0n);
    const seq = new Array<bigint>(n * 2).fill(0n);
    const state = new Array<ProducerState | null>(n * 2).fill(null);
    const names = new Array<[Buffer, Buffer] | null>(n * 2).fill(null);
    order.forEach((i, k) => {
      names[k] = this.#names[i]!;
      status[k] = this.#status[i]!;
      detail[k] = this.#detail[i]!;
      seq[k] = this.#seq[i]!;
      state[k] = this.#state[i]!;
    });
    this.#status = status;
    this.#detail = detail;
    this.#seq = seq;
    this.#state = state;
    this.#names = names;
    this.#head = 0;
  }
}
