// The replies of a version-2 write connection (docs/write-protocol-extensions.md):
// one 24-byte reply per frame, in frame order. Every frame takes a slot
// when it is taken (its status decided then, or WIN once its batch is
// durable); GroupCommit then reports the connection's frames durable or
// failed in the same order, and the queue answers that many slots. A frame
// answered without a write (duplicate, fenced, ...) still joins the batch as
// an empty frame, so its reply never overtakes the WINs of the frames
// before it.

import { Reply2, REPLY2_SIZE, writeReply2 } from '../../protocol/write-ops.js';
import type { ProducerState, ProducerTable } from './producers.js';

export class ReplyQueue {
  #status: Uint8Array;
  #detail: BigUint64Array;
  #seq: BigUint64Array;
  #state: Array<ProducerState | null>;
  #head = 0;
  #length = 0;
  readonly #table: ProducerTable;

  constructor(capacity: number, table: ProducerTable) {
    this.#status = new Uint8Array(capacity);
    this.#detail = new BigUint64Array(capacity);
    this.#seq = new BigUint64Array(capacity);
    this.#state = new Array<ProducerState | null>(capacity).fill(null);
    this.#table = table;
  }

  /**
   * One more frame: `status` Reply2.win for a frame written (answered once
   * durable, with the batch's token; `state`/`seq` its producer's, if any),
   * any other status answered as is with `token` and `detail`.
   */
  push(status: number, state: ProducerState | null, seq: bigint, token: bigint, detail: bigint): void {
    if (this.#length === this.#status.length) this.#grow();
    const i = (this.#head + this.#length++) % this.#status.length;
    this.#status[i] = status;
    this.#state[i] = state;
    this.#seq[i] = status === Reply2.win ? seq : token;
    this.#detail[i] = detail;
  }

  /** The next `frames` frames are durable: their replies (WINs carry `token`); their producers learn it. */
  durable(frames: number, token: bigint): Buffer {
    const out = Buffer.allocUnsafe(frames * REPLY2_SIZE);
    for (let k = 0; k < frames; k++) {
      const i = this.#shift();
      const status = this.#status[i]!;
      const state = this.#state[i]!;
      if (status === Reply2.win) {
        if (state !== null) this.#table.durable(state, this.#seq[i]!, token);
        writeReply2(out, k * REPLY2_SIZE, status, token, state !== null ? this.#seq[i]! : 0n);
      } else {
        writeReply2(out, k * REPLY2_SIZE, status, this.#seq[i]!, this.#detail[i]!);
      }
      this.#state[i] = null;
    }
    return out;
  }

  /** The next `frames` frames failed (`unknown`: they may be applied after all); replies ERR for each. */
  failed(frames: number, unknown: boolean): Buffer {
    const out = Buffer.allocUnsafe(frames * REPLY2_SIZE);
    for (let k = 0; k < frames; k++) {
      const i = this.#shift();
      const state = this.#state[i]!;
      if (this.#status[i] === Reply2.win && state !== null) this.#table.failed(state, unknown);
      this.#state[i] = null;
      writeReply2(out, k * REPLY2_SIZE, Reply2.err, 0n, 0n);
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
    order.forEach((i, k) => {
      status[k] = this.#status[i]!;
      detail[k] = this.#detail[i]!;
      seq[k] = this.#seq[i]!;
      state[k] = this.#state[i]!;
    });
    this.#status = status;
    this.#detail = detail;
    this.#seq = seq;
    this.#state = state;
    this.#head = 0;
  }
}
