// The replies of a version-2 connection held back for a FLAG_RESULT frame
// (docs/write-protocol-extensions.md, "Count and rank in the reply"): its
// 40-byte reply is written once the key's count and rank are looked up, and
// every reply after it waits behind it, so replies stay in frame order.
// Batches of replies are written in the order they were added, each once
// the lookups of its own frames are done (they run at once, in parallel).

import { writeResultTail } from '../../protocol/write-ops.js';
import type { ResultSlot } from './reply-queue.js';
import { UNKNOWN_RESULT, type ResultLookup } from './result-lookup.js';
import type { Socket } from 'node:net';

interface Batch {
  replies: Buffer;
  frames: number;
  ready: Promise<void>;
}

export class HeldReplies {
  /** Frames whose replies are held. */
  frames = 0;
  readonly #batches: Batch[] = [];
  #ending = false;
  #flushing = false;

  /** `done`: nothing is held any more (called once, after the last write). */
  constructor(
    readonly lookup: ResultLookup | null,
    readonly socket: Socket,
    readonly done: () => void,
  ) {}

  /** Hold `replies` (of `frames` frames) until the lookups of `slots` and of every batch before them are done. */
  add(replies: Buffer, slots: ResultSlot[], frames: number): void {
    this.frames += frames;
    const ready = Promise.all(
      slots.map(async (slot) => {
        const result = this.lookup === null ? UNKNOWN_RESULT : await this.lookup.lookup(slot.keyspace, slot.key, slot.token).catch(() => UNKNOWN_RESULT);
        writeResultTail(replies, slot.offset, result);
      }),
    ).then(() => {});
    this.#batches.push({ replies, frames, ready });
    void this.#flush();
  }

  /** The connection is ending: end the socket once the held replies are written. */
  endAfter(): void {
    this.#ending = true;
  }

  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    while (this.#batches.length > 0) {
      const batch = this.#batches[0]!;
      await batch.ready;
      this.#batches.shift();
      if (!this.socket.destroyed && !this.socket.writableEnded) this.socket.write(batch.replies);
      this.frames -= batch.frames;
    }
    this.#flushing = false;
    if (this.#ending && !this.socket.destroyed && !this.socket.writableEnded) this.socket.end();
    this.done();
  }
}
