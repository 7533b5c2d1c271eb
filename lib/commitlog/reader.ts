// Reads one commit log and verifies it (docs/commit-log-format.md,
// "Reading a log"). The rules, after LevelDB's log reader:
//   - a zero-filled tail, a record of another generation (left from an
//     earlier use of the file) and a torn last record all end the log
//     silently: nothing of this use follows them;
//   - bytes that are not a valid record of this use but are FOLLOWED by one
//     are corruption: reported with their offset and the bytes dropped, and
//     reading resumes at the next valid record;
//   - sequence numbers must continue from the header's firstSeq record to
//     record, and a SEAL must count what was found; any mismatch is reported.

import path from 'node:path';
import { crc32 } from 'node:zlib';
import { translateFsError } from '../errors.js';
import { FieldSizes } from '../protocol/fields.js';
import { FileOps, realFileOps } from './fileops.js';
import { parseLogName } from './filenames.js';
import {
  HEADER_SIZE,
  LogHeader,
  RECORD_BATCH,
  RECORD_HEADER_SIZE,
  RECORD_SEAL,
  SEAL_PAYLOAD_SIZE,
  countEntries,
  decodeHeader,
  decodeSealPayload,
} from './format.js';

export interface LogRecord {
  /** Sequence number of the record's first frame. */
  seq: bigint;
  /** Frames (entries) in the payload. */
  count: number;
  /** The encoded entries (decode with forEachEntry); a view into the file's buffer. */
  payload: Buffer;
  /** Byte offset of the record in the file. */
  offset: number;
}

export interface LogProblem {
  /** Byte offset in the file where the problem starts. */
  offset: number;
  /** Bytes skipped because of it (0 when only sequence numbers disagree). */
  bytesDropped: number;
  reason: string;
}

export interface LogContents {
  /** The log index from the file name; null if the name is not a log name. */
  index: number | null;
  /** null for a log never used since preallocation (all zero), or with a damaged header (see problems). */
  header: LogHeader | null;
  generation: bigint | null;
  streamId: bigint | null;
  /** BATCH records of this use, in file order. */
  records: LogRecord[];
  /** Total frames in `records`. */
  frames: number;
  /** A SEAL record ends this use: the writer handed the log over normally. */
  sealed: boolean;
  /** Offset just past the last valid record (where the next record would go). */
  end: number;
  problems: LogProblem[];
}

/** Read and verify the log at `file`. I/O errors reject with COUNTD_IO_ERROR; damage is reported in `problems`. */
export async function readLogFile(file: string, sizes: FieldSizes, fileOps: FileOps = realFileOps): Promise<LogContents> {
  let buf: Buffer;
  try {
    buf = await fileOps.readFile(file);
  } catch (err) {
    throw translateFsError(err, `read commit log ${file}`);
  }
  return parseLog(buf, sizes, parseLogName(path.basename(file)));
}

type Check =
  | { ok: true; type: number; size: number; seq: bigint; count: number; payload: Buffer }
  | { ok: false; reason: string };

/** Parse a whole log file held in `buf`. */
export function parseLog(buf: Buffer, sizes: FieldSizes, index: number | null = null): LogContents {
  const contents: LogContents = {
    index,
    header: null,
    generation: null,
    streamId: null,
    records: [],
    frames: 0,
    sealed: false,
    end: 0,
    problems: [],
  };
  const h = decodeHeader(buf);
  if (h.kind === 'empty') return contents;
  if (h.kind === 'bad') {
    contents.problems.push({ offset: 0, bytesDropped: buf.length, reason: h.reason });
    return contents;
  }
  const header = h.header;
  contents.header = header;
  contents.generation = header.generation;
  contents.streamId = header.streamId;
  if (header.keyspaceSize !== sizes.keyspaceSize || header.keySize !== sizes.keySize) {
    contents.problems.push({
      offset: 0,
      bytesDropped: buf.length,
      reason: `log written with field sizes ${header.keyspaceSize}/${header.keySize}, expected ${sizes.keyspaceSize}/${sizes.keySize}`,
    });
    return contents;
  }
  // The record generation field holds the same 8 bytes as the header's.
  const genBytes = buf.subarray(24, 32);
  let expectedSeq = header.firstSeq;
  let off = HEADER_SIZE;
  contents.end = off;
  while (off < buf.length) {
    const r = checkRecord(buf, off, genBytes, sizes);
    if (!r.ok) {
      const next = findNextRecord(buf, off + 1, genBytes, sizes);
      if (next < 0) break; // zero tail, earlier use, or torn last record: the end of this use
      contents.problems.push({ offset: off, bytesDropped: next - off, reason: r.reason });
      off = next;
      continue;
    }
    if (r.seq !== expectedSeq) {
      const what = r.seq > expectedSeq ? `${r.seq - expectedSeq} frames missing` : 'sequence goes backwards';
      contents.problems.push({ offset: off, bytesDropped: 0, reason: `sequence gap: expected seq ${expectedSeq}, record has ${r.seq} (${what})` });
    }
    if (r.type === RECORD_SEAL) {
      const seal = decodeSealPayload(r.payload);
      if (seal.frames !== contents.frames || seal.records !== contents.records.length) {
        contents.problems.push({
          offset: off,
          bytesDropped: 0,
          reason: `seal counts ${seal.frames} frames in ${seal.records} records, found ${contents.frames} in ${contents.records.length}`,
        });
      }
      contents.sealed = true;
      contents.end = off + r.size;
      break; // a SEAL ends the use; whatever follows it is not part of it
    }
    contents.records.push({ seq: r.seq, count: r.count, payload: r.payload, offset: off });
    contents.frames += r.count;
    expectedSeq = r.seq + BigInt(r.count);
    off += r.size;
    contents.end = off;
  }
  return contents;
}

function checkRecord(buf: Buffer, off: number, genBytes: Buffer, sizes: FieldSizes): Check {
  if (buf.length - off < RECORD_HEADER_SIZE) return { ok: false, reason: 'truncated record header' };
  const length = buf.readUInt32LE(off + 4);
  const type = buf[off + 8]!;
  if (length === 0 && type === 0 && buf.readUInt32LE(off) === 0) return { ok: false, reason: 'zero bytes' };
  const size = RECORD_HEADER_SIZE + length;
  if (size > buf.length - off) return { ok: false, reason: `record length ${length} runs past the end of the file` };
  const crc = crc32(buf.subarray(off + 4, off + size));
  if (crc !== buf.readUInt32LE(off)) return { ok: false, reason: 'checksum mismatch' };
  if (buf.compare(genBytes, 0, 8, off + 12, off + 20) !== 0) return { ok: false, reason: 'record of an earlier use of the file (other generation)' };
  if (buf[off + 9] !== 0 || buf[off + 10] !== 0 || buf[off + 11] !== 0) return { ok: false, reason: 'reserved bytes are not zero' };
  const seq = buf.readBigUInt64LE(off + 20);
  const count = buf.readUInt32LE(off + 28);
  const payload = buf.subarray(off + RECORD_HEADER_SIZE, off + size);
  if (type === RECORD_BATCH) {
    if (count === 0 || countEntries(payload, sizes) !== count) return { ok: false, reason: 'entries do not match the record frame count' };
  } else if (type === RECORD_SEAL) {
    if (count !== 0 || length !== SEAL_PAYLOAD_SIZE) return { ok: false, reason: 'malformed seal record' };
  } else {
    return { ok: false, reason: `unknown record type ${type}` };
  }
  return { ok: true, type, size, seq, count, payload };
}

/**
 * The offset of the next valid record of this generation at or after
 * `from`, or -1. Every record carries the generation at byte 12, so only
 * the places where those 8 bytes occur are candidates (a native search).
 */
function findNextRecord(buf: Buffer, from: number, genBytes: Buffer, sizes: FieldSizes): number {
  let pos = Math.max(from, HEADER_SIZE) + 12;
  for (;;) {
    const i = buf.indexOf(genBytes, pos);
    if (i < 0) return -1;
    const candidate = i - 12;
    if (checkRecord(buf, candidate, genBytes, sizes).ok) return candidate;
    pos = i + 1;
  }
}

export interface StreamGap {
  /** The log whose first frame comes after a hole. */
  index: number | null;
  streamId: bigint;
  /** Where the stream should have continued. */
  expectedSeq: bigint;
  /** Where this log starts. */
  firstSeq: bigint;
}

/**
 * Check that the logs of each writer stream continue one another: for logs
 * of the same streamId ordered by firstSeq, each must start where the
 * previous one ended. Catches a whole log lost, or a log cut exactly on a
 * record boundary. Logs of a stream that were applied earlier are not in
 * `logs`, so pass a complete set (e.g. in tests or `countd check`).
 */
export function streamGaps(logs: LogContents[]): StreamGap[] {
  const byStream = new Map<bigint, LogContents[]>();
  for (const log of logs) {
    if (log.header === null || log.streamId === null) continue;
    let list = byStream.get(log.streamId);
    if (!list) byStream.set(log.streamId, (list = []));
    list.push(log);
  }
  const gaps: StreamGap[] = [];
  for (const [streamId, list] of byStream) {
    list.sort((a, b) => (a.header!.firstSeq < b.header!.firstSeq ? -1 : a.header!.firstSeq > b.header!.firstSeq ? 1 : 0));
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]!;
      const expectedSeq = prev.header!.firstSeq + BigInt(prev.frames);
      const firstSeq = list[i]!.header!.firstSeq;
      if (firstSeq !== expectedSeq) gaps.push({ index: list[i]!.index, streamId, expectedSeq, firstSeq });
    }
  }
  return gaps;
}
