// Step 5 of `countd migrate` (docs/legacy-format.md): read every imported
// keyspace back through the Store and compare its number of keys and the
// exact sum of its counts with what its mark says the legacy sources held.
// A keyspace is verified as soon as its last batch has committed, while the
// import of later keyspaces goes on (VerifyQueue): the reads fill the time
// the importer waits on the Store's writes.

import { INT64_MAX, INT64_MIN } from '../protocol/fields.js';
import type { Store } from '../store/store.js';
import { readKeyspaceMark } from '../store/marks.js';

export interface ReadBack {
  keys: number;
  sum: bigint;
  /** Some count is at the signed 64-bit limit: it may have been clamped. */
  atLimit: boolean;
}

/** Keys and exact sum of a keyspace, read back from the database (every index entry, one snapshot: Store.tally). */
export async function readBack(store: Store, name: Buffer): Promise<ReadBack> {
  const t = await store.tally(name);
  return { keys: t.keys, sum: t.sum, atLimit: t.max === INT64_MAX || t.min === INT64_MIN };
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

/**
 * Keyspaces verified in the background, a few at a time: the database reads
 * run in libuv's threads while JS decodes. add() a keyspace only once its
 * completed mark has committed; finish() waits for every one added.
 */
export class VerifyQueue {
  readonly #store: Store;
  readonly #limit: number;
  readonly #waiting: Array<{ name: Buffer; label: string }> = [];
  readonly #running = new Set<Promise<void>>();
  readonly failures: string[] = [];
  verified = 0;
  #error: { error: unknown } | undefined;

  constructor(store: Store, limit: number) {
    this.#store = store;
    this.#limit = limit;
  }

  add(name: Buffer, label: string): void {
    this.#waiting.push({ name, label });
    this.#pump();
  }

  /** Wait until every keyspace added so far is verified; throws a read error (not a mismatch: see failures). */
  async finish(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled(this.#running);
    if (this.#error !== undefined) throw this.#error.error;
  }

  /** Wait for the reads in flight, ignoring errors (before the store is closed on an error path). */
  async settle(): Promise<void> {
    this.#waiting.length = 0;
    while (this.#running.size > 0) await Promise.allSettled(this.#running);
  }

  #pump(): void {
    while (this.#running.size < this.#limit && this.#waiting.length > 0) {
      const { name, label } = this.#waiting.shift()!;
      const task: Promise<void> = verifyKeyspace(this.#store, name, label).then(
        (failure) => {
          this.#running.delete(task);
          if (failure === undefined) this.verified++;
          else this.failures.push(failure);
          this.#pump();
        },
        (error: unknown) => {
          this.#running.delete(task);
          this.#error ??= { error };
          this.#pump();
        },
      );
      this.#running.add(task);
    }
  }
}
