// The marks other layers keep in the store's database, written in the same
// atomic batch as the counts they describe (Store#apply's `marks`): their
// names and the codecs of their values, in one place, as
// lib/commitlog/filenames.ts is for the pool's file names. Specified in
// docs/storage-format.md ("Marks").
//
// applied/<index>        the worker (lib/roles/worker.ts): commit log <index>
//                        (decimal, no padding) was applied in the use whose
//                        generation the value holds, u64 little-endian. A log
//                        found dirty again with that generation (a crash
//                        between the apply and its recycling) is not applied
//                        twice.
//
// migrate/ks/<id>        countd migrate (lib/migrate/importer.ts,
//                        docs/legacy-format.md, "How countd migrate imports"):
//                        one per legacy keyspace, <id> the first 40 hex digits
//                        of sha256(keyspace name), which makes it idempotent
//                        and exactly-once. Its value is JSON:
//
//   unit     fingerprint of every source of the keyspace (its keyspace file and
//            every replayed log with frames for it); another value means the
//            legacy directory changed since the mark was written
//   next     records of the keyspace file [0, next) are in the database
//   done     the whole keyspace (file and log frames) is in the database
//   mode     new | merge | replace: what the import found in the database
//   base     merge only: keys and sum the keyspace held before the import
//   expect   done only: keys and sum the import adds, for verification
//
// cluster/p/<p>          cluster mode (lib/cluster/applier.ts, docs/cluster.md):
//                        partition <p> (decimal) of the stream is applied up to
//                        and including stream sequence S, under the lease whose
//                        KV revision (fencing epoch) is E: S u64 LE, E u64 LE.
//
// cluster/w/<p>/<writer> cluster mode: the highest per-writer sequence of
//                        writer <writer> (a writer process incarnation) applied
//                        in partition <p>, u64 LE; a message with a sequence at
//                        or below it is a retry, dropped.

// producer/<id>          idempotent producers (lib/roles/work/producer-marks.ts,
//                        docs/storage-format.md "Producer marks"): <id> 16 hex
//                        digits; value epoch | first | last | token | lastSeen,
//                        u64 LE each: the producer's durable run [first, last]
//                        of its newest epoch, applied with the frames.
//
// token/applied          the highest token (commit-log frame sequence number)
//                        of every log applied, u64 LE (read-your-writes).

import { createHash } from 'node:crypto';
import type { ProducerInfo } from '../protocol/read-response.js';
import { CountdError, ErrorCodes } from '../errors.js';
import type { Store } from './store.js';

/** The applied mark of commit log `index`. */
export function appliedMarkName(index: number): string {
  return `applied/${index}`;
}

/** The value of an applied mark: the log's generation, 8 bytes little-endian. */
export function encodeAppliedMark(generation: bigint): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf.writeBigUInt64LE(generation, 0);
  return buf;
}

export const PRODUCER_MARK_PREFIX = 'producer/';
export const APPLIED_TOKEN_MARK = 'token/applied';
const PRODUCER_MARK_SIZE = 40;

/** The mark of idempotent producer `id` (16 hex digits: name order is id order). */
export function producerMarkName(id: bigint): string {
  return PRODUCER_MARK_PREFIX + id.toString(16).padStart(16, '0');
}

/** A producer mark's fields: the record the read port's producers op carries. */
export type ProducerMark = ProducerInfo;

export function encodeProducerMark(p: ProducerMark): Buffer {
  const buf = Buffer.allocUnsafe(PRODUCER_MARK_SIZE);
  buf.writeBigUInt64LE(BigInt(p.epoch), 0);
  buf.writeBigUInt64LE(p.first, 8);
  buf.writeBigUInt64LE(p.last, 16);
  buf.writeBigUInt64LE(p.token, 24);
  buf.writeBigUInt64LE(BigInt(p.lastSeen), 32);
  return buf;
}

/** Decode a producer mark (name and value); throws COUNTD_CORRUPTION when it is not one. */
export function decodeProducerMark(name: string, value: Buffer): ProducerMark {
  const hex = name.slice(PRODUCER_MARK_PREFIX.length);
  if (!name.startsWith(PRODUCER_MARK_PREFIX) || !/^[0-9a-f]{16}$/.test(hex) || value.length !== PRODUCER_MARK_SIZE) {
    throw new CountdError(ErrorCodes.CORRUPTION, `mark ${name}: not a producer mark (${value.length} bytes)`);
  }
  return {
    id: BigInt('0x' + hex),
    epoch: Number(value.readBigUInt64LE(0)),
    first: value.readBigUInt64LE(8),
    last: value.readBigUInt64LE(16),
    token: value.readBigUInt64LE(24),
    lastSeen: Number(value.readBigUInt64LE(32)),
  };
}

/** The position mark of cluster partition `partition`. */
export function clusterPositionMarkName(partition: number): string {
  return `cluster/p/${partition}`;
}

/** The dedupe mark of `writer` in cluster partition `partition`. */
export function clusterWriterMarkName(partition: number, writer: string): string {
  return `cluster/w/${partition}/${writer}`;
}

/** A position mark's value: stream sequence, then lease epoch, u64 LE each. */
export function encodeClusterPosition(seq: number, epoch: number): Buffer {
  const buf = Buffer.allocUnsafe(16);
  buf.writeBigUInt64LE(BigInt(seq), 0);
  buf.writeBigUInt64LE(BigInt(epoch), 8);
  return buf;
}

/** A position mark's value (absent or short: nothing applied). */
export function decodeClusterPosition(value: Buffer | undefined): { seq: number; epoch: number } {
  if (value === undefined || value.length < 16) return { seq: 0, epoch: 0 };
  return { seq: Number(value.readBigUInt64LE(0)), epoch: Number(value.readBigUInt64LE(8)) };
}

/** A u64 LE mark value as a number (absent: 0). */
export function encodeU64Mark(n: number): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf.writeBigUInt64LE(BigInt(n), 0);
  return buf;
}

export function decodeU64Mark(value: Buffer | undefined): number {
  return value === undefined || value.length < 8 ? 0 : Number(value.readBigUInt64LE(0));
}

export const MARK_VERSION = 1;

export type ImportMode = 'new' | 'merge' | 'replace';

export interface Totals {
  keys: number;
  /** Decimal string: JSON has no 64-bit integers. */
  sum: string;
}

export interface KeyspaceMark {
  v: number;
  /** The keyspace name, escaped, for people reading the database. */
  keyspace: string;
  unit: string;
  file: string | null;
  logs: string[];
  mode: ImportMode;
  base: Totals | null;
  next: number;
  done: boolean;
  expect: (Totals & { frames: number; records: number }) | null;
  /** Some count was clamped to the signed 64-bit range: the sum cannot be verified. */
  saturated: boolean;
  at: string;
}

/** A short, mark-name-safe id of a keyspace name: 40 hex digits of its sha256. */
export function keyspaceId(name: Buffer): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 40);
}

/** The migrate mark of a legacy keyspace. */
export function keyspaceMarkName(name: Buffer): string {
  return `migrate/ks/${keyspaceId(name)}`;
}

export function encodeMark(mark: KeyspaceMark): Buffer {
  return Buffer.from(JSON.stringify(mark), 'utf8');
}

const MODES: ReadonlySet<string> = new Set<ImportMode>(['new', 'merge', 'replace']);
const SHOWN_BYTES = 64;

function isTotals(t: unknown): boolean {
  const o = t as Totals | null;
  return o !== null && typeof o === 'object' && Number.isSafeInteger(o.keys) && typeof o.sum === 'string' && /^-?\d+$/.test(o.sum);
}

/** What is wrong with a decoded mark of this version, or undefined. */
function markDefect(m: KeyspaceMark): string | undefined {
  if (typeof m.unit !== 'string' || !/^[0-9a-f]{64}$/.test(m.unit)) return 'its unit fingerprint is not 64 hex digits';
  if (!Number.isSafeInteger(m.next) || m.next < 0) return "its 'next' is not a record number";
  if (typeof m.done !== 'boolean') return "its 'done' is not true or false";
  if (!MODES.has(m.mode)) return "its 'mode' is not new, merge or replace";
  if (m.base !== null && !isTotals(m.base)) return "its 'base' is not keys and a sum";
  if (m.mode === 'merge' && m.base === null) return "a merge mark without its 'base'";
  if (m.expect !== null && !isTotals(m.expect)) return "its 'expect' is not keys and a sum";
  if (m.done && m.expect === null) return "a done mark without its 'expect'";
  if (!Array.isArray(m.logs) || typeof m.saturated !== 'boolean') return "its 'logs' or 'saturated' is missing";
  return undefined;
}

function shown(value: Buffer): string {
  const hex = value.subarray(0, SHOWN_BYTES).toString('hex');
  return `${value.length} bytes: ${hex}${value.length > SHOWN_BYTES ? '…' : ''}`;
}

/**
 * The mark of a keyspace, or undefined when there is none. A mark that is
 * there but cannot be read is an error, never "absent": read as absent, it
 * would make an imported keyspace look new, and --merge would add its counts
 * a second time. Corrupt: COUNTD_CORRUPTION; of another version of the mark
 * format: COUNTD_DATA_DIR_MISMATCH. Both name the mark and its bytes.
 */
export async function readKeyspaceMark(store: Store, name: Buffer): Promise<KeyspaceMark | undefined> {
  const markName = keyspaceMarkName(name);
  const value = await store.getMark(markName);
  if (value === undefined) return undefined;
  return decodeMark(markName, value);
}

/** Decode a mark's value (see readKeyspaceMark for the errors). */
export function decodeMark(markName: string, value: Buffer): KeyspaceMark {
  const corrupt = (why: string, cause?: unknown): CountdError =>
    new CountdError(
      ErrorCodes.CORRUPTION,
      `migration mark ${markName} is corrupt (${why}; ${shown(value)}): whether and how far its keyspace was imported is unknown, ` +
        'so nothing was imported; --replace imports the keyspace again from the legacy directory (replacing what the database holds of it)',
      { cause },
    );
  let mark: KeyspaceMark;
  try {
    mark = JSON.parse(value.toString('utf8')) as KeyspaceMark;
  } catch (err) {
    throw corrupt('not JSON', err);
  }
  if (mark === null || typeof mark !== 'object' || Array.isArray(mark)) throw corrupt('not a JSON object');
  if (mark.v !== MARK_VERSION) {
    throw new CountdError(
      ErrorCodes.DATA_DIR_MISMATCH,
      `migration mark ${markName} has version ${JSON.stringify(mark.v)} (${shown(value)}), this countd reads version ${MARK_VERSION}: ` +
        'it was written by another countd migrate; use that version, or import the keyspace again with --replace (replacing what the database holds of it)',
    );
  }
  const defect = markDefect(mark);
  if (defect !== undefined) throw corrupt(defect);
  return mark;
}
