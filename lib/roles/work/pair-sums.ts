// The summing thread's table: increments summed per (keyspace, key) pair,
// read in place from the commit-log payloads, handed over as a SummedBatch
// (summed-batch.ts).
//
// Why not IncrementBatch (a Map from a latin1 pair string to an object per
// pair): it allocates a string and a bigint per frame and ~500 bytes of heap
// per pair; a 500,000-pair batch leaves the thread's V8 heap at ~280 MiB
// until its next collection (BENCHMARKS.md, "The store child's memory").
// Here a frame allocates nothing: a pair's bytes are the very bytes an entry
// holds from its offset 8 (the pair key, lib/protocol/pair-key.ts), hashed (FNV-1a) and
// looked up in an open-addressing table over typed arrays; a new pair copies
// them into one growing buffer. About 60 bytes a pair, off the V8 heap.
//
// Deltas combine by the rule of lib/store/combine.ts (addDeltas: exact,
// unbounded): here as a plain double while the sum is a safe integer (every
// increment of a real workload, and the same exact sum), a bigint past that
// (a sum outside int64 reaches the store as a decimal; the apply saturates).

import { ENTRY_FIXED_SIZE, OP_CREATE_KEYSPACE, OP_DELETE_KEY, OP_DELETE_KEYSPACE, OP_ENTRY_FIXED_SIZE, OP_SET, forEachEntryAt, forEachOpAt } from '../../commitlog/format.js';
import { PAIR_LENGTHS_SIZE, pairKeyspaceLength } from '../../protocol/pair-key.js';
import { Operator, PairMode, addDeltas, combineValues, modeAfterIncrement } from '../../store/combine.js';
import { putSummedDelta, type SummedBatch } from './summed-batch.js';

type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

const INITIAL_PAIRS = 1 << 12;
const INITIAL_BYTES = 1 << 16;
const TWO_32 = 2 ** 32;
/** Increments whose high 32 bits are in [-2^21, 2^21) are safe integers. */
const SAFE_HIGH = 0x20_0000;
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

interface Group {
  id: string;
  /** -1 while the group has no pair (a keyspace delete came first). */
  first: number;
  last: number;
  pairs: number;
  /** A keyspace delete is in the batch: the stored keyspace goes, the pairs after it start from nothing. */
  dropped: boolean;
  /** How this keyspace's values combine (combine.ts Operator), as of the frame being summed. */
  operator: number;
  /** A create (its operator) or a delete (0) of the keyspace is in the batch: its settings record changes. */
  declare: number | undefined;
  /** With `declare`: the created keyspace's tie rule (lib/store/encoding.ts Ties), from the create entry's settings bytes. */
  ties?: number;
}

export class PairSums {
  /** Every pair's bytes, back to back, in first-seen order. */
  #bytes: Latin1Buffer = Buffer.allocUnsafe(INITIAL_BYTES) as Latin1Buffer;
  #used = 0;
  #keyBytes = 0;
  #count = 0;
  // Per pair, by first-seen index:
  #start = new Uint32Array(INITIAL_PAIRS);
  #length = new Uint32Array(INITIAL_PAIRS);
  #hash = new Int32Array(INITIAL_PAIRS);
  #sum = new Float64Array(INITIAL_PAIRS);
  /** 1: the sum left the safe integers and is in #big. */
  #isBig = new Uint8Array(INITIAL_PAIRS);
  /** PairMode of each pair (lib/store/combine.ts). */
  #mode = new Uint8Array(INITIAL_PAIRS);
  /** Operator of each pair's keyspace when the pair was last written (a create in the batch changes it). */
  #operatorOf = new Uint8Array(INITIAL_PAIRS);
  /** The next pair of the same keyspace, or -1. */
  #next = new Int32Array(INITIAL_PAIRS);
  #big = new Map<number, bigint>();
  /** Open addressing, linear probing: pair index + 1, 0 for empty; at most half full. */
  #slots = new Int32Array(INITIAL_PAIRS * 2);
  /** Keyspace (latin1) -> its pairs' chain through #next; in first-seen order, as a Map iterates. */
  readonly #groups = new Map<string, Group>();
  /** Declared keyspaces whose operator is not sum, as the store had them when the batch began (latin1 name -> Operator). */
  readonly #declared: ReadonlyMap<string, number>;
  /** Whether #pair() just added the pair. */
  #created = false;

  constructor(declared: ReadonlyMap<string, number> = new Map()) {
    this.#declared = declared;
  }

  /** Distinct pairs so far. */
  get count(): number {
    return this.#count;
  }

  /**
   * Add every entry of a BATCH payload (docs/commit-log-format.md). Entries
   * with increment 0 are ignored; a pair touched by a non-zero one is kept
   * even if its sum comes to 0 (as IncrementBatch#add). Throws
   * COUNTD_CORRUPTION on a malformed payload (forEachEntryAt), having added
   * the entries before the damage: the caller drops the whole table then.
   */
  addPayload(payload: Buffer): number {
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    return forEachEntryAt(payload, (p, ksLen, keyLen) => {
      const lo = view.getUint32(p, true);
      const hi = view.getInt32(p + 4, true);
      if (lo === 0 && hi === 0) return;
      this.#add(payload, p + ENTRY_FIXED_SIZE - PAIR_LENGTHS_SIZE, PAIR_LENGTHS_SIZE + ksLen + keyLen, ksLen, hi, lo);
    });
  }

  /**
   * Add every op entry of an OPS payload, in order (combine.ts: a set or a
   * delete replaces what the batch summed for the pair before it, and
   * increments after it add to the new value).
   */
  addOps(payload: Buffer): number {
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    return forEachOpAt(payload, (p, op, ksLen, keyLen) => {
      const at = p + OP_ENTRY_FIXED_SIZE - PAIR_LENGTHS_SIZE;
      if (op === OP_DELETE_KEYSPACE || op === OP_CREATE_KEYSPACE) {
        const id = (payload as Latin1Buffer).latin1Slice(at + PAIR_LENGTHS_SIZE, at + PAIR_LENGTHS_SIZE + ksLen);
        // A create replaces whatever the name held: a delete, then the new operator.
        this.#dropKeyspace(id, op === OP_CREATE_KEYSPACE ? view.getUint8(p + 1) : 0);
        // Its key bytes, if any, are the settings bytes 1 … 15 (docs/commit-log-format.md): byte 1 the tie rule.
        this.#groups.get(id)!.ties = op === OP_CREATE_KEYSPACE && keyLen > 0 ? payload[at + PAIR_LENGTHS_SIZE + ksLen]! : 0;
        return;
      }
      const lo = view.getUint32(p + 1, true);
      const hi = view.getInt32(p + 5, true);
      if (op !== OP_SET && op !== OP_DELETE_KEY && lo === 0 && hi === 0) return;
      const i = this.#pair(payload, at, PAIR_LENGTHS_SIZE + ksLen + keyLen, ksLen);
      if (op === OP_SET || op === OP_DELETE_KEY) {
        this.#sum[i] = 0;
        this.#isBig[i] = 0;
        this.#big.delete(i);
        this.#mode[i] = op === OP_SET ? PairMode.reset : PairMode.deleted;
        if (op === OP_SET) this.#addTo(i, hi, lo);
      } else {
        this.#write(i, hi, lo);
      }
    }) as number;
  }

  /** Every pair of keyspace `id` summed so far is deleted; pairs of it seen later start from nothing, combined by `operator` (0: undeclared, sum). */
  #dropKeyspace(id: string, operator: number): void {
    let group = this.#groups.get(id);
    if (group === undefined) {
      group = { id, first: -1, last: -1, pairs: 0, dropped: true, operator: operator || Operator.sum, declare: operator };
      this.#groups.set(id, group);
      return;
    }
    group.dropped = true;
    group.operator = operator || Operator.sum;
    group.declare = operator;
    for (let i = group.first; i !== -1; i = this.#next[i]!) {
      this.#mode[i] = PairMode.deleted;
      this.#operatorOf[i] = group.operator;
      this.#sum[i] = 0;
      this.#isBig[i] = 0;
      this.#big.delete(i);
    }
  }

  #add(buf: Buffer, at: number, length: number, ksLen: number, hi: number, lo: number): void {
    this.#write(this.#pair(buf, at, length, ksLen), hi, lo);
  }

  /** A value written to pair i (an increment of a sum keyspace, a candidate of a max one, …): combined by its keyspace's operator. */
  #write(i: number, hi: number, lo: number): void {
    const fresh = this.#created || this.#mode[i] === PairMode.deleted;
    this.#mode[i] = modeAfterIncrement(this.#mode[i]!);
    const operator = this.#operatorOf[i]!;
    if (operator === Operator.sum) {
      this.#addTo(i, hi, lo);
      return;
    }
    const value = (BigInt(hi) << 32n) + BigInt(lo);
    const next = fresh ? value : combineValues(operator, this.#valueOf(i), value);
    this.#sum[i] = 0;
    this.#isBig[i] = 0;
    this.#big.delete(i);
    this.#addTo(i, Number(BigInt.asIntN(32, next >> 32n)), Number(BigInt.asUintN(32, next)));
  }

  #valueOf(i: number): bigint {
    return this.#isBig[i] === 1 ? this.#big.get(i)! : BigInt(this.#sum[i]!);
  }

  /** The index of the pair whose pair key is buf[at, at + length), added if new. */
  #pair(buf: Buffer, at: number, length: number, ksLen: number): number {
    let h = FNV_OFFSET;
    const end = at + length;
    for (let i = at; i < end; i++) h = Math.imul(h ^ buf[i]!, FNV_PRIME);
    if (2 * (this.#count + 1) > this.#slots.length) this.#rehash();
    const slots = this.#slots;
    const mask = slots.length - 1;
    let slot = h & mask;
    for (;;) {
      const entry = slots[slot]!;
      if (entry === 0) break;
      const i = entry - 1;
      if (this.#hash[i] === h && this.#length[i] === length && this.#equals(i, buf, at, length)) {
        this.#created = false;
        return i;
      }
      slot = (slot + 1) & mask;
    }
    const i = this.#newPair(buf, at, length, ksLen, h);
    slots[slot] = i + 1;
    this.#created = true;
    return i;
  }

  #equals(i: number, buf: Buffer, at: number, length: number): boolean {
    const bytes = this.#bytes;
    const start = this.#start[i]!;
    for (let k = 0; k < length; k++) if (bytes[start + k] !== buf[at + k]) return false;
    return true;
  }

  #addTo(i: number, hi: number, lo: number): void {
    if (this.#isBig[i] === 0 && hi >= -SAFE_HIGH && hi < SAFE_HIGH) {
      // Two safe integers: if the double sum is within the safe range, it is exact.
      const sum = this.#sum[i]! + (hi * TWO_32 + lo);
      if (sum >= -Number.MAX_SAFE_INTEGER && sum <= Number.MAX_SAFE_INTEGER) {
        this.#sum[i] = sum;
        return;
      }
    }
    const increment = (BigInt(hi) << 32n) + BigInt(lo);
    const current = this.#isBig[i] === 1 ? this.#big.get(i)! : BigInt(this.#sum[i]!);
    this.#big.set(i, addDeltas(current, increment));
    this.#isBig[i] = 1;
  }

  #newPair(buf: Buffer, at: number, length: number, ksLen: number, h: number): number {
    const i = this.#count;
    if (i === this.#start.length) this.#growPairs();
    if (this.#used + length > this.#bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.#bytes.length, this.#used + length)) as Latin1Buffer;
      this.#bytes.copy(grown, 0, 0, this.#used);
      this.#bytes = grown;
    }
    const start = this.#used;
    const bytes = this.#bytes;
    for (let k = 0; k < length; k++) bytes[start + k] = buf[at + k]!;
    this.#used += length;
    this.#keyBytes += length - PAIR_LENGTHS_SIZE - ksLen;
    this.#start[i] = start;
    this.#length[i] = length;
    this.#hash[i] = h;
    this.#sum[i] = 0;
    this.#isBig[i] = 0;
    this.#next[i] = -1;
    this.#count = i + 1;
    const id = bytes.latin1Slice(start + PAIR_LENGTHS_SIZE, start + PAIR_LENGTHS_SIZE + ksLen);
    const group = this.#groups.get(id);
    this.#mode[i] = group?.dropped === true ? PairMode.deleted : PairMode.add;
    if (group === undefined) {
      this.#groups.set(id, { id, first: i, last: i, pairs: 1, dropped: false, operator: this.#declared.get(id) ?? Operator.sum, declare: undefined });
      this.#operatorOf[i] = this.#declared.get(id) ?? Operator.sum;
    } else {
      this.#operatorOf[i] = group.operator;
      if (group.first === -1) group.first = i;
      else this.#next[group.last] = i;
      group.last = i;
      group.pairs++;
    }
    return i;
  }

  #growPairs(): void {
    const size = 2 * this.#start.length;
    const grow = <T extends Uint32Array | Int32Array | Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(size);
      b.set(a as never);
      return b;
    };
    this.#start = grow(this.#start, (n) => new Uint32Array(n));
    this.#length = grow(this.#length, (n) => new Uint32Array(n));
    this.#hash = grow(this.#hash, (n) => new Int32Array(n));
    this.#sum = grow(this.#sum, (n) => new Float64Array(n));
    this.#isBig = grow(this.#isBig, (n) => new Uint8Array(n));
    this.#mode = grow(this.#mode, (n) => new Uint8Array(n));
    this.#operatorOf = grow(this.#operatorOf, (n) => new Uint8Array(n));
    this.#next = grow(this.#next, (n) => new Int32Array(n));
  }

  #rehash(): void {
    const slots = new Int32Array(2 * this.#slots.length);
    const mask = slots.length - 1;
    for (let i = 0; i < this.#count; i++) {
      let slot = this.#hash[i]! & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = i + 1;
    }
    this.#slots = slots;
  }

  /** The pairs as transferable arrays, keyspace by keyspace (first-seen order), each keyspace's pairs in first-seen order. */
  toSummed(): SummedBatch {
    const n = this.#count;
    const bytes = this.#bytes;
    const pairBytes = new Uint8Array(new ArrayBuffer(this.#used));
    const keyBytes = new Uint8Array(new ArrayBuffer(this.#keyBytes));
    const keyStarts = new Uint32Array(n);
    const deltas = new BigInt64Array(n);
    const modes = new Uint8Array(n);
    const big: Array<[number, string]> = [];
    const groups: SummedBatch['groups'] = [];
    let j = 0;
    let at = 0;
    let keyAt = 0;
    for (const group of this.#groups.values()) {
      groups.push({ id: group.id, pairs: group.pairs, dropped: group.dropped, declare: group.declare, ties: group.ties });
      for (let i = group.first; i !== -1; i = this.#next[i]!) {
        const start = this.#start[i]!;
        const length = this.#length[i]!;
        for (let k = 0; k < length; k++) pairBytes[at + k] = bytes[start + k]!;
        at += length;
        const keyStart = start + PAIR_LENGTHS_SIZE + pairKeyspaceLength(bytes, start);
        keyStarts[j] = keyAt;
        for (let k = keyStart; k < start + length; k++) keyBytes[keyAt++] = bytes[k]!;
        if (this.#isBig[i] === 0) deltas[j] = BigInt(this.#sum[i]!);
        else putSummedDelta(deltas, big, j, this.#big.get(i)!);
        modes[j] = this.#mode[i]!;
        j++;
      }
    }
    return { groups, pairBytes, keyBytes, keyStarts, deltas, modes, big };
  }
}
