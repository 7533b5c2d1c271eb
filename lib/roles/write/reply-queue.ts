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
  #detail: BigUint64Array;
  #seq: BigUint64Array;
  #state: Array<ProducerState | null>;
  /** FLAG_RESULT frames: their names (keyspace, key), else null. */
  #names: Array<[Buffer, Buffer] | null>;
  #head = 0;
  #length = 0;
  readonly #table: ProducerTable;

  constructor(capacity: number, table: ProducerTable) {
    this.#status = new Uint8Array(capacity);
    this.#detail = new BigUint64Array(capacity);
    this.#seq = new BigUint64Array(capacity);
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
    const out = Buffer.allocUnsafe(this.#bytes(frames));
    let at = 0;
    for (let k = 0; k < frames; k++) {
      const i = this.#shift();
      const status = this.#status[i]!;
      const state = this.#state[i]!;
      const names = this.#names[i]!;
      const replyToken = status === Reply2.win ? token : this.#seq[i]!;
      const detail = status === Reply2.win ? (state !== null ? this.#seq[i]! : 0n) : this.#detail[i]!;
      if (status === Reply2.win && state !== null) this.#table.durable(state, this.#seq[i]!, token);
      if (names === null) {
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
      if (this.#status[i] === Reply2.win && state !== null) this.#table.failed(state, unknown);
      this.#state[i] = null;
      writeReply2(out, at, Reply2.err, 0n, 0n);
      at += this.#names[i] === null ? REPLY2_SIZE : REPLY2_RESULT_SIZE;
      this.#names[i] = null;
    }
    return out;
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
    const detail = new BigUint64Array(n * 2);
    const seq = new BigUint64Array(n * 2);
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
