// The Store marks through which `countd migrate` is idempotent and
// exactly-once (docs/legacy-format.md, "How countd migrate imports").
//
// One mark per legacy keyspace, `migrate/ks/<sha256(keyspace name), 40 hex>`,
// written in the SAME atomic Store.apply as the counts it describes. Its value
// is JSON:
//
//   unit     fingerprint of every source of the keyspace (its keyspace file and
//            every dirty log with frames for it); another value means the
//            legacy directory changed since the mark was written
//   next     records of the keyspace file [0, next) are in the database
//   done     the whole keyspace (file and log frames) is in the database
//   mode     new | merge | replace: what the import found in the database
//   base     merge only: keys and sum the keyspace held before the import
//   expect   done only: keys and sum the import adds, for verification

import type { Store } from '../store/store.js';
import { keyspaceId } from './fingerprint.js';

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
