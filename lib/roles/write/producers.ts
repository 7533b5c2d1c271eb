// The idempotent producers countd-write knows (docs/write-protocol-extensions.md,
// version 2; Kafka's idempotent producer is the model). Each producer id has
// an epoch (a newer one fences the older instances) and, within the epoch,
// a run of sequence numbers made durable without gaps: [first, durable].
//
// A frame (id, epoch, seq) is
//   - a duplicate when first <= seq <= durable: it was made durable before
//     (the run has no gap), so it is answered without writing anything;
//   - accepted when seq = pending + 1 (pending: the last accepted, durable or
//     in a commit not yet decided), or when it opens a new epoch or producer;
//   - fenced when its epoch is below the producer's;
//   - out of sequence otherwise (a gap, or below the epoch's first).
// A frame whose producer has undecided frames on ANOTHER connection waits
// until they are decided (a retry racing its original's commit): then it is
// a duplicate if that commit succeeded, accepted if it failed. So the run
// [first, durable] only ever holds frames that are durable, once each.
//
// Durable state (the same run) is kept by the worker in the database, in the
// batch that applies the frames (lib/roles/work/producer-marks.ts); a writer
// that starts rebuilds this table from the database and the commit logs not
// yet applied (producer-load.ts) before it answers a version-2 hello.

import { DEFAULT_MAX_PRODUCERS, DEFAULT_PRODUCER_EXPIRY_MS } from '../../protocol/write-ops.js';
import type { ProducerInfo } from '../../protocol/read-response.js';

/** What admit() decided. */
export const enum Verdict {
  Accept,
  Duplicate,
  Fenced,
  OutOfSequence,
  Limit,
  /** The producer's last commit failed with an outcome the disk could not tell: refused until the writer restarts. */
  Unknown,
  /** Wait (ProducerTable.wait) and ask again. */
  Wait,
}

export interface ProducerState {
  readonly id: bigint;
  epoch: number;
  /** First sequence of the epoch's durable run. */
  first: bigint;
  /** Last durable sequence (first - 1: none yet). */
  durable: bigint;
  /** Last accepted sequence (>= durable; above it while frames are undecided). */
  pending: bigint;
  /** Accepted frames whose commit is not decided yet. */
  undecided: number;
  /** The connection holding them. */
  owner: object | null;
  /** Token of the last durable frame. */
  token: bigint;
  /** When the producer last wrote (ms since the epoch): idle ones expire. */
  lastSeen: number;
  unknown: boolean;
  waiters: Array<() => void>;
}

/** One producer as the database and the commit logs describe it (producer-load.ts). */
export type ProducerRecord = ProducerInfo;

const SWEEP_EVERY_MS = 60_000;

export class ProducerTable {
  readonly maxProducers: number;
  readonly expiryMs: number;
  /** Set by admit(): the state concerned and the reply's detail (fenced: epoch; out of sequence: next expected; limit: the limit). */
  state: ProducerState | null = null;
  detail = 0n;
  #ready = false;
  #readyWaiters: Array<() => void> = [];
  readonly #map = new Map<bigint, ProducerState>();
  #lastSweep = 0;

  constructor(maxProducers = DEFAULT_MAX_PRODUCERS, expiryMs = DEFAULT_PRODUCER_EXPIRY_MS) {
    this.maxProducers = maxProducers;
    this.expiryMs = expiryMs;
  }

  get ready(): boolean {
    return this.#ready;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The rebuilt state is in: answer version-2 hellos. */
  markReady(): void {
    this.#ready = true;
    for (const wake of this.#readyWaiters.splice(0)) wake();
  }

  /** Call `wake` once ready. */
  whenReady(wake: () => void): void {
    if (this.#ready) wake();
    else this.#readyWaiters.push(wake);
  }

  /** Merge a record of the database or of a commit log (the newest epoch wins; a run of the same epoch widens). */
  merge(r: ProducerRecord): void {
    const st = this.#map.get(r.id);
    if (st === undefined) {
      this.#map.set(r.id, { id: r.id, epoch: r.epoch, first: r.first, durable: r.last, pending: r.last, undecided: 0, owner: null, token: r.token, lastSeen: r.lastSeen, unknown: false, waiters: [] });
      return;
    }
    if (r.epoch < st.epoch) return;
    if (r.epoch > st.epoch) {
      st.epoch = r.epoch;
      st.first = r.first;
      st.durable = r.last;
    } else {
      if (r.first < st.first) st.first = r.first;
      if (r.last > st.durable) st.durable = r.last;
    }
    st.pending = st.durable;
    if (r.token > st.token) st.token = r.token;
    if (r.lastSeen > st.lastSeen) st.lastSeen = r.lastSeen;
  }

  get(id: bigint): ProducerState | undefined {
    return this.#map.get(id);
  }

  /** Decide the frame (id, epoch, seq) of connection `owner`; see the top of this file. */
  admit(owner: object, id: bigint, epoch: number, seq: bigint, now: number): Verdict {
    let st = this.#map.get(id);
    this.state = null;
    this.detail = 0n;
    if (st === undefined) {
      if (this.#map.size >= this.maxProducers && this.sweep(now, true) === 0) {
        this.detail = BigInt(this.maxProducers);
        return Verdict.Limit;
      }
      st = { id, epoch, first: seq, durable: seq - 1n, pending: seq - 1n, undecided: 0, owner: null, token: 0n, lastSeen: now, unknown: false, waiters: [] };
      this.#map.set(id, st);
    }
    this.state = st;
    if (st.undecided > 0 && st.owner !== owner) return Verdict.Wait;
    if (st.unknown) return Verdict.Unknown;
    if (epoch < st.epoch) {
      this.detail = BigInt(st.epoch);
      return Verdict.Fenced;
    }
    if (epoch > st.epoch) {
      // A new instance: its first frame opens the epoch's run (after the old instance's frames are decided).
      if (st.undecided > 0) return Verdict.Wait;
      st.epoch = epoch;
      st.first = seq;
      st.durable = seq - 1n;
      st.pending = seq - 1n;
    }
    if (seq === st.pending + 1n) {
      st.pending = seq;
      st.undecided++;
      st.owner = owner;
      st.lastSeen = now;
      return Verdict.Accept;
    }
    if (seq >= st.first && seq <= st.durable) {
      st.lastSeen = now;
      this.detail = st.durable;
      return Verdict.Duplicate;
    }
    // Between durable and pending: the same connection sent it twice while undecided; wait for the outcome.
    if (seq > st.durable && seq <= st.pending) return Verdict.Wait;
    this.detail = st.pending + 1n;
    return Verdict.OutOfSequence;
  }

  /** Call `wake` once `st` has no undecided frame (or at once). */
  wait(st: ProducerState, wake: () => void): void {
    if (st.undecided === 0) wake();
    else st.waiters.push(wake);
  }

  /** Undo the last admit() of `st` that accepted a frame the batch then had no room for (it is asked again later). */
  retract(st: ProducerState): void {
    st.pending -= 1n;
    this.#decided(st);
  }

  /** An accepted frame `seq` of `st` is durable with `token`. */
  durable(st: ProducerState, seq: bigint, token: bigint): void {
    if (seq > st.durable) st.durable = seq;
    st.token = token;
    this.#decided(st);
  }

  /** An accepted frame of `st` failed; `unknown`: it may still be applied. */
  failed(st: ProducerState, unknown: boolean): void {
    st.pending = st.durable;
    if (unknown) st.unknown = true;
    this.#decided(st);
  }

  #decided(st: ProducerState): void {
    if (--st.undecided > 0) return;
    st.owner = null;
    if (st.waiters.length > 0) for (const wake of st.waiters.splice(0)) wake();
  }

  /**
   * Forget producers idle for expiryMs (none with undecided frames); at most
   * once a minute unless `force`. Returns how many went.
   */
  sweep(now: number, force = false): number {
    if (!force && now - this.#lastSweep < Math.min(SWEEP_EVERY_MS, this.expiryMs)) return 0;
    this.#lastSweep = now;
    let removed = 0;
    for (const [id, st] of this.#map) {
      if (st.undecided === 0 && st.waiters.length === 0 && now - st.lastSeen >= this.expiryMs) {
        this.#map.delete(id);
        removed++;
      }
    }
    return removed;
  }
}
