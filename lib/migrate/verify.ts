// Step 5 of `countd migrate` (docs/legacy-format.md): read every imported
// keyspace back through the Store and compare its number of keys and the
// exact sum of its counts with what its mark says the legacy sources held.

import { INT64_MAX, INT64_MIN } from '../protocol/write-frame.js';
import type { Store } from '../store/store.js';
import { readKeyspaceMark } from './marks.js';

export interface ReadBack {
  keys: number;
  sum: bigint;
  /** Some count is at the signed 64-bit limit: it may have been clamped. */
  atLimit: boolean;
}

/** Keys and exact sum of a keyspace, read back with Store.iterate (constant memory). */
export async function readBack(store: Store, name: Buffer): Promise<ReadBack> {
  let keys = 0;
  let sum = 0n;
  let atLimit = false;
  for await (const e of store.iterate(name)) {
    keys++;
    sum += e.count;
    if (e.count === INT64_MAX || e.count === INT64_MIN) atLimit = true;
  }
  return { keys, sum, atLimit };
}

/** Check one keyspace; returns what is wrong, or undefined when it matches. */
export async function verifyKeyspace(store: Store, name: Buffer, label: string): Promise<string | undefined> {
  const mark = await readKeyspaceMark(store, name);
  if (mark === undefined || !mark.done || mark.expect === null) return `${JSON.stringify(label)}: no completed import mark`;
  const got = await readBack(store, name);
  const base = mark.base ?? { keys: 0, sum: '0' };
  const wantSum = BigInt(base.sum) + BigInt(mark.expect.sum);
  // A merge may add keys that were already there: the key count is bounded, not exact.
  const minKeys = mark.mode === 'merge' ? Math.max(base.keys, mark.expect.keys) : mark.expect.keys;
  const maxKeys = mark.mode === 'merge' ? base.keys + mark.expect.keys : mark.expect.keys;
  if (got.keys < minKeys || got.keys > maxKeys) {
    return `${JSON.stringify(label)}: ${got.keys} keys read back, expected ${minKeys === maxKeys ? minKeys : `${minKeys} to ${maxKeys}`}`;
  }
  // A count at the 64-bit limit may have been clamped (the store saturates): the sum cannot be
  // checked then. (mark.saturated alone would miss a clamp in the batch that writes the mark.)
  if (!mark.saturated && !got.atLimit && got.sum !== wantSum) {
    return `${JSON.stringify(label)}: counts sum to ${got.sum} read back, expected ${wantSum}`;
  }
  return undefined;
}
