// Group commit for countd-write: frames from every connection are encoded
// into one batch, and a batch becomes durable with ONE CommitLogWriter.append
// (one write + one fdatasync). Two preallocated batch buffers alternate:
// while one is being appended ("in flight"), validated frames are encoded
// into the other ("current"). When the append resolves, the next one starts
// at once if frames are waiting, and every connection of the finished batch
// gets its WINs in one write. So the disk never waits for the CPU to answer,
// and the fdatasync cost is shared by every frame that arrived meanwhile.
// A batch of few connections (a lone synchronous client) is committed
// inline instead, on this thread with no threadpool hop, and its WINs go
// out before the next commit blocks the thread (GroupCommit.inline).
//
// Per-connection order holds because a connection's frames enter batches in
// the order they arrive and batches complete in the order they start.
//
// Failure: when an append rejects, every frame of that batch fails, and so do
// the later frames of the same connections that wait in the current batch
// (they are removed from it before it is appended, so "ERR: nothing of it is
// applied" stays true). Those connections get ERR for each and are closed;
// the other frames of the current batch go on to the next append. If the
// commit log could not cut the failed record off (AppendFailure
// outcomeUnknown), those connections are closed without an answer instead:
// their frames may be applied, and ERR would say they are not.

import { OP_INCREMENT, PRODUCER_TRAILER_SIZE, copyProducerTrailer, markProducerContinuation, RECORD_BATCH, RECORD_OPS, entrySize, opEntrySize, writeEntryCopy, writeEntryFromFrame, writeOpEntryCopy } from '../../commitlog/format.js';
import { invalidArgument } from '../../errors.js';
import { metrics } from '../../metrics.js';
import type { FieldSizes } from '../../protocol/fields.js';
import { writeI64LE } from '../../util/int64.js';
import type { Logger } from '../../util/log.js';
import { BACKGROUND_SCAN, type CommitTrace } from './trace.js';
import { MAX_WAIT_US, Rejoin } from './rejoin.js';
import { Batch, type BatchMember } from './batch.js';

/** The part of CommitLogWriter (lib/commitlog/writer.ts) a group commit needs. */
export interface CommitLogSink {
  readonly maxBatchBytes: number;
  /** Resolves once durable, to the sequence number of the batch's last frame (its token) when the sink numbers frames. */
  append(entries: Buffer, count: number, inline?: boolean, type?: number): Promise<bigint | void>;
  /** Hand the log being filled over to the worker now (a frame asked to be readable soon). */
  handOverSoon?(): void;
  /**
   * Appends this sink takes at once (default 1), at most MAX_IN_FLIGHT. Above
   * 1 (cluster mode: lib/cluster/publisher.ts coalesces them) its failures must
   * have an unknown outcome: a later append may succeed after an earlier one
   * failed, so no frame of a failed one is answered ERR.
   */
  readonly maxInFlight?: number;
  /** The background work under way now, as BACKGROUND_* bits of trace.ts (commit tracing only). */
  backgroundWork?(): number;
}

/** Most appends a sink may have in flight (BatchMember.slotFrames holds one count per batch: MAX_IN_FLIGHT + 1). */
export const MAX_IN_FLIGHT = 3;

/** The part of flow control (flow.ts) a group commit needs. */
export interface FlowGate {
  /** Take no frame now: members wait as for room (resume() wakes them). */
  readonly stopped: boolean;
  /** How long to hold the WINs of a durable batch of `bytes` (and the next commit). */
  delayMs(bytes: number): number;
  /** A scan of the pool for the backlog is under way (commit tracing only). */
  readonly scanning?: boolean;
}

export type { BatchMember } from './batch.js';

const NO_APPEND: Promise<bigint | void> = Promise.resolve();
/** Batches of at most this many connections are committed inline (see GroupCommit.inline). */
export const INLINE_MAX_MEMBERS = 4;

export class GroupCommit {
  private readonly log: CommitLogSink;
  private readonly sizes: FieldSizes;
  private readonly logger: Logger;
  private readonly batches: readonly Batch[];
  private current: Batch;
  /** Batches being appended, oldest first; their outcomes are taken up in this order. */
  private readonly inflight: Batch[] = [];
  private readonly maxInFlight: number;
  private scheduled = false;
  private waiters: BatchMember[] = [];
  private spareWaiters: BatchMember[] = [];
  private spareMembers: BatchMember[] = [];
  private ackCounts = new Int32Array(256);
  private idleWaiters: Array<() => void> = [];
  private readonly startBound = (): void => this.start();
  /** Members of the batch whose WINs deliver() is about to send. */
  private acking: BatchMember[] | null = null;
  private readonly doneBound = (): void => {
    this.done();
    this.drain();
  };
  private readonly deliverBound = (): void => this.deliver();
  private readonly trace: CommitTrace | null;
  private durableAt = 0;
  /** The background work under way when the in-flight commit started (tracing only). */
  private backgroundAtStart = 0;
  private readonly flow: FlowGate | null;
  /** done() is holding the in-flight batch's WINs for flow control. */
  private held = false;
  /** Token of the last durable batch (the sequence number of its last frame). */
  private lastToken = 0n;
  /** Token of the batch whose WINs deliver() sends. */
  private ackToken = 0n;
  /** Seconds the in-flight append took (-1: no append), and what deliver() records for the batch it answers: after its WINs, off their path. */
  private commitSeconds = -1;
  private ackSeconds = -1;
  private ackFrames = 0;
  private readonly inlineMax: number;
  /** The next commit waits a moment for the connections just answered (rejoin.ts). */
  readonly rejoin: Rejoin;
  /** start() is waiting for them. */
  private rejoining = false;
  /** addOp's value as bytes, for addOpCopy. */
  private readonly valueScratch = Buffer.alloc(8);

  constructor(log: CommitLogSink, sizes: FieldSizes, logger: Logger, trace: CommitTrace | null = null, flow: FlowGate | null = null, inlineMax = INLINE_MAX_MEMBERS, rejoinUs = MAX_WAIT_US) {
    if (!Number.isSafeInteger(inlineMax) || inlineMax < 0) throw invalidArgument(`inlineMax must be a whole number, got ${String(inlineMax)}`);
    if (!Number.isSafeInteger(rejoinUs) || rejoinUs < 0) throw invalidArgument(`rejoinUs must be a whole number, got ${String(rejoinUs)}`);
    this.rejoin = new Rejoin(rejoinUs);
    this.log = log;
    this.inlineMax = inlineMax;
    this.flow = flow;
    this.sizes = sizes;
    this.logger = logger;
    this.trace = trace;
    const size = log.maxBatchBytes;
    const largest = opEntrySize(sizes.keyspaceSize, sizes.keySize);
    if (!(size >= largest)) {
      throw invalidArgument(`commit log batch size ${size} is below one entry of ${largest} bytes (raise logSize)`);
    }
    const inFlight = log.maxInFlight ?? 1;
    if (!Number.isSafeInteger(inFlight) || inFlight < 1 || inFlight > MAX_IN_FLIGHT) throw invalidArgument(`maxInFlight must be a whole number from 1 to ${MAX_IN_FLIGHT}, got ${String(inFlight)}`);
    this.maxInFlight = inFlight;
    this.batches = Array.from({ length: inFlight + 1 }, (_, slot) => new Batch(slot, size));
    this.current = this.batches[0];
  }

  /** True when no frame waits in a batch or an append. */
  get idle(): boolean {
    return this.inflight.length === 0 && this.acking === null && this.current.frames === 0 && this.waiters.length === 0;
  }

  /** Resolves once idle (used by close: every frame received is acked first). */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Encode the valid frame at frame[offset] (names of ksLen and keyLen bytes)
   * into the current batch. Returns false when the batch has no room: the
   * member is then told roomAvailable() once a fresh batch is current.
   */
  add(member: BatchMember, frame: Buffer, offset: number, ksLen: number, keyLen: number): boolean {
    const b = this.current;
    if (b.ops) return this.addOpCopy(member, OP_INCREMENT, frame, offset, frame, offset + 8, ksLen, offset + 8 + this.sizes.keyspaceSize, keyLen);
    const end = b.bytes + entrySize(ksLen, keyLen);
    if (end > b.buf.length || this.flow?.stopped === true) {
      this.waitForRoom(member);
      return false;
    }
    writeEntryFromFrame(b.buf, b.bytes, frame, offset, ksLen, keyLen, this.sizes);
    b.push(member, end);
    this.count(member, b);
    return true;
  }

  /**
   * Encode an operation (lib/commitlog/format.ts op codes) whose names are
   * in `src` at ksOff and keyOff (keyLen 0: a keyspace delete) into the
   * current batch, turning it into an ops batch first unless `op` is an
   * increment and the batch is plain. Returns false when the batch has no
   * room (as add()).
   */
  addOp(member: BatchMember, op: number, value: bigint, src: Buffer, ksOff: number, ksLen: number, keyOff: number, keyLen: number): boolean {
    writeI64LE(this.valueScratch, 0, value);
    return this.addOpCopy(member, op, this.valueScratch, 0, src, ksOff, ksLen, keyOff, keyLen);
  }

  /**
   * addOp with the value's 8 bytes (little-endian i64) read from
   * valueSrc[valueOff] rather than given as a BigInt: the hot path of
   * version-2 frames, which makes no BigInt per frame.
   */
  addOpCopy(member: BatchMember, op: number, valueSrc: Buffer, valueOff: number, src: Buffer, ksOff: number, ksLen: number, keyOff: number, keyLen: number): boolean {
    const b = this.current;
    if (op === OP_INCREMENT && !b.ops) {
      const end = b.bytes + entrySize(ksLen, keyLen);
      if (end > b.buf.length) return this.noRoom(member);
      b.push(member, writeEntryCopy(b.buf, b.bytes, valueSrc, valueOff, src, ksOff, ksLen, keyOff, keyLen));
      this.count(member, b);
      return true;
    }
    if (!b.toOps() || !b.fits(opEntrySize(ksLen, keyLen))) return this.noRoom(member);
    b.push(member, writeOpEntryCopy(b.buf, b.bytes, op, valueSrc, valueOff, src, ksOff, ksLen, keyOff, keyLen));
    this.count(member, b);
    return true;
  }

  /**
   * An op of an idempotent producer (docs/write-protocol-extensions.md,
   * version 2): the op frame at frame[off], written as an op entry with the
   * producer trailer (its fields copied from the frame's bytes 16 … 39), in
   * an OPS batch.
   */
  addProducerOp(member: BatchMember, op: number, frame: Buffer, off: number, ksOff: number, ksLen: number, keyOff: number, keyLen: number): boolean {
    const b = this.current;
    const continues = b.run.continues(b.entries - 1, b.owners[b.entries - 1] === member, frame, off + 16);
    if (!b.toOps() || !b.fits(opEntrySize(ksLen, keyLen) + (continues ? 0 : PRODUCER_TRAILER_SIZE))) return this.noRoom(member);
    const end = writeOpEntryCopy(b.buf, b.bytes, op, frame, off + 8, frame, ksOff, ksLen, keyOff, keyLen);
    if (continues) {
      markProducerContinuation(b.buf, b.bytes);
      b.push(member, end);
    } else {
      b.push(member, copyProducerTrailer(b.buf, b.bytes, end, frame, off + 16));
    }
    b.run.extend(b.entries - 1, frame, off + 16);
    this.count(member, b);
    return true;
  }

  /** A frame of the current batch asked for a prompt hand-over (FLAG_PROMPT). */
  prompt(): void {
    this.current.prompt = true;
  }

  private noRoom(member: BatchMember): false {
    this.waitForRoom(member);
    return false;
  }

  /** Add a frame with increment 0: nothing is written, but its WIN waits for the frames before it. */
  addEmpty(member: BatchMember): void {
    this.count(member, this.current);
  }

  private count(member: BatchMember, b: Batch): void {
    if (b.frames === 0 && this.trace !== null) b.firstAt = performance.now();
    if (member.awaited) this.rejoin.joined(member);
    if (member.slotFrames[b.slot]++ === 0) b.members.push(member);
    b.frames++;
  }

  private waitForRoom(member: BatchMember): void {
    if (member.waitingRoom) return;
    member.waitingRoom = true;
    this.waiters.push(member);
  }

  /**
   * Start an append soon if none is in flight. Deferred with setImmediate so
   * that every socket read of this event-loop turn joins the batch.
   */
  schedule(): void {
    if (this.inflight.length >= this.maxInFlight || this.scheduled || this.current.frames === 0) return;
    this.scheduled = true;
    setImmediate(this.startBound);
  }

  private start(): void {
    this.scheduled = false;
    if (this.inflight.length >= this.maxInFlight || this.current.frames === 0) return;
    const b = this.current;
    if (b.entries > 0 && this.inline(b) && this.rejoin.holds(performance.now())) {
      // Try again on the next turn of the event loop: its reads may bring them.
      this.rejoining = true;
      this.scheduled = true;
      setImmediate(this.startBound);
      return;
    }
    this.rejoin.starting(this.rejoining);
    this.rejoining = false;
    this.inflight.push(b);
    // The batches are a ring: the one after b is free (the oldest in flight finished before b could start).
    this.current = this.batches[(b.slot + 1) % this.batches.length]!;
    b.settled = 'no';
    let appended: Promise<bigint | void>;
    if (b.entries === 0) {
      appended = NO_APPEND;
    } else {
      b.startedAt = performance.now();
      if (this.trace !== null) {
        this.trace.since('wait', b.firstAt);
        this.backgroundAtStart = this.background();
      }
      try {
        appended = this.log.append(b.buf.subarray(0, b.bytes), b.entries, this.inline(b), b.ops ? RECORD_OPS : RECORD_BATCH);
      } catch (err) {
        appended = Promise.reject(err);
      }
    }
    appended.then(
      (token) => this.settled(b, 'done', token),
      (err: unknown) => this.settled(b, 'failed', err),
    );
    this.wakeWaiters();
  }

  /** Batch b's append settled: take up the in-flight batches in order, as far as they settled. */
  private settled(b: Batch, how: 'done' | 'failed', result: unknown): void {
    b.settled = how;
    if (how === 'done') b.token = result as bigint | void;
    else b.error = result;
    this.drain();
  }

  /** Take up the settled batches at the head of the in-flight ones (not while done() holds one for flow control). */
  private drain(): void {
    while (this.inflight.length > 0 && this.inflight[0]!.settled !== 'no' && !this.held) {
      const head = this.inflight[0]!;
      if (head.settled === 'failed') {
        this.fail(head.error);
        continue;
      }
      if (typeof head.token === 'bigint') this.lastToken = head.token;
      this.done();
    }
  }

  /**
   * The in-flight append is durable: start the next one, then send WINs.
   * The WINs go out in a microtask queued after the one in which the commit
   * log writer issues the next write, so the disk starts before we spend
   * time answering.
   */
  private done(): void {
    const b = this.inflight[0]!;
    if (!this.held) {
      if (b.entries > 0) {
        this.commitSeconds = (performance.now() - b.startedAt) / 1000;
        this.rejoin.committed(this.commitSeconds * 1e6);
        if (this.trace !== null) {
          this.trace.since('commit', b.startedAt);
          this.trace.overlapped(b.startedAt, this.backgroundAtStart | this.background());
          this.durableAt = performance.now();
        }
      }
      // Flow control: hold the WINs, and with them the next commit (frames gather meanwhile).
      const ms = this.flow !== null && b.bytes > 0 ? this.flow.delayMs(b.bytes) : 0;
      if (ms > 0) {
        this.held = true;
        setTimeout(this.doneBound, ms);
        return;
      }
    }
    this.held = false;
    // WINs of the batch before still queued (this batch had no append: its promise settled first): they go first.
    if (this.acking !== null) this.deliver();
    if (b.prompt && b.entries > 0) this.log.handOverSoon?.();
    this.ackToken = this.lastToken;
    this.ackFrames = b.frames;
    this.ackSeconds = b.entries > 0 ? this.commitSeconds : -1;
    // Take the batch's members and counts out before the batch is reused.
    const members = b.members;
    b.members = this.spareMembers;
    const n = members.length;
    if (this.ackCounts.length < n) this.ackCounts = new Int32Array(n * 2);
    const counts = this.ackCounts;
    const next = this.current.slot;
    this.rejoin.answering(performance.now());
    for (let i = 0; i < n; i++) {
      const m = members[i]!;
      counts[i] = m.slotFrames[b.slot]!;
      m.slotFrames[b.slot] = 0;
      this.rejoin.answered(m, m.slotFrames[next]! > 0);
    }
    b.reset();
    this.inflight.shift();
    this.acking = members;
    if (this.current.entries > 0 && this.inline(this.current)) {
      // The next commit blocks this thread: answer first.
      this.deliver();
    } else {
      this.start();
      queueMicrotask(this.deliverBound);
    }
  }

  /**
   * Whether batch b is written and fdatasynced on this thread (blocking it
   * for the disk's time) rather than through the threadpool. The threadpool
   * lets this thread read and encode the next batch and send replies while
   * the disk works, but costs two thread hand-offs and a wake-up per call
   * (bench:phases: ~60 µs for the write alone on the 2-core machine). With
   * few connections in the batch there is little to overlap (a socket read
   * and an encode is ~10 µs per connection), so inline wins; with many,
   * the overlap does.
   */
  private inline(b: Batch): boolean {
    return b.members.length <= this.inlineMax;
  }

  /** What runs beside a commit in this process (trace.ts BACKGROUND_*). */
  private background(): number {
    return (this.log.backgroundWork?.() ?? 0) | (this.flow?.scanning === true ? BACKGROUND_SCAN : 0);
  }

  /** Send the WINs of the batch done() took apart. */
  private deliver(): void {
    // Already sent: a later batch settled in the same turn and sent these first (done()).
    if (this.acking === null) return;
    const members = this.acking;
    this.acking = null;
    const counts = this.ackCounts;
    let acked = 0;
    const token = this.ackToken;
    for (let i = 0; i < members.length; i++) acked += members[i]!.durable(counts[i]!, token);
    members.length = 0;
    this.spareMembers = members;
    if (acked > 0) metrics.framesAcked.inc(acked);
    metrics.groupCommitFrames.observe(this.ackFrames);
    if (this.ackSeconds >= 0) metrics.fsyncSeconds.observe(this.ackSeconds);
    if (this.trace !== null && this.durableAt > 0) {
      this.trace.since('reply', this.durableAt);
      this.durableAt = 0;
    }
    this.schedule();
    this.notifyIdle();
  }

  /** The in-flight append failed: ERR its frames and the later frames of the same connections. */
  private fail(err: unknown): void {
    const b = this.inflight[0]!;
    const c = this.current;
    const members = b.members;
    b.members = this.spareMembers;
    this.logger.error('group commit failed; answering ERR and closing the connections concerned', {
      frames: b.frames,
      connections: members.length,
      error: err instanceof Error ? err.message : String(err),
      code: (err as { code?: string } | null)?.code,
    });
    for (const m of members) m.failing = true;
    this.removeFailing(c);
    let failed = 0;
    const counts: number[] = [];
    // Their frames in later batches, in flight or current, fail with them (those still in flight count 0 when they settle).
    for (const m of members) {
      let n = 0;
      for (let slot = 0; slot < this.batches.length; slot++) {
        n += m.slotFrames[slot]!;
        m.slotFrames[slot] = 0;
      }
      counts.push(n);
    }
    b.reset();
    this.inflight.shift();
    // A failed commit that could not be cut off may still be applied: no ERR then; nor when
    // later appends were in flight beside it (they may succeed: maxInFlight above 1).
    const answer = this.maxInFlight === 1 && (err as { outcomeUnknown?: boolean } | null)?.outcomeUnknown !== true;
    let unanswered = 0;
    for (let i = 0; i < members.length; i++) {
      failed += members[i]!.failed(counts[i]!, err, answer);
      if (!answer) unanswered += counts[i]!;
    }
    members.length = 0;
    this.spareMembers = members;
    if (failed > 0) metrics.framesFailed.inc(failed);
    if (unanswered > 0) metrics.framesUnanswered.inc(unanswered);
    this.start();
    this.schedule();
    this.notifyIdle();
  }

  /** Remove the entries and frame counts of failing members from batch c (not yet appended). */
  private removeFailing(c: Batch): void {
    let dst = 0;
    let kept = 0;
    let from = 0;
    for (let i = 0; i < c.entries; i++) {
      const end = c.ends[i]!;
      const owner = c.owners[i]!;
      if (!owner.failing) {
        if (dst !== from) c.buf.copy(c.buf, dst, from, end);
        dst += end - from;
        c.owners[kept] = owner;
        c.ends[kept] = dst;
        kept++;
      }
      from = end;
    }
    c.owners.fill(undefined, kept, c.entries);
    c.entries = kept;
    c.bytes = dst;
    c.run.entry = -1;
    let keptMembers = 0;
    for (const m of c.members) {
      if (m.failing) c.frames -= m.slotFrames[c.slot]!;
      else c.members[keptMembers++] = m;
    }
    c.members.length = keptMembers;
  }

  /** A fresh batch is current: let the members that found the last one full go on. */
  private wakeWaiters(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = this.spareWaiters;
    for (const m of waiters) {
      m.waitingRoom = false;
      m.roomAvailable();
    }
    waiters.length = 0;
    this.spareWaiters = waiters;
  }

  /** Flow control lets frames in again: wake the members it stopped. */
  resume(): void {
    this.wakeWaiters();
    this.schedule();
  }

  /** Forget a member that is gone (closed connection) from the waiting list. */
  forget(member: BatchMember): void {
    this.rejoin.joined(member);
    if (!member.waitingRoom) return;
    member.waitingRoom = false;
    const i = this.waiters.indexOf(member);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0 || !this.idle) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
