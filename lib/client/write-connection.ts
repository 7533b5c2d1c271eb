// A pipelined connection to the write port (docs/protocol.md section 1): frames
// out, one 3-byte reply (WIN / BAD / ERR) per frame back, in order; after a
// hello answered with version 2 (docs/write-protocol-extensions.md), one
// 24-byte reply per frame (status, token, detail); 40 bytes, with the key's
// count and rank, for a frame with FLAG_RESULT (24 when it is answered BAD).

import { CountdError, ErrorCodes } from '../errors.js';
import { WRITE_REPLY_SIZE } from '../protocol/write-frame.js';
import { FLAG_RESULT, REPLY2_RESULT_SIZE, REPLY2_SIZE, Reply2, decodeReply2, decodeReplyResult, type ReplyResult } from '../protocol/write-ops.js';
import { Connection, Endpoint } from './connection.js';
import { Pending } from './pending.js';

/** What a version-2 write was answered: durable now, or durable before (a retried duplicate). */
export interface WriteAck {
  /** The write's token: pass it to a read (`after`) to read your write. */
  token: bigint;
  /** True when this (producer, epoch, sequence) was made durable before: nothing new was written. */
  duplicate: boolean;
  /** Asked for (FLAG_RESULT): the key's count and rank once the write was applied (ResultState in `state`). */
  result?: ReplyResult;
}

/** A call waiting for its reply; `v2`: the reply is a 24-byte version-2 one. */
interface WriteCall extends Pending<WriteAck | void> {
  v2?: boolean;
  /** The frame asked for its key's count and rank: a 40-byte reply (24 when BAD). */
  result?: boolean;
}

const W = 0x57; // 'W' of WIN
const B = 0x42; // 'B' of BAD
const E = 0x45; // 'E' of ERR and of EX (the reply to a hello: docs/write-protocol-extensions.md)
const X = 0x58;

export class WriteConnection extends Connection<WriteCall> {
  /** A reply split across two chunks. */
  #partial: Buffer | undefined;

  constructor(endpoint: Endpoint) {
    super(endpoint, 'write');
  }

  /** Whether a hello was sent on this connection: op frames follow it (docs/write-protocol-extensions.md). */
  extended = false;

  /** The version the server answered the hello with (0 before). */
  version = 0;

  /** Send one encoded frame; resolves on WIN. */
  send(frame: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => this.enqueue(frame, { resolve: () => resolve(), reject }));
  }

  /** Send one op frame on a connection whose hello was answered with version 2; resolves on WIN or duplicate. */
  send2(frame: Buffer): Promise<WriteAck> {
    const result = (frame[1]! & FLAG_RESULT) !== 0; // its reply is 40 bytes
    return new Promise<WriteAck>((resolve, reject) => this.enqueue(frame, { v2: true, result, resolve: (ack) => resolve(ack as WriteAck), reject }));
  }

  /**
   * Send a hello (a plain-size frame, lib/protocol/write-ops.ts); resolves
   * on its "EX" reply. A server without the extensions answers BAD and closes:
   * COUNTD_REJECTED, saying so.
   */
  hello(frame: Buffer): Promise<void> {
    this.extended = true;
    return new Promise<void>((resolve, reject) =>
      this.enqueue(frame, {
        resolve: () => resolve(),
        reject: (err: Error) =>
          reject(
            (err as CountdError).code === ErrorCodes.REJECTED
              ? new CountdError(ErrorCodes.REJECTED, 'the server does not speak the extended write protocol (it answered the hello BAD): sets and deletes need countd 0.5.0 or later', { cause: err })
              : err,
          ),
      }),
    );
  }

  protected onData(chunk: Buffer): void {
    let data = chunk;
    if (this.#partial !== undefined) {
      data = Buffer.concat([this.#partial, chunk]);
      this.#partial = undefined;
    }
    let pos = 0;
    for (;;) {
      const next = this.pending.peek();
      if (next?.result === true && pos >= data.length) break;
      const size = next?.result === true && data[pos] !== Reply2.bad ? REPLY2_RESULT_SIZE : next?.v2 === true ? REPLY2_SIZE : WRITE_REPLY_SIZE;
      if (pos + size > data.length) break;
      const call = this.pending.shift();
      if (call === undefined) {
        this.fail(this.connectionError('the server sent a reply nobody asked for'));
        return;
      }
      if (call.v2 === true) {
        if (!this.#reply2(call, data, pos, size === REPLY2_RESULT_SIZE)) return;
        pos += size;
        continue;
      }
      const reply = data.toString('latin1', pos, pos + WRITE_REPLY_SIZE);
      if (reply === 'WIN' && data[pos] === W) {
        call.resolve();
      } else if (reply === 'BAD' && data[pos] === B) {
        this.retire();
        call.reject(new CountdError(ErrorCodes.REJECTED, 'the server rejected the frame as malformed (BAD)'));
      } else if (data[pos] === E && data[pos + 1] === X && data[pos + 2]! >= 1) {
        this.version = data[pos + 2]!;
        call.resolve();
      } else if (reply === 'ERR' && data[pos] === E) {
        this.retire();
        call.reject(
          new CountdError(ErrorCodes.SERVER_ERROR, 'the server could not make the increment durable (ERR); it was not applied'),
        );
      } else {
        call.reject(this.connectionError(`unexpected reply ${JSON.stringify(reply)}`));
        this.fail(this.connectionError('the connection failed after an unexpected reply'));
        return;
      }
      pos += size;
    }
    if (pos < data.length) this.#partial = Buffer.from(data.subarray(pos));
    if (this.pending.length === 0) this.settled();
  }

  /** Settle `call` with the version-2 reply at data[pos]; false when the reply is no valid one (the connection failed). */
  #reply2(call: WriteCall, data: Buffer, pos: number, withResult: boolean): boolean {
    const r: (ReturnType<typeof decodeReply2> & { result?: ReplyResult }) | null = withResult ? withTail(decodeReplyResult(data, pos)) : decodeReply2(data, pos);
    if (r === null) {
      call.reject(this.connectionError('unexpected version-2 reply'));
      this.fail(this.connectionError('the connection failed after an unexpected reply'));
      return false;
    }
    switch (r.status) {
      case Reply2.win:
      case Reply2.duplicate:
        call.resolve({ token: r.token, duplicate: r.status === Reply2.duplicate, ...(r.result !== undefined ? { result: r.result } : {}) });
        break;
      case Reply2.fenced:
        call.reject(new CountdError(ErrorCodes.FENCED, `the producer is fenced: a newer instance (epoch ${r.detail}) writes with this producer id; nothing was written`));
        break;
      case Reply2.outOfSequence:
        call.reject(new CountdError(ErrorCodes.OUT_OF_SEQUENCE, `sequence out of order: the writer expects ${r.detail} next (or one already made durable); nothing was written`));
        break;
      case Reply2.limit:
        call.reject(new CountdError(ErrorCodes.PRODUCER_LIMIT, `the writer tracks its maximum of ${r.detail} idempotent producers (--max-producers) and none has expired; nothing was written`));
        break;
      case Reply2.bad:
        this.retire();
        call.reject(new CountdError(ErrorCodes.REJECTED, 'the server rejected the frame as malformed (BAD)'));
        break;
      default:
        this.retire();
        call.reject(new CountdError(ErrorCodes.SERVER_ERROR, 'the server could not make the write durable (ERR); it was not applied'));
    }
    return true;
  }
}

/** A 40-byte reply as the 24-byte one plus its count and rank. */
function withTail(r: ReturnType<typeof decodeReplyResult>): (ReturnType<typeof decodeReply2> & { result: ReplyResult }) | null {
  return r === null ? null : { status: r.status, token: r.token, detail: r.detail, result: { state: r.state, count: r.count, rank: r.rank } };
}
