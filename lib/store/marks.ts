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
//            every dirty log with frames for it); another value means the
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

import { createHash } from 'node:crypto';
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

/** The mark of a keyspace, or undefined; a mark that is not ours reads as absent. */
export async function readKeyspaceMark(store: Store, name: Buffer): Promise<KeyspaceMark | undefined> {
  const value = await store.getMark(keyspaceMarkName(name));
  if (value === undefined || value.length === 0) return undefined;
  try {
    const mark = JSON.parse(value.toString('utf8')) as KeyspaceMark;
    return mark && mark.v === MARK_VERSION && typeof mark.unit === 'string' ? mark : undefined;
  } catch {
    return undefined;
  }
}
