// The body of a partition message (docs/cluster.md, "Partition messages"):
// a 24-byte header naming the writer, its sequence in the partition, the
// record type and the frame count, then the entries of one group commit for
// that partition in the commit-log encoding (docs/commit-log-format.md:
// BATCH entries, or OPS op entries when the group commit held a set, a
// delete or a create). The header travels in the body, not in NATS headers:
// a message without NATS headers (and no Nats-Msg-Id) costs about 30% less
// (BENCHMARKS.md, "Cluster").
//
//   message := version u8 (1) | type u8 (1 BATCH, 3 OPS) | zero u16 | frames u32 | writer 8 bytes | seq u64 | entries
//
// countd 0.6.0 put the writer and sequence in NATS headers instead, over 64
// partitions: nats.ts refuses a stream of that layout (STREAM_LAYOUT).

import { countOps, countEntries, RECORD_BATCH, RECORD_OPS } from '../commitlog/format.js';
import { CountdError, ErrorCodes } from '../errors.js';
import type { FieldSizes } from '../protocol/fields.js';

export const MESSAGE_VERSION = 1;
export const MESSAGE_HEADER_SIZE = 24;
/** Bytes of a writer id in a message. */
export const WRITER_ID_SIZE = 8;

export interface PartitionMessage {
  /** The writer's name as marks use it: "w" + 16 hex digits. */
  writer: string;
  seq: number;
  /** RECORD_BATCH or RECORD_OPS. */
  type: number;
  frames: number;
  entries: Buffer;
}

/** The name of a writer id (the marks' `cluster/w/<p>/<writer>`). */
export function writerName(id: Buffer): string {
  return `w${id.toString('hex')}`;
}

/** Write a message header into target[0, MESSAGE_HEADER_SIZE). */
export function writeMessageHeader(target: Buffer, type: number, frames: number, writer: Buffer, seq: number): void {
  target[0] = MESSAGE_VERSION;
  target[1] = type;
  target.writeUInt16LE(0, 2);
  target.writeUInt32LE(frames, 4);
  writer.copy(target, 8, 0, WRITER_ID_SIZE);
  target.writeBigUInt64LE(BigInt(seq), 16);
}

function malformed(why: string): CountdError {
  return new CountdError(ErrorCodes.CORRUPTION, `partition message: ${why}`);
}

/**
 * Decode and check a message. Throws COUNTD_CORRUPTION when the header or
 * the entries are malformed, COUNTD_CLUSTER for a version this countd does
 * not know (a newer node wrote it).
 */
export function decodeMessage(body: Buffer, sizes: FieldSizes): PartitionMessage {
  if (body.length < MESSAGE_HEADER_SIZE) throw malformed(`${body.length} bytes, shorter than the ${MESSAGE_HEADER_SIZE}-byte header`);
  if (body[0] !== MESSAGE_VERSION) throw new CountdError(ErrorCodes.CLUSTER, `partition message of version ${body[0]}: written by a newer countd (this one reads version ${MESSAGE_VERSION}); upgrade this node`);
  const type = body[1]!;
  if (type !== RECORD_BATCH && type !== RECORD_OPS) throw malformed(`unknown record type ${type}`);
  if (body.readUInt16LE(2) !== 0) throw malformed('reserved bytes not zero');
  const frames = body.readUInt32LE(4);
  const seq = Number(body.readBigUInt64LE(16));
  if (seq < 1) throw malformed('sequence 0');
  const entries = body.subarray(MESSAGE_HEADER_SIZE);
  const counted = type === RECORD_OPS ? countOps(entries, sizes) : countEntries(entries, sizes);
  if (counted !== frames) throw malformed(`${counted < 0 ? 'malformed entries' : `${counted} entries`} where the header says ${frames}`);
  return { writer: writerName(body.subarray(8, 16)), seq, type, frames, entries };
}
