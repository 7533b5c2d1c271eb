// Replies of the write protocol (docs/protocol.md section 1) sent many at a time.
// A group commit answers each connection with one socket.write of n × "WIN";
// the bytes come from one preallocated buffer of repeated replies, so
// answering costs no allocation beyond the slice header.

import type { Socket } from 'node:net';
import { REPLY_ERR, REPLY_WIN, WRITE_REPLY_SIZE } from '../../protocol/write-frame.js';

/** `reply` repeated `count` times, in one buffer. */
function repeated(reply: Buffer, count: number): Buffer {
  const buf = Buffer.allocUnsafe(reply.length * count);
  for (let i = 0; i < count; i++) reply.copy(buf, i * reply.length);
  return buf;
}

export class ReplyWriter {
  private readonly wins: Buffer;
  private readonly errs: Buffer;
  private readonly maxRun: number;

  /** `maxRun` is how many replies one write normally carries (the per-connection pending limit). */
  constructor(maxRun: number) {
    this.maxRun = Math.max(1, Math.min(maxRun, 65536));
    this.wins = repeated(REPLY_WIN, this.maxRun);
    this.errs = repeated(REPLY_ERR, this.maxRun);
  }

  /** Write `count` WINs; returns socket.write's verdict (false: its buffer is full). */
  win(socket: Socket, count: number): boolean {
    return this.write(socket, this.wins, count);
  }

  /** Write `count` ERRs. */
  err(socket: Socket, count: number): boolean {
    return this.write(socket, this.errs, count);
  }

  private write(socket: Socket, replies: Buffer, count: number): boolean {
    let ok = true;
    while (count > this.maxRun) {
      ok = socket.write(replies);
      count -= this.maxRun;
    }
    if (count > 0) ok = socket.write(replies.subarray(0, count * WRITE_REPLY_SIZE));
    return ok;
  }
}
