// A pipelined connection to the write port (docs/protocol.md section 1): frames
// out, one 3-byte reply (WIN / BAD / ERR) per frame back, in order.

import { CountdError, ErrorCodes } from '../errors.js';
import { WRITE_REPLY_SIZE } from '../protocol/write-frame.js';
import { Connection, Endpoint } from './connection.js';
import { Pending } from './pending.js';

const W = 0x57; // 'W' of WIN
const B = 0x42; // 'B' of BAD
const E = 0x45; // 'E' of ERR

export class WriteConnection extends Connection<Pending<void>> {
  /** A reply split across two chunks. */
  #partial: Buffer | undefined;

  constructor(endpoint: Endpoint) {
    super(endpoint, 'write');
  }

  /** Send one encoded frame; resolves on WIN. */
  send(frame: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => this.enqueue(frame, { resolve, reject }));
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
