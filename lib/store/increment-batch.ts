// Sums increments per (keyspace, key) before they reach the database, so an
// apply reads and writes each distinct key once: the batch Store.apply takes.
// The worker's summing thread sums commit logs with PairSums
// (lib/roles/work/pair-sums.ts, nothing allocated per frame); its result
// becomes an IncrementBatch through `assembled` (lib/roles/work/summed-batch.ts).
// A new pair copies its key bytes into one growing buffer (the store builds
// its record keys from there) and joins its keyspace's list, so the store
// neither groups nor re-encodes anything. Deltas combine by the rule of
// combine.ts.

import { PAIR_NAME_LIMIT, pairKeyString } from '../protocol/pair-key.js';
import { Operator, PairMode, combineValues, modeAfterIncrement } from './combine.js';
import { governingKeyspace, isPeriodOf, isWindowed, periodName, periodStart, type WindowSettings } from './windows.js';

/** Node's Buffer#latin1Slice: toString('latin1') without its argument handling (measurably cheaper per frame). */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

/** The increments of one keyspace in a batch. */
export interface PendingKeyspace {
  /** latin1 keyspace name (a 1:1 byte mapping): the store's directory key. */
  readonly id: string;
  /** The keyspace bytes (one copy per keyspace per batch). */
  readonly name: Buffer;
  /** This keyspace's pairs, in first-seen order. */
  readonly items: PendingIncrement[];
  /** The batch deletes the keyspace (before its items, which start from nothing). */
  dropped?: boolean;
  /** The batch creates the keyspace with this operator (combine.ts Operator), or deletes it (0): its settings record changes. */
  declare?: number;
  /** With `declare`: the tie rule the created keyspace gets (encoding.ts Ties; absent: key). */
  ties?: number;
  /** How the batch combined this keyspace's values (combine.ts Operator); the apply combines them with the stored counts the same way. */
  operator?: number;
  /** With `declare`: the keyspace's time window (windows.ts), if it has one. */
  window?: WindowSettings;
}

export interface PendingIncrement {
  /** The pair's Map key: lib/protocol/pair-key.ts. */
  readonly pair: string;
  /** Offset and length of the key's bytes in IncrementBatch#keyBytes. */
  readonly keyStart: number;
  readonly keyLength: number;
  delta: bigint;
  /** PairMode (combine.ts): add the delta, reset to it, or delete the key. */
  mode: number;
}

const INITIAL_KEY_BYTES = 64 * 1024;

export class IncrementBatch {
  /** Pair key (lib/protocol/pair-key.ts, as latin1) -> pending sum. */
  private readonly entries = new Map<string, PendingIncrement>();
  private readonly byKeyspace = new Map<string, PendingKeyspace>();
  /** Key bytes of every pair, appended in first-seen order. */
  private bytes: Buffer = Buffer.allocUnsafe(INITIAL_KEY_BYTES);
  private used = 0;
  /** Built by `assembled`: its number of pairs (the entries map is not filled). -1 otherwise. */
  private summedPairs = -1;
  /** Operators of declared keyspaces that do not sum (latin1 name -> Operator): Store#operators(). */
  private readonly declared: ReadonlyMap<string, number>;

  /** Windowed keyspaces (latin1 name -> window) as the batch goes: the store's, then the batch's creates and deletes. */
  private readonly windows: Map<string, WindowSettings>;
  /**
   * When the ops added next were made durable (ms since the epoch): a write
   * to a windowed keyspace goes to the period holding this time (windows.ts).
   * The worker's summing thread takes it from each commit-log record.
   */
  writtenAt = 0;
  /**
   * Give each pair of a `--ties first` keyspace its own apply order, one more
   * per pair in the order added, instead of one for the whole apply: a
   * cluster restore (lib/cluster/restore.ts) sets a snapshot's keys in rank
   * order, so its ties keep who reached the count first.
   */
  orderEachPair = false;

  /**
   * `declared`: the operators of the store's declared keyspaces (Store#operators()), so that add() combines as the apply will;
   * `windows`: its windowed keyspaces (Store#windows()), so that ops on them go to their periods.
   */
  constructor(declared: ReadonlyMap<string, number> = new Map(), windows: ReadonlyMap<string, WindowSettings> = new Map()) {
    this.declared = declared;
    this.windows = new Map(windows);
  }

  /** The store name an op on `keyspace` goes to: the current period's for a windowed keyspace (windows.ts). */
  private route(keyspace: Buffer): Buffer {
    if (this.windows.size === 0) return keyspace;
    const w = this.windows.get(latin1Of(keyspace));
    if (w === undefined) return keyspace;
    const name = periodName(keyspace, periodStart(w, this.writtenAt));
    const base = this.byKeyspace.get(latin1Of(keyspace));
    const id = latin1Of(name);
    // A period first written after its keyspace was re-created in this batch replaces what was stored.
    if (base?.dropped === true && !this.byKeyspace.has(id)) this.byKeyspace.set(id, { id, name, items: [], dropped: true, operator: base.operator });
    return name;
  }

  /**
   * Add `delta` to (keyspace, key). A delta of 0 is ignored (it creates
   * nothing); a key touched by a non-zero delta is created by the apply even
   * if its deltas sum to 0. Deltas combine by combine.ts (addDeltas).
   * Names are validated by Store.apply, not here; the buffers may be reused
   * by the caller as soon as add() returns.
   */
  add(target: Buffer, key: Buffer, delta: bigint): void {
    if (this.summedPairs >= 0) throw new Error('IncrementBatch.add: this batch was assembled from summed pairs and is complete');
    if (delta === 0n) return;
    const keyspace = this.route(target);
    const pair = this.pairKey(keyspace, key);
    const pending = this.entries.get(pair);
    if (pending !== undefined) {
      const operator = this.byKeyspace.get(latin1Of(keyspace))!.operator ?? Operator.sum;
      // A deleted pair starts again from this value, whatever the operator.
      pending.delta = pending.mode === PairMode.deleted ? delta : combineValues(operator, pending.delta, delta);
      pending.mode = modeAfterIncrement(pending.mode);
      return;
    }
    this.addNew(pair, keyspace, key, delta).mode = this.byKeyspace.get(latin1Of(keyspace))?.dropped === true ? PairMode.reset : PairMode.add;
  }

  /**
   * Create keyspace `keyspace` with `operator` (combine.ts Operator), tie
   * rule `ties` (encoding.ts Ties) and `window`: it replaces what the name
   * held, as deleteKeyspace, then declares it.
   */
  createKeyspace(keyspace: Buffer, operator: number, ties = 0, window?: WindowSettings): void {
    this.deleteKeyspace(keyspace);
    const group = this.byKeyspace.get(latin1Of(keyspace))!;
    group.declare = operator;
    group.operator = operator;
    group.ties = ties;
    if (isWindowed(window)) {
      group.window = window;
      this.windows.set(group.id, window);
    }
  }

  /** Set (keyspace, key) to `count`, after what the batch holds for it; increments added later add to it. */
  set(keyspace: Buffer, key: Buffer, count: bigint): void {
    this.replace(this.route(keyspace), key, PairMode.reset, count);
  }

  /** Delete (keyspace, key), after what the batch holds for it; an increment added later creates it again from 0. */
  deleteKey(keyspace: Buffer, key: Buffer): void {
    this.replace(this.route(keyspace), key, PairMode.deleted, 0n);
  }

  /** Delete the keyspace, after what the batch holds for it; pairs added later start a new keyspace of that name. */
  deleteKeyspace(keyspace: Buffer): void {
    if (this.summedPairs >= 0) throw new Error('IncrementBatch.deleteKeyspace: this batch was assembled from summed pairs and is complete');
    const ks = latin1Of(keyspace);
    let group = this.byKeyspace.get(ks);
    if (group === undefined) {
      group = { id: ks, name: Buffer.from(keyspace), items: [] };
      this.byKeyspace.set(ks, group);
    }
    group.dropped = true;
    group.declare = 0;
    group.ties = 0;
    group.operator = Operator.sum;
    group.window = undefined;
    this.windows.delete(ks);
    // Its periods (windows.ts) go with it.
    for (const other of this.byKeyspace.values()) {
      if (other !== group && !isPeriodOf(other.id, ks)) continue;
      other.dropped = true;
      for (const p of other.items) {
        p.mode = PairMode.deleted;
        p.delta = 0n;
      }
    }
  }

  /** Whether some pair is set or deleted, or some keyspace deleted (the apply then runs alone: apply.ts). */
  get hasLifecycleOps(): boolean {
    for (const group of this.byKeyspace.values()) {
      if (group.dropped === true || group.declare !== undefined) return true;
      for (const p of group.items) if (p.mode !== PairMode.add) return true;
    }
    return false;
  }

  private replace(keyspace: Buffer, key: Buffer, mode: number, value: bigint): void {
    if (this.summedPairs >= 0) throw new Error('IncrementBatch: this batch was assembled from summed pairs and is complete');
    const pair = this.pairKey(keyspace, key);
    const pending = this.entries.get(pair) ?? this.addNew(pair, keyspace, key, 0n);
    pending.mode = mode;
    pending.delta = value;
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

  /**
   * A complete batch of pairs summed elsewhere (the summing thread): the
   * keyspaces with their pairs in order, and the key bytes their keyStart
   * and keyLength index into. add() throws on it (its pairs are not indexed
   * for summing).
   */
  static assembled(keyspaces: PendingKeyspace[], keyBytes: Buffer): IncrementBatch {
    const batch = new IncrementBatch();
    let pairs = 0;
    for (const group of keyspaces) {
      batch.byKeyspace.set(group.id, group);
      pairs += group.items.length;
    }
    batch.bytes = keyBytes;
    batch.used = keyBytes.length;
    batch.summedPairs = pairs;
    return batch;
  }

  clear(): void {
    this.entries.clear();
    this.byKeyspace.clear();
    this.used = 0;
    this.summedPairs = -1;
  }

  /** The operator of store name `ks` as the batch goes (a period's is its keyspace's). */
  private operatorOf(ks: string): number {
    const governing = governingKeyspace(ks);
    return this.byKeyspace.get(governing)?.operator ?? this.declared.get(governing) ?? Operator.sum;
  }

  /** The pair key (see `entries`). */
  private pairKey(keyspace: Buffer, key: Buffer): string {
    const ksLen = keyspace.length;
    const keyLen = key.length;
    if (ksLen >= PAIR_NAME_LIMIT || keyLen >= PAIR_NAME_LIMIT) {
      // Never a valid name (field sizes stop at 65535); a form no short pair can take, for the store to reject.
      return `\u0100${ksLen}:${keyLen}:${(keyspace as Latin1Buffer).latin1Slice(0, ksLen)}${(key as Latin1Buffer).latin1Slice(0, keyLen)}`;
    }
    return pairKeyString(keyspace, key);
  }

  private addNew(pair: string, keyspace: Buffer, key: Buffer, delta: bigint): PendingIncrement {
    const ks = (keyspace as Latin1Buffer).latin1Slice(0, keyspace.length);
    let group = this.byKeyspace.get(ks);
    if (group === undefined) {
      group = { id: ks, name: Buffer.from(keyspace), items: [], operator: this.operatorOf(ks) };
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
    const pending: PendingIncrement = { pair, keyStart, keyLength, delta, mode: PairMode.add };
    this.entries.set(pair, pending);
    group.items.push(pending);
    return pending;
  }
}

function latin1Of(buf: Buffer): string {
  return (buf as Latin1Buffer).latin1Slice(0, buf.length);
}
