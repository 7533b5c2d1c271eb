// Sums increments per (keyspace, key) before they reach the database, so an
// apply reads and writes each distinct key once. add() runs once per frame
// (hundreds of thousands per second), so it does one Map lookup keyed by a
// latin1 string (a 1:1 byte mapping) and allocates nothing for a pair it has
// seen. The key's bytes are not copied: the store writes them from the
// string straight into its own record keys.

/** Node's Buffer#latin1Slice: toString('latin1') without its argument handling (measurably cheaper per frame). */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

export interface PendingIncrement {
  /** latin1 `keyspace \0 key`. */
  readonly pair: string;
  /** latin1 keyspace: `pair` up to the NUL. */
  readonly keyspaceId: string;
  /** The keyspace bytes (one copy per keyspace per batch). */
  readonly keyspace: Buffer;
  delta: bigint;
}

export class IncrementBatch {
  /** `keyspace \0 key` (latin1) -> pending sum. Names never contain NUL, so the join is unambiguous. */
  readonly entries = new Map<string, PendingIncrement>();
  private readonly keyspaceCopies = new Map<string, Buffer>();

  /**
   * Add `delta` to (keyspace, key). A delta of 0 is ignored (it creates
   * nothing); a key touched by a non-zero delta is created by the apply even
   * if its deltas sum to 0. The sum is unbounded here; the store saturates it.
   * Names are validated by Store.apply, not here; the buffers may be reused
   * by the caller as soon as add() returns.
   */
  add(keyspace: Buffer, key: Buffer, delta: bigint): void {
    if (delta === 0n) return;
    const ks = (keyspace as Latin1Buffer).latin1Slice(0, keyspace.length);
    const pair = ks + '\0' + (key as Latin1Buffer).latin1Slice(0, key.length);
    const pending = this.entries.get(pair);
    if (pending !== undefined) {
      pending.delta += delta;
      return;
    }
    let copy = this.keyspaceCopies.get(ks);
    if (copy === undefined) this.keyspaceCopies.set(ks, (copy = Buffer.from(keyspace)));
    this.entries.set(pair, { pair, keyspaceId: ks, keyspace: copy, delta });
  }

  /** Distinct (keyspace, key) pairs. */
  get keys(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
    this.keyspaceCopies.clear();
  }
}

/** Byte length of the key of a pending increment. */
export function pendingKeyLength(p: PendingIncrement): number {
  return p.pair.length - p.keyspaceId.length - 1;
}

/** Write the key bytes of a pending increment into buf at offset. */
export function writePendingKey(p: PendingIncrement, buf: Buffer, offset: number): void {
  buf.write(p.pair.substring(p.keyspaceId.length + 1), offset, 'latin1');
}
