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
// A log whose header cannot be verified yields no records, but its records
// carry their own CRC and generation: `salvage` says which of them belong
// to the log's last use and so may be applied (docs/commit-log-format.md,
// section 6a, "Quarantine and salvage").

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
  RECORD_FLAG_WRITTEN_AT,
  RECORD_HEADER_SIZE,
  RECORD_OPS,
  RECORD_SEAL,
  SEAL_PAYLOAD_SIZE,
  WRITTEN_AT_SIZE,
  countEntries,
  BROKEN_PRODUCER_RUN,
  countOps,
  decodeHeader,
  isZero,
  decodeSealPayload,
} from './format.js';

export interface LogRecord {
  /** RECORD_BATCH (entries: forEachEntry) or RECORD_OPS (op entries: forEachOpAt). */
  type: number;
  /** Sequence number of the record's first frame. */
  seq: bigint;
  /** Frames (entries) in the payload. */
  count: number;
  /** The encoded entries (decode by `type`), writtenAt excluded; a view into the file's buffer. */
  payload: Buffer;
  /** When the record was written (ms since the epoch), from its payload (flag 0x01); null for a record without it (written before 0.6.0). */
  writtenAt: number | null;
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

/** The records of a log whose header cannot be verified, attributed to its last use (see salvageRecords). */
export interface LogSalvage {
  /** The generation of the last use, as found without a verified header. */
  generation: bigint;
  /** How it was found: the header's generation field matches records (the damage is elsewhere in the header), or the record at offset 4096. */
  from: 'header-field' | 'first-record';
  /** Valid BATCH records of that generation, in file order. */
  records: LogRecord[];
  frames: number;
  sealed: boolean;
  end: number;
  /** Damage between the records (the header's own problem is in LogContents.problems). */
  problems: LogProblem[];
}

export type HeaderState =
  /** Verified: records are those of its generation. */
  | 'ok'
  /** The first 60 bytes are zero: never used since preallocation (unless `salvage` found records, then the header was wiped). */
  | 'empty'
  /** Damaged, of another format version, or of other field sizes: cannot be trusted. */
  | 'bad';

export interface LogContents {
  /** The log index from the file name; null if the name is not a log name. */
  index: number | null;
  headerState: HeaderState;
  /**
   * Records of the last use found although the header cannot be verified
   * (headerState 'bad', or 'empty' with records after it); null when the
   * header is fine or no generation can be attributed. `records` stays
   * empty then: only a salvage (the worker, exactly once) applies these.
   */
  salvage: LogSalvage | null;
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
  | { ok: true; type: number; size: number; seq: bigint; count: number; payload: Buffer; writtenAt: number | null }
  | { ok: false; reason: string };

/** Parse a whole log file held in `buf`. */
export function parseLog(buf: Buffer, sizes: FieldSizes, index: number | null = null): LogContents {
  const contents: LogContents = {
    index,
    headerState: 'ok',
    salvage: null,
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
  if (h.kind === 'empty') {
    contents.headerState = 'empty';
    contents.salvage = salvageRecords(buf, sizes);
    // A used log's header is made durable before its first record: zeros followed by records are damage.
    if (contents.salvage) contents.problems.push({ offset: 0, bytesDropped: HEADER_SIZE, reason: 'header is all zero but records follow it' });
    return contents;
  }
  if (h.kind === 'bad') {
    contents.headerState = 'bad';
    contents.salvage = salvageRecords(buf, sizes);
    contents.problems.push(headerProblem(buf, contents.salvage, h.reason));
    return contents;
  }
  const header = h.header;
  contents.header = header;
  contents.generation = header.generation;
  contents.streamId = header.streamId;
  if (header.keyspaceSize !== sizes.keyspaceSize || header.keySize !== sizes.keySize) {
    contents.headerState = 'bad';
    contents.salvage = salvageRecords(buf, sizes);
    const reason = `log written with field sizes ${header.keyspaceSize}/${header.keySize}, expected ${sizes.keyspaceSize}/${sizes.keySize}`;
    contents.problems.push(headerProblem(buf, contents.salvage, reason));
    return contents;
  }
  // The record generation field holds the same 8 bytes as the header's.
  const use = readUse(buf, buf.subarray(24, 32), header.firstSeq, sizes);
  contents.records = use.records;
  contents.frames = use.frames;
  contents.sealed = use.sealed;
  contents.end = use.end;
  contents.problems.push(...use.problems);
  return contents;
}

/** The problem of a header that cannot be verified: it drops the whole file, or only the header when records are salvaged. */
function headerProblem(buf: Buffer, salvage: LogSalvage | null, reason: string): LogProblem {
  if (salvage === null) return { offset: 0, bytesDropped: buf.length, reason };
  return { offset: 0, bytesDropped: HEADER_SIZE, reason: `${reason}; records of generation ${salvage.generation} salvaged` };
}

/**
 * A log whose header cannot be verified although it was used: quarantined,
 * never reused (docs/commit-log-format.md, "Quarantine"). A header of zeros
 * with nothing after it is a log never used, and is not.
 */
export function headerUnverified(c: LogContents): boolean {
  return c.headerState === 'bad' || (c.headerState === 'empty' && c.salvage !== null);
}

interface Use {
  records: LogRecord[];
  frames: number;
  sealed: boolean;
  end: number;
  problems: LogProblem[];
}

/**
 * The records of one use (generation `genBytes`) from offset 4096 on, with
 * the rules of "Reading a log". `firstSeq` null: not known (salvage), the
 * first valid record sets it.
 */
function readUse(buf: Buffer, genBytes: Buffer, firstSeq: bigint | null, sizes: FieldSizes): Use {
  const use: Use = { records: [], frames: 0, sealed: false, end: HEADER_SIZE, problems: [] };
  let expectedSeq = firstSeq;
  let off = HEADER_SIZE;
  while (off < buf.length) {
    const r = checkRecord(buf, off, genBytes, sizes);
    if (!r.ok) {
      const next = findNextRecord(buf, off + 1, genBytes, sizes);
      if (next < 0) break; // zero tail, earlier use, or torn last record: the end of this use
      use.problems.push({ offset: off, bytesDropped: next - off, reason: r.reason });
      off = next;
      continue;
    }
    if (expectedSeq !== null && r.seq !== expectedSeq) {
      const what = r.seq > expectedSeq ? `${r.seq - expectedSeq} frames missing` : 'sequence goes backwards';
      use.problems.push({ offset: off, bytesDropped: 0, reason: `sequence gap: expected seq ${expectedSeq}, record has ${r.seq} (${what})` });
    }
    if (r.type === RECORD_SEAL) {
      const seal = decodeSealPayload(r.payload);
      if (seal.frames !== use.frames || seal.records !== use.records.length) {
        use.problems.push({
          offset: off,
          bytesDropped: 0,
          reason: `seal counts ${seal.frames} frames in ${seal.records} records, found ${use.frames} in ${use.records.length}`,
        });
      }
      use.sealed = true;
      use.end = off + r.size;
      break; // a SEAL ends the use; whatever follows it is not part of it
    }
    use.records.push({ type: r.type, seq: r.seq, count: r.count, payload: r.payload, writtenAt: r.writtenAt, offset: off });
    use.frames += r.count;
    expectedSeq = r.seq + BigInt(r.count);
    off += r.size;
    use.end = off;
  }
  return use;
}

/**
 * Attribute the records of a log whose header cannot be verified to its
 * last use (docs/commit-log-format.md, "Salvaging"). Every use writes its
 * header first and its records from offset 4096 on, so:
 *   1. if the header's generation field (bytes 24..31) is the generation of
 *      a valid record, the damage is elsewhere in the header and that is the
 *      last use (a damaged field matches a record with probability 2^-64);
 *   2. else the valid record at offset 4096, if any, was written by the last
 *      use that wrote a record: its generation is taken;
 *   3. else nothing can be attributed: null.
 * Whether that use was applied already is for the caller to decide (the
 * worker compares with its applied mark).
 */
export function salvageRecords(buf: Buffer, sizes: FieldSizes): LogSalvage | null {
  if (buf.length < HEADER_SIZE + RECORD_HEADER_SIZE) return null;
  let genBytes: Buffer | null = null;
  let from: LogSalvage['from'] = 'header-field';
  const field = buf.subarray(24, 32);
  if (!isZero(field, 0, 8) && findNextRecord(buf, HEADER_SIZE, field, sizes) >= 0) genBytes = field;
  if (genBytes === null) {
    const first = checkRecord(buf, HEADER_SIZE, buf.subarray(HEADER_SIZE + 12, HEADER_SIZE + 20), sizes);
    if (!first.ok) return null;
    genBytes = buf.subarray(HEADER_SIZE + 12, HEADER_SIZE + 20);
    from = 'first-record';
  }
  const use = readUse(buf, genBytes, null, sizes);
  return { generation: genBytes.readBigUInt64LE(0), from, ...use };
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
  const flags = buf[off + 9]!;
  if ((flags & ~RECORD_FLAG_WRITTEN_AT) !== 0 || buf[off + 10] !== 0 || buf[off + 11] !== 0) return { ok: false, reason: 'reserved bytes are not zero' };
  const seq = buf.readBigUInt64LE(off + 20);
  const count = buf.readUInt32LE(off + 28);
  let payload = buf.subarray(off + RECORD_HEADER_SIZE, off + size);
  let writtenAt: number | null = null;
  if (flags !== 0) {
    if (type === RECORD_SEAL || length < WRITTEN_AT_SIZE) return { ok: false, reason: 'malformed writtenAt' };
    const at = payload.readBigUInt64LE(0);
    if (at > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, reason: 'malformed writtenAt' };
    writtenAt = Number(at);
    payload = payload.subarray(WRITTEN_AT_SIZE);
  }
  if (type === RECORD_BATCH) {
    if (count === 0 || countEntries(payload, sizes) !== count) return { ok: false, reason: 'entries do not match the record frame count' };
  } else if (type === RECORD_OPS) {
    const counted = countOps(payload, sizes);
    if (counted === BROKEN_PRODUCER_RUN) return { ok: false, reason: 'producer continuation without a producer entry before it' };
    if (count === 0 || counted !== count) return { ok: false, reason: 'op entries do not match the record frame count' };
  } else if (type === RECORD_SEAL) {
    if (count !== 0 || length !== SEAL_PAYLOAD_SIZE) return { ok: false, reason: 'malformed seal record' };
  } else {
    return { ok: false, reason: `unknown record type ${type}` };
  }
  return { ok: true, type, size, seq, count, payload, writtenAt };
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
