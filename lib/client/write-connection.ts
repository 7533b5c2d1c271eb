// A pipelined connection to the write port (docs/protocol.md section 1): frames
// out, one 3-byte reply (WIN / BAD / ERR) per frame back, in order.

import { CountdError, ErrorCodes } from '../errors.js';
import { WRITE_REPLY_SIZE } from '../protocol/write-frame.js';
import { Connection, Endpoint } from './connection.js';
import { Pending } from './pending.js';

const W = 0x57; // 'W' of WIN
const B = 0x42; // 'B' of BAD
const E = 0x45; // 'E' of ERR and of EX (the reply to a hello: docs/write-protocol-extensions.md)
const X = 0x58;

export class WriteConnection extends Connection<Pending<void>> {
  /** A reply split across two chunks. */
  #partial: Buffer | undefined;

  constructor(endpoint: Endpoint) {
    super(endpoint, 'write');
  }

  /** Whether a hello was sent on this connection: op frames follow it (docs/write-protocol-extensions.md). */
  extended = false;

  /** Send one encoded frame; resolves on WIN. */
  send(frame: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => this.enqueue(frame, { resolve, reject }));
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
        resolve,
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
    for (; pos + WRITE_REPLY_SIZE <= data.length; pos += WRITE_REPLY_SIZE) {
      const call = this.pending.shift();
      if (call === undefined) {
        this.fail(this.connectionError('the server sent a reply nobody asked for'));
        return;
      }
      const reply = data.toString('latin1', pos, pos + WRITE_REPLY_SIZE);
      if (reply === 'WIN' && data[pos] === W) {
        call.resolve();
      } else if (reply === 'BAD' && data[pos] === B) {
        this.retire();
        call.reject(new CountdError(ErrorCodes.REJECTED, 'the server rejected the frame as malformed (BAD)'));
      } else if (data[pos] === E && data[pos + 1] === X && data[pos + 2]! >= 1) {
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
    }
    if (pos < data.length) this.#partial = Buffer.from(data.subarray(pos));
    if (this.pending.length === 0) this.settled();
  }
}
