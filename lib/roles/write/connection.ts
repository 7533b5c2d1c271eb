// One client connection of countd-write: cuts the byte stream into fixed-size
// frames (docs/protocol.md section 1), validates each in place and hands it to the
// group commit, then answers WIN / BAD / ERR in frame order.
//
// Hot path without per-frame allocation: whole frames are validated and
// encoded straight from the socket's chunk; only a frame split across chunks
// is copied, into a carry buffer of one frame.
//
// Memory is bounded: the connection stops reading (socket.pause) while
//   - it has maxPendingFrames frames not yet answered,
//   - the current batch is full (GroupCommit calls roomAvailable later), or
//   - its socket's write buffer is full (the client does not read replies).
// The unprocessed rest of the chunk in hand is kept (at most one chunk).

import type { Socket } from 'node:net';
import { metrics } from '../../metrics.js';
import type { FieldSizes } from '../../protocol/fields.js';
import { REPLY_BAD, validateFrame } from '../../protocol/write-frame.js';
import { FLAG_PROMPT, FLAG_RESULT, Reply2, REPLY2_SIZE, WRITE_OPS_PRODUCERS, WriteOp, helloReply, helloVersion, opFrameSize, validateOpFrame, writeReply2, OP_HEADER_SIZE } from '../../protocol/write-ops.js';
import { readU64LE } from '../../util/int64.js';
import type { Logger } from '../../util/log.js';
import type { BatchMember, GroupCommit } from './group-commit.js';
import { MAX_IN_FLIGHT } from './group-commit.js';
import type { ReplyWriter } from './replies.js';
import { ReplyQueue, type ResultSlot } from './reply-queue.js';
import type { ResultLookup } from './result-lookup.js';
import { HeldReplies } from './held-replies.js';
import { Verdict, type ProducerTable } from './producers.js';

/** Settings and shared objects of all connections of one server. */
export interface ConnectionContext {
  readonly sizes: FieldSizes;
  readonly frameSize: number;
  readonly maxPendingFrames: number;
  readonly groupCommit: GroupCommit;
  readonly replies: ReplyWriter;
  readonly logger: Logger;
  /** Scratch for validateFrame: [keyspace length, key length]. */
  readonly lengths: Int32Array;
  /** How long a closing connection may linger for the client to read its last replies. */
  readonly lingerMs: number;
  /** Whether a hello is answered (docs/write-protocol-extensions.md); off, a hello is a malformed frame, answered BAD. */
  readonly extensions: boolean;
  /**
   * The idempotent producers (version 2 of the extensions); null: version 1
   * only (a writer that cannot rebuild producer state: no read port given).
   */
  readonly producers: ProducerTable | null;
  /** Version 2: looks up the count and rank a FLAG_RESULT frame asks for (null: none, with producers). */
  readonly results: ResultLookup | null;
  /** Called when the socket is closed (for any reason). */
  closed(conn: WriteConnection): void;
}

const enum State {
  /** Reading and answering frames. */
  Open,
  /** A frame was malformed: answer the frames before it, then BAD, then close. */
  Rejecting,
  /** Its last replies are written (or it failed): the socket is ending. */
  Ending,
  /** The socket is closed. */
  Closed,
}

export class WriteConnection implements BatchMember {
  readonly socket: Socket;
  readonly slotFrames = new Int32Array(MAX_IN_FLIGHT + 1);
  failing = false;
  waitingRoom = false;
  awaited = false;
  /** Bytes came in or replies went out since the idle sweep last looked (see writer.ts). */
  active = true;
  /** Idle sweeps in a row that found the connection inactive. */
  idleSweeps = 0;
  /** Frames taken into batches and not answered yet. */
  private pending = 0;
  /**
   * Size of this connection's frames: a plain write frame until the client
   * sends a hello, an op frame after it (docs/write-protocol-extensions.md).
   */
  private frameSize: number;
  private extended = false;
  /** The extension version spoken (after a hello): 2 adds producers and 24-byte replies. */
  private version = 0;
  /** Version 2: one reply slot per frame not answered yet. */
  private replies2: ReplyQueue | null = null;
  /** Replies waiting for the count and rank of a FLAG_RESULT frame, and every reply after them, in order. */
  private held: HeldReplies | null = null;
  /** A hello waits until every frame before it is answered (its reply follows theirs). */
  private helloWaiting = false;
  /** A producer's frame waits for the outcome of that producer's frames on another connection. */
  private producerWaiting = false;
  private readonly wakeBound = (): void => {
    this.producerWaiting = false;
    this.resume();
  };
  private state = State.Open;
  /** The part of a frame that ended a chunk; carryLen === frameSize: a whole frame not yet taken. */
  private carry: Buffer | null = null;
  private carryLen = 0;
  /** Rest of a chunk not processed yet (reading is paused meanwhile). */
  private stash: Buffer | null = null;
  private stashOff = 0;
  private paused = false;
  private pendingFull = false;
  private writeFull = false;
  private readEnded = false;
  /** The server is closing: read nothing more, answer what was received, then end. */
  private draining = false;
  private lingerTimer: NodeJS.Timeout | null = null;
  private readonly ctx: ConnectionContext;

  constructor(socket: Socket, ctx: ConnectionContext) {
    this.socket = socket;
    this.ctx = ctx;
    this.frameSize = ctx.frameSize;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err: Error) => this.ctx.logger.debug('write connection error', { error: err.message }));
    socket.on('close', () => this.onClose());
  }

  /** Nothing received waits for an answer: no frame pending and no unprocessed bytes. */
  get quiet(): boolean {
    return this.pending === 0 && this.stash === null && this.carryLen < this.frameSize;
  }

  get closed(): boolean {
    return this.state === State.Closed;
  }

  private onData(chunk: Buffer): void {
    this.active = true;
    if (this.state !== State.Open) return; // after BAD or ERR, input is discarded
    if (this.stash !== null) {
      // Data that was already on its way when reading paused; rare.
      this.stash = Buffer.concat([this.stash.subarray(this.stashOff), chunk]);
      this.stashOff = 0;
      return;
    }
    this.stash = chunk;
    this.stashOff = 0;
    this.run();
    this.ctx.groupCommit.schedule();
  }

  /**
   * Take frames from the carry and the stash until they run out or something
   * blocks. The frame size is read again after each frame: a hello changes it.
   */
  private run(): void {
    if (this.carryLen === this.frameSize) {
      if (!this.take(this.carry!, 0)) return;
      this.carryLen = 0;
    }
    const buf = this.stash;
    if (buf === null) return;
    let off = this.stashOff;
    const end = buf.length;
    if (this.carryLen > 0) {
      const size = this.frameSize;
      const n = Math.min(size - this.carryLen, end - off);
      buf.copy(this.carry!, this.carryLen, off, off + n);
      this.carryLen += n;
      off += n;
      if (this.carryLen < size) {
        this.stash = null;
        return;
      }
      if (!this.take(this.carry!, 0)) {
        this.keep(buf, off);
        return;
      }
      this.carryLen = 0;
    }
    for (let size = this.frameSize; end - off >= size; size = this.frameSize) {
      if (!this.take(buf, off)) {
        this.keep(buf, off);
        return;
      }
      off += size;
    }
    if (off < end) {
      // Room for either frame size: a hello in this chunk may change it.
      this.carry ??= Buffer.allocUnsafe(Math.max(this.ctx.frameSize, opFrameSize(this.ctx.sizes)));
      buf.copy(this.carry, 0, off, end);
      this.carryLen = end - off;
    }
    this.stash = null;
  }

  /** Remember where processing stopped (unless the connection stopped reading for good). */
  private keep(buf: Buffer, off: number): void {
    if (this.state !== State.Open || off >= buf.length) {
      this.stash = null;
      return;
    }
    this.stash = buf;
    this.stashOff = off;
  }

  /** Validate and batch the frame at buf[off]; false when it was not taken (blocked or rejected). */
  private take(buf: Buffer, off: number): boolean {
    const ctx = this.ctx;
    if (this.pending + this.heldFrames >= ctx.maxPendingFrames) {
      this.pendingFull = true;
      this.pauseReading();
      return false;
    }
    if (this.extended) return this.takeOp(buf, off);
    const lengths = ctx.lengths;
    if (!validateFrame(buf, off, ctx.sizes, lengths)) {
      const version = ctx.extensions ? helloVersion(buf, off, ctx.sizes) : 0;
      if (version === 0) {
        this.reject();
        return false;
      }
      return this.hello(version);
    }
    if (buf.readInt32LE(off) === 0 && buf.readInt32LE(off + 4) === 0) {
      ctx.groupCommit.addEmpty(this);
    } else if (!ctx.groupCommit.add(this, buf, off, lengths[0]!, lengths[1]!)) {
      this.pauseReading();
      return false;
    }
    this.pending++;
    return true;
  }

  /**
   * A hello: once every frame before it is answered, reply "EX" + version
   * and read op frames from here on. Its reply is not a WIN, so it waits
   * for the WINs before it rather than joining a batch.
   */
  private hello(version: number): boolean {
    if (this.pending > 0 || this.heldFrames > 0) {
      this.helloWaiting = true;
      this.pauseReading();
      return false;
    }
    const producers = this.ctx.producers;
    const spoken = Math.min(version, producers === null ? 1 : WRITE_OPS_PRODUCERS);
    if (spoken >= WRITE_OPS_PRODUCERS && !producers!.ready) {
      // Version 2 waits for the producers' state to be rebuilt (producer-load.ts).
      this.producerWaiting = true;
      this.pauseReading();
      producers!.whenReady(this.wakeBound);
      return false;
    }
    this.socket.write(helloReply(version, spoken));
    this.version = spoken;
    if (spoken >= WRITE_OPS_PRODUCERS) this.replies2 = new ReplyQueue(64, producers!);
    this.extended = true;
    this.frameSize = opFrameSize(this.ctx.sizes);
    return true;
  }

  /** An op frame of an extended connection. */
  private takeOp(buf: Buffer, off: number): boolean {
    const ctx = this.ctx;
    const lengths = ctx.lengths;
    const op = validateOpFrame(buf, off, ctx.sizes, lengths, this.version);
    if (op === 0) {
      this.reject();
      return false;
    }
    const ksOff = off + OP_HEADER_SIZE;
    const queue = this.replies2;
    if (queue !== null && (buf[off + 16]! | buf[off + 17]! | buf[off + 18]! | buf[off + 19]! | buf[off + 20]! | buf[off + 21]! | buf[off + 22]! | buf[off + 23]!) !== 0) {
      return this.takeProducerOp(queue, op, buf, off);
    }
    if (op === WriteOp.increment && isZero64(buf, off + 8)) {
      ctx.groupCommit.addEmpty(this);
    } else if (!ctx.groupCommit.addOpCopy(this, op, buf, off + 8, buf, ksOff, lengths[0]!, ksOff + ctx.sizes.keyspaceSize, lengths[1]!)) {
      this.pauseReading();
      return false;
    }
    if (queue !== null) {
      if ((buf[off + 1]! & (FLAG_PROMPT | FLAG_RESULT)) === 0) queue.pushWin();
      else {
        queue.push(Reply2.win, null, 0n, 0n, 0n, resultNames(buf, off, ctx));
        ctx.groupCommit.prompt();
      }
    }
    this.pending++;
    return true;
  }

  /** An op frame of an idempotent producer (version 2): written, answered at once, or waiting (producers.ts). */
  private takeProducerOp(queue: ReplyQueue, op: number, buf: Buffer, off: number): boolean {
    const ctx = this.ctx;
    const table = ctx.producers!;
    const id = readU64LE(buf, off + 16);
    const epoch = buf.readUInt32LE(off + 24);
    const seq = readU64LE(buf, off + 32);
    const verdict = table.admit(this, id, epoch, seq, Date.now());
    const st = table.state!;
    if (verdict === Verdict.Wait) {
      this.producerWaiting = true;
      this.pauseReading();
      table.wait(st, this.wakeBound);
      return false;
    }
    if (verdict === Verdict.Accept) {
      const ksOff = off + OP_HEADER_SIZE;
      if (!ctx.groupCommit.addProducerOp(this, op, buf, off, ksOff, ctx.lengths[0]!, ksOff + ctx.sizes.keyspaceSize, ctx.lengths[1]!)) {
        table.retract(st);
        this.pauseReading();
        return false;
      }
      queue.push(Reply2.win, st, seq, 0n, 0n, resultNames(buf, off, ctx));
      if ((buf[off + 1]! & (FLAG_PROMPT | FLAG_RESULT)) !== 0) ctx.groupCommit.prompt();
    } else {
      const status = verdict === Verdict.Duplicate ? Reply2.duplicate : verdict === Verdict.Fenced ? Reply2.fenced : verdict === Verdict.Limit ? Reply2.limit : verdict === Verdict.OutOfSequence ? Reply2.outOfSequence : Reply2.err;
      queue.push(status, null, 0n, verdict === Verdict.Duplicate ? st.token : 0n, table.detail, resultNames(buf, off, ctx));
      ctx.groupCommit.addEmpty(this);
    }
    this.pending++;
    return true;
  }

  private reject(): void {
    metrics.framesRejected.inc();
    this.state = State.Rejecting;
    this.stash = null;
    this.carryLen = 0;
    this.pauseReading();
    this.finishIfDone();
  }

  durable(frames: number, token: bigint): number {
    this.pending -= frames;
    this.active = true;
    let sent = 0;
    const lookups: ResultSlot[] = [];
    const v2 = this.replies2?.durable(frames, token, lookups);
    if (v2 !== undefined && (lookups.length > 0 || this.held !== null) && (this.state === State.Open || this.state === State.Rejecting)) {
      this.hold(v2, lookups, frames);
      sent = frames;
    } else if (this.state === State.Open || this.state === State.Rejecting) {
      if (!(v2 !== undefined ? this.socket.write(v2) : this.ctx.replies.win(this.socket, frames)) && !this.writeFull) {
        this.writeFull = true;
        this.pauseReading();
      }
      sent = frames;
    }
    this.unblocked();
    return sent;
  }

  /** Frames whose replies are held (FLAG_RESULT lookups, and those after them). */
  private get heldFrames(): number {
    return this.held?.frames ?? 0;
  }

  /** Fewer frames wait for their replies: read again, answer a waiting hello, or end. */
  private unblocked(): void {
    if (this.pendingFull && this.pending + this.heldFrames < this.ctx.maxPendingFrames) {
      this.pendingFull = false;
      this.resume();
    }
    if (this.helloWaiting && this.pending === 0 && this.heldFrames === 0) {
      this.helloWaiting = false;
      this.resume();
    }
    this.finishIfDone();
  }

  /** Queue `replies` behind those held: written once the lookups of theirs and of every reply before them are done. */
  private hold(replies: Buffer, lookups: ResultSlot[], frames: number): void {
    this.held ??= new HeldReplies(this.ctx.results, this.socket, () => {
      this.held = null;
      this.unblocked();
    });
    this.held.add(replies, lookups, frames);
  }

  failed(frames: number, _err: unknown, answer: boolean): number {
    this.pending -= frames;
    this.failing = false;
    this.ctx.groupCommit.forget(this);
    const v2 = this.replies2?.failed(frames, !answer);
    if (this.state === State.Closed || this.state === State.Ending) return 0;
    // Without an answer the client sees the connection lost before the
    // reply: "may or may not have been applied", which is the truth then.
    if (answer) {
      if (v2 !== undefined && this.held !== null) this.hold(v2, [], 0);
      else if (v2 !== undefined) this.socket.write(v2);
      else this.ctx.replies.err(this.socket, frames);
    }
    this.end();
    return answer ? frames : 0;
  }

  roomAvailable(): void {
    this.resume();
  }

  private onDrain(): void {
    if (!this.writeFull) return;
    this.writeFull = false;
    this.resume();
  }

  /** A block cleared: process what was kept, then read again if nothing blocks. */
  private resume(): void {
    if (this.state !== State.Open) return;
    if (this.waitingRoom || this.pendingFull || this.helloWaiting || this.producerWaiting || (this.writeFull && !this.draining)) return;
    if (this.stash !== null || this.carryLen === this.frameSize) {
      this.run();
      this.ctx.groupCommit.schedule();
      if (this.state !== State.Open || this.stash !== null || this.carryLen === this.frameSize) return;
    }
    if (this.paused && !this.draining && !this.readEnded) {
      this.paused = false;
      this.socket.resume();
    }
    this.finishIfDone();
  }

  private pauseReading(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  private onEnd(): void {
    // The client will send nothing more (it may still read): answer what it sent, then end.
    this.readEnded = true;
    this.finishIfDone();
  }

  /** Server shutdown: read nothing more; the connection ends once what it received is answered. */
  drain(): void {
    this.draining = true;
    this.pauseReading();
    if (this.writeFull) this.resume();
    this.finishIfDone();
  }

  /** End the connection once nothing it sent waits for an answer. */
  private finishIfDone(): void {
    if (this.pending > 0 || this.heldFrames > 0) return;
    if (this.state === State.Rejecting) {
      this.socket.write(this.replies2 !== null ? badReply2() : REPLY_BAD);
      this.end();
    } else if (this.state === State.Open && (this.readEnded || this.draining) && this.stash === null && this.carryLen < this.frameSize) {
      // A partial frame left in carry is dropped: never applied, never answered.
      this.end();
    }
  }

  /**
   * Half-close, then give the client a moment to read its last replies
   * before the socket is destroyed. Closing at once would turn unread input
   * into a TCP reset, which can make the client lose those replies.
   */
  private end(): void {
    if (this.state === State.Ending || this.state === State.Closed) return;
    this.state = State.Ending;
    this.stash = null;
    this.carryLen = 0;
    this.ctx.groupCommit.forget(this);
    // Replies still held go out first (HeldReplies ends the socket after them).
    if (this.held !== null) this.held.endAfter();
    else this.socket.end();
    if (!this.readEnded) {
      // Keep reading (and discarding) so the client's close is seen.
      this.paused = false;
      this.socket.resume();
    }
    this.lingerTimer = setTimeout(() => this.socket.destroy(), this.ctx.lingerMs);
    this.lingerTimer.unref();
  }

  /** Idle for the whole timeout: close if nothing waits for an answer. */
  idle(): void {
    if (this.state !== State.Open || this.quiet) this.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.state === State.Closed) return;
    this.state = State.Closed;
    this.stash = null;
    this.carryLen = 0;
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.ctx.groupCommit.forget(this);
    this.ctx.closed(this);
  }
}

/** The names of a FLAG_RESULT frame (copies: the frame's buffer is reused), else null. */
function resultNames(buf: Buffer, off: number, ctx: ConnectionContext): [Buffer, Buffer] | null {
  if ((buf[off + 1]! & FLAG_RESULT) === 0) return null;
  const ksOff = off + OP_HEADER_SIZE;
  const keyOff = ksOff + ctx.sizes.keyspaceSize;
  return [Buffer.from(buf.subarray(ksOff, ksOff + ctx.lengths[0]!)), Buffer.from(buf.subarray(keyOff, keyOff + ctx.lengths[1]!))];
}

/** The 8 bytes at buf[off] are all 0 (an increment of 0), read without a BigInt. */
function isZero64(buf: Buffer, off: number): boolean {
  return (buf[off]! | buf[off + 1]! | buf[off + 2]! | buf[off + 3]! | buf[off + 4]! | buf[off + 5]! | buf[off + 6]! | buf[off + 7]!) === 0;
}

function badReply2(): Buffer {
  const buf = Buffer.allocUnsafe(REPLY2_SIZE);
  writeReply2(buf, 0, Reply2.bad, 0n, 0n);
  return buf;
}
