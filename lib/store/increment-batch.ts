// Sums increments per (keyspace, key) before they reach the database, so an
// apply reads and writes each distinct key once: the batch Store.apply takes.
// The worker's summing thread sums commit logs with PairSums
// (lib/roles/work/pair-sums.ts, nothing allocated per frame) and hands the
// result over as a SummedBatch (fromSummed). A new pair copies its key bytes
// into one growing buffer (the store builds its record keys from there) and
// joins its keyspace's list, so the store neither groups nor re-encodes
// anything.

/** Node's Buffer#latin1Slice: toString('latin1') without its argument handling (measurably cheaper per frame). */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string; latin1Write(s: string, offset: number): number };

/** The increments of one keyspace in a batch. */
export interface PendingKeyspace {
  /** latin1 keyspace name (a 1:1 byte mapping): the store's directory key. */
  readonly id: string;
  /** The keyspace bytes (one copy per keyspace per batch). */
  readonly name: Buffer;
  /** This keyspace's pairs, in first-seen order. */
  readonly items: PendingIncrement[];
}

export interface PendingIncrement {
  /** The pair's Map key: see pairKey(). */
  readonly pair: string;
  /** Offset and length of the key's bytes in IncrementBatch#keyBytes. */
  readonly keyStart: number;
  readonly keyLength: number;
  delta: bigint;
}

/** Bytes (latin1 chars) of the two name lengths that start a pair key. */
export const PAIR_LENGTHS_SIZE = 4;
const LONG_NAME = 0x10000;
const INITIAL_KEY_BYTES = 64 * 1024;

/**
 * An IncrementBatch as plain transferable arrays, so a batch summed in a
 * worker thread (lib/roles/work/) reaches the store's thread without a
 * structured clone of one object per key. Pairs are listed group by group,
 * in the batch's order.
 */
export interface SummedBatch {
  /** Keyspace names (latin1, see PendingKeyspace#id), and how many pairs each has, in order. */
  groups: Array<{ id: string; pairs: number }>;
  /** Every pair key (see IncrementBatch#entries) back to back, latin1 bytes. */
  pairBytes: Uint8Array;
  /** The key bytes of the batch, and where each pair's key starts in them. */
  keyBytes: Uint8Array;
  keyStarts: Uint32Array;
  /** Each pair's summed delta; for a sum outside int64, 0 here and [pair, decimal] in `big`. */
  deltas: BigInt64Array;
  big: Array<[number, string]>;
}

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** Put pair i's summed delta into a SummedBatch's arrays: in `deltas` if it fits int64, else as a decimal in `big`. */
export function putSummedDelta(deltas: BigInt64Array, big: Array<[number, string]>, i: number, sum: bigint): void {
  if (sum >= I64_MIN && sum <= I64_MAX) deltas[i] = sum;
  else big.push([i, sum.toString()]);
}

/** The pair key of (keyspace, key), both shorter than 64 KiB: see IncrementBatch#entries. */
export function assemblePairKey(keyspace: Buffer, key: Buffer): string {
  const ksLen = keyspace.length;
  const keyLen = key.length;
  return (
    String.fromCharCode(ksLen & 0xff, ksLen >>> 8, keyLen & 0xff, keyLen >>> 8) +
    (keyspace as Latin1Buffer).latin1Slice(0, ksLen) +
    (key as Latin1Buffer).latin1Slice(0, keyLen)
  );
}

export class IncrementBatch {
  /**
   * Pair key -> pending sum. A pair key is `ksLen ksLen keyLen keyLen keyspace
   * key` as latin1 (lengths u16 little-endian): unambiguous without a
   * separator, and the very bytes a commit-log entry holds from its offset 8
   * (what PairSums hashes).
   */
  private readonly entries = new Map<string, PendingIncrement>();
  private readonly byKeyspace = new Map<string, PendingKeyspace>();
  /** Key bytes of every pair, appended in first-seen order. */
  private bytes: Buffer = Buffer.allocUnsafe(INITIAL_KEY_BYTES);
  private used = 0;
  /** Built by fromSummed: its number of pairs (the entries map is not filled). -1 otherwise. */
  private summedPairs = -1;

  /**
   * Add `delta` to (keyspace, key). A delta of 0 is ignored (it creates
   * nothing); a key touched by a non-zero delta is created by the apply even
   * if its deltas sum to 0. The sum is unbounded here; the store saturates it.
   * Names are validated by Store.apply, not here; the buffers may be reused
   * by the caller as soon as add() returns.
   */
  add(keyspace: Buffer, key: Buffer, delta: bigint): void {
    if (this.summedPairs >= 0) throw new Error('IncrementBatch.add: this batch was built from a SummedBatch and is complete');
    if (delta === 0n) return;
    const pair = this.pairKey(keyspace, key);
    const pending = this.entries.get(pair);
    if (pending !== undefined) {
      pending.delta += delta;
      return;
    }
    this.addNew(pair, keyspace, key, delta);
  }

  /** Distinct (keyspace, key) pairs. */
  get keys(): number {
    return this.summedPairs >= 0 ? this.summedPairs : this.entries.size;
  }

  /** The keyspaces of the batch, each with its pairs. */
  keyspaces(): IterableIterator<PendingKeyspace> {
    return this.byKeyspace.values();
  }

  /** The key bytes of every pair (PendingIncrement#keyStart/keyLength index into it). */
  get keyBytes(): Buffer {
    return this.bytes.subarray(0, this.used);
  }

  /** This batch as transferable arrays (its buffers are copies: every ArrayBuffer may be transferred). */
  toSummed(): SummedBatch {
    const n = this.keys;
    let pairLength = 0;
    for (const pending of this.entries.values()) pairLength += pending.pair.length;
    const pairBytes = Buffer.from(new ArrayBuffer(pairLength)) as Latin1Buffer;
    const keyBytes = Buffer.from(new ArrayBuffer(this.used));
    this.bytes.copy(keyBytes, 0, 0, this.used);
    const keyStarts = new Uint32Array(n);
    const deltas = new BigInt64Array(n);
    const big: Array<[number, string]> = [];
    const groups: SummedBatch['groups'] = [];
    let i = 0;
    let at = 0;
    for (const group of this.byKeyspace.values()) {
      groups.push({ id: group.id, pairs: group.items.length });
      for (const p of group.items) {
        at += pairBytes.latin1Write(p.pair, at);
        keyStarts[i] = p.keyStart;
        putSummedDelta(deltas, big, i, p.delta);
        i++;
      }
    }
    return { groups, pairBytes, keyBytes, keyStarts, deltas, big };
  }

  /**
   * The batch a SummedBatch describes. It is complete: add() throws (its
   * pairs are not indexed for summing).
   */
  static fromSummed(summed: SummedBatch): IncrementBatch {
    const batch = new IncrementBatch();
    const pairBytes = Buffer.from(summed.pairBytes.buffer, summed.pairBytes.byteOffset, summed.pairBytes.byteLength) as Latin1Buffer;
    const big = new Map(summed.big);
    let i = 0;
    let at = 0;
    for (const g of summed.groups) {
      const id = g.id;
      const name = Buffer.from(id, 'latin1');
      const items: PendingIncrement[] = new Array(g.pairs);
      for (let j = 0; j < g.pairs; j++) {
        const ksLen = pairBytes[at]! | (pairBytes[at + 1]! << 8);
        const keyLength = pairBytes[at + 2]! | (pairBytes[at + 3]! << 8);
        const end = at + PAIR_LENGTHS_SIZE + ksLen + keyLength;
        const bigDelta = big.get(i);
        items[j] = { pair: pairBytes.latin1Slice(at, end), keyStart: summed.keyStarts[i]!, keyLength, delta: bigDelta === undefined ? summed.deltas[i]! : BigInt(bigDelta) };
        at = end;
        i++;
      }
      batch.byKeyspace.set(id, { id, name, items });
    }
    batch.bytes = Buffer.from(summed.keyBytes.buffer, summed.keyBytes.byteOffset, summed.keyBytes.byteLength);
    batch.used = summed.keyBytes.byteLength;
    batch.summedPairs = i;
    return batch;
  }

  clear(): void {
    this.entries.clear();
    this.byKeyspace.clear();
    this.used = 0;
    this.summedPairs = -1;
  }

  /** The pair key (see `entries`). */
  private pairKey(keyspace: Buffer, key: Buffer): string {
    const ksLen = keyspace.length;
    const keyLen = key.length;
    if (ksLen >= LONG_NAME || keyLen >= LONG_NAME) {
      // Never a valid name (field sizes stop at 65535); a form no short pair can take, for the store to reject.
      return `\u0100${ksLen}:${keyLen}:${(keyspace as Latin1Buffer).latin1Slice(0, ksLen)}${(key as Latin1Buffer).latin1Slice(0, keyLen)}`;
    }
    return assemblePairKey(keyspace, key);
  }

  private addNew(pair: string, keyspace: Buffer, key: Buffer, delta: bigint): void {
    const ks = (keyspace as Latin1Buffer).latin1Slice(0, keyspace.length);
    let group = this.byKeyspace.get(ks);
    if (group === undefined) {
      group = { id: ks, name: Buffer.from(keyspace), items: [] };
      this.byKeyspace.set(ks, group);
    }
    const keyLength = key.length;
    if (this.used + keyLength > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.bytes.length, this.used + keyLength));
      this.bytes.copy(grown, 0, 0, this.used);
      this.bytes = grown;
    }
    const keyStart = this.used;
    const bytes = this.bytes;
    if (keyLength <= 64) for (let i = 0; i < keyLength; i++) bytes[keyStart + i] = key[i]!;
    else key.copy(bytes, keyStart);
    this.used += keyLength;
    const pending: PendingIncrement = { pair, keyStart, keyLength, delta };
    this.entries.set(pair, pending);
    group.items.push(pending);
  }
}
