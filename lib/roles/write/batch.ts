// One batch of a group commit (group-commit.ts): the entries of the frames
// taken in, encoded back to back as the commit log wants them, with the
// owner and end of each entry so that a failed member's entries can be taken
// out, and the members with a frame in it. GroupCommit keeps a ring of them:
// one being filled ("current") and up to the sink's maxInFlight being
// appended.

import { OP_INCREMENT } from '../../commitlog/format.js';
import type { RejoinMember } from './rejoin.js';
import { BatchRun } from './producer-run.js';

/** What a batch needs from a connection. */
export interface BatchMember extends RejoinMember {
  /** Frames of this member in each batch slot (MAX_IN_FLIGHT + 1 of them); owned and updated by GroupCommit. */
  readonly slotFrames: Int32Array;
  /** Set by GroupCommit when an append holding frames of this member failed. */
  failing: boolean;
  /** Set while the member waits in GroupCommit for room in the current batch. */
  waitingRoom: boolean;
  /**
   * `frames` of this member are durable, in order; returns how many WINs it
   * sent. `token`: the sequence number of the batch's last frame (or of the
   * last durable batch, for a batch with no entries).
   */
  durable(frames: number, token: bigint): number;
  /**
   * `frames` of this member could not be made durable (err says why); returns
   * how many ERRs it sent. `answer` false: their outcome is unknown (they may
   * be applied), so the member closes without answering them.
   */
  failed(frames: number, err: unknown, answer: boolean): number;
  /** The current batch has room again (after waitForRoom). */
  roomAvailable(): void;
}

export class Batch {
  readonly slot: number;
  readonly buf: Buffer;
  /** Bytes of encoded entries in buf. */
  bytes = 0;
  /** Entries in buf (frames with increment 0 take no entry). */
  entries = 0;
  /** Frames in the batch, entries or not. */
  frames = 0;
  /**
   * The batch holds a set or a delete: every entry is then an op entry and
   * the batch is one RECORD_OPS, so the order of its frames is kept
   * (docs/commit-log-format.md, "OPS records").
   */
  ops = false;
  /** A frame asked for a prompt hand-over of the log once this batch is durable. */
  prompt = false;
  /** When its first frame was added (performance.now(); tracing only). */
  firstAt = 0;
  /** Members with at least one frame here, each once (its slotFrames[slot] went 0 → 1). */
  members: BatchMember[] = [];
  /** Owner and end offset of each entry, to remove a failed member's entries. */
  readonly owners: Array<BatchMember | undefined> = [];
  ends = new Int32Array(1024);
  /** The producer run of the last entry (producer-run.ts). */
  readonly run = new BatchRun();

  /** When its append started (performance.now()). */
  startedAt = 0;
  /** Its append settled (in flight batches are taken up in order: see GroupCommit.settled). */
  settled: 'no' | 'done' | 'failed' = 'no';
  token: bigint | void = undefined;
  error: unknown = undefined;

  constructor(slot: number, size: number) {
    this.slot = slot;
    this.buf = Buffer.allocUnsafe(size);
  }

  reset(): void {
    this.owners.fill(undefined, 0, this.entries);
    this.bytes = 0;
    this.entries = 0;
    this.frames = 0;
    this.ops = false;
    this.prompt = false;
    this.members.length = 0;
    this.run.entry = -1;
  }

  /** Room for `size` more bytes? */
  fits(size: number): boolean {
    return this.bytes + size <= this.buf.length;
  }

  /** Record the entry just written up to `end` as `member`'s. */
  push(member: BatchMember, end: number): void {
    this.bytes = end;
    const i = this.entries++;
    if (i === this.ends.length) {
      const ends = new Int32Array(i * 2);
      ends.set(this.ends);
      this.ends = ends;
    }
    this.owners[i] = member;
    this.ends[i] = end;
  }

  /**
   * Turn the plain entries into op entries (OP_INCREMENT), in place: each
   * entry moves right by one byte per entry before it, plus its op byte;
   * working from the last entry, nothing is overwritten before it moved.
   * False when the batch has no room for the extra bytes.
   */
  toOps(): boolean {
    if (this.ops) return true;
    if (!this.fits(this.entries)) return false;
    for (let i = this.entries - 1; i >= 0; i--) {
      const start = i === 0 ? 0 : this.ends[i - 1]!;
      const end = this.ends[i]!;
      this.buf.copyWithin(start + i + 1, start, end);
      this.buf[start + i] = OP_INCREMENT;
      this.ends[i] = end + i + 1;
    }
    this.bytes += this.entries;
    this.ops = true;
    return true;
  }
}
