// The apply whose LevelDB write is in flight, as the NEXT apply sees it.
//
// Store.apply overlaps: once apply N has built its write batch and handed it
// to LevelDB (which appends it to its log, fsyncs and fills its memtable on
// a thread of libuv's pool), apply N + 1 starts reading counts and building
// its own batch on the JS thread. N + 1 prepares on top of N's results
// without waiting for N to commit:
//
//  - a pair N writes: its count is N's final count. N put those into the
//    count cache when it handed its batch over (and the cache is not trimmed
//    before N commits); pairs it does not hold (no cache, or new pairs not
//    admitted while applies miss: count-cache.ts) are looked up here (finalOf).
//    Never the database, which may not have N's write yet;
//  - any other pair: N does not change it, so the count cache and the
//    database answer as they would after N;
//  - a keyspace N creates or grows: its directory record after N (dirAfter);
//    new keyspaces take ids from N's next id.
//
// Everything after that (rank fences, which read index blocks N may have
// written; the write itself) waits until N has committed and swapped in its
// state, so it sees N's fences and records on disk as any apply would. If N
// fails, N + 1 fails too (its counts were computed on top of N's) and the
// count cache is cleared (it held N's counts): the caller retries both. Only
// one apply is ever in flight, so one level of overlay is enough.

import type { PendingIncrement } from './increment-batch.js';

/** A directory record: see Store. */
export interface DirRecord {
  name: Buffer;
  id: number;
  size: number;
}

interface Overlay {
  groups: ReadonlyArray<{ readonly items: readonly PendingIncrement[] }>;
  finals: readonly bigint[];
}

export class InflightApply {
  /** Resolves once the write committed and the Store swapped its state in; rejects with its failure. */
  readonly done: Promise<void>;
  /** Directory records after this apply, of the keyspaces it writes (latin1 name -> record). */
  readonly dirAfter: ReadonlyMap<string, DirRecord>;
  /** The Store's next keyspace id after this apply. */
  readonly nextIdAfter: number;
  /** The apply's pairs and final counts, kept when its new pairs are not in the count cache (no cache, or not admitted): finalOf. */
  #overlay: Overlay | undefined;
  #byPair: Map<string, bigint> | undefined;

  constructor(done: Promise<void>, dirAfter: ReadonlyMap<string, DirRecord>, nextIdAfter: number, overlay: Overlay | undefined) {
    this.done = done;
    this.dirAfter = dirAfter;
    this.nextIdAfter = nextIdAfter;
    this.#overlay = overlay;
  }

  /**
   * The count pair `pair` has after this apply, or undefined if the apply
   * does not write it. For pairs the count cache does not hold; the lookup map is
   * built on first use.
   */
  finalOf(pair: string): bigint | undefined {
    if (this.#byPair === undefined) {
      const map = new Map<string, bigint>();
      const { groups, finals } = this.#overlay ?? { groups: [], finals: [] };
      let at = 0;
      for (const group of groups) for (const p of group.items) map.set(p.pair, finals[at++]!);
      this.#byPair = map;
      this.#overlay = undefined;
    }
    return this.#byPair.get(pair);
  }
}
