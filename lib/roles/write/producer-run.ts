// The producer run a group-commit batch's last entry belongs to: a next
// producer op frame that continues it is written without a producer trailer
// (docs/commit-log-format.md section 3c, "Producer trailer": op bit 0x40),
// which nearly halves a producer's bytes in the commit log.

import { PRODUCER_TRAILER_SIZE } from '../../commitlog/format.js';

export class BatchRun {
  /** Index of the batch's last entry when it is a producer's; -1 otherwise. */
  entry = -1;
  /** Its producer u64, epoch u32 and sequence u64: the trailer's 20 bytes. */
  private readonly fields = Buffer.alloc(PRODUCER_TRAILER_SIZE);

  /**
   * Whether the producer op frame whose producer fields are at frame[at]
   * (producer u64 | epoch u32 | reserved u32 | sequence u64) continues the
   * run: `last` is the index of the batch's last entry and `sameOwner` says
   * it is the same connection's (so that removing a failed connection's
   * entries never parts a continuation from the entry before it); same
   * producer and epoch, and this sequence is the run's + 1 (below 2^64).
   */
  continues(last: number, sameOwner: boolean, frame: Buffer, at: number): boolean {
    if (this.entry < 0 || this.entry !== last || !sameOwner) return false;
    const run = this.fields;
    for (let j = 0; j < 12; j++) if (frame[at + j] !== run[j]) return false;
    const lo = run.readUInt32LE(12);
    const hi = run.readUInt32LE(16);
    if (lo === 0xffff_ffff) return frame.readUInt32LE(at + 16) === 0 && frame.readUInt32LE(at + 20) === hi + 1;
    return frame.readUInt32LE(at + 16) === lo + 1 && frame.readUInt32LE(at + 20) === hi;
  }

  /** Entry `entry` is the producer op frame whose fields are at frame[at]: the run now ends with it. */
  extend(entry: number, frame: Buffer, at: number): void {
    this.entry = entry;
    const run = this.fields;
    for (let j = 0; j < 12; j++) run[j] = frame[at + j]!;
    for (let j = 0; j < 8; j++) run[12 + j] = frame[at + 16 + j]!;
  }
}
