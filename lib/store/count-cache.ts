// A bounded in-memory copy of recently written counts, so an apply need not
// read them back from LevelDB (a getMany of random keys costs ~5 us a key).
//
// Exactly consistent because the Store is the only writer of its database
// and updates this cache only after a batch commits (a failed batch changes
// neither). Count records are removed only by an apply holding a set, a
// delete or a create (apply.ts: it runs alone, records nothing here and
// clears the cache once committed) or by deleteKeyspace (which clears it
// too), so a cached entry is always a key that exists with that count.
//
// It also answers "absent" without a read: a keyspace whose cached entries
// number its size has ALL its keys cached, so a key missing here is new.
// A keyspace created by an apply starts that way, which makes the first
// applies of a fresh database (and a migration) read nothing at all.
//
// Memory is bounded by bytes (an estimate per entry), not by keys: the
// entries first written longest ago are evicted first (FIFO). An update
// keeps its entry's place: moving it to the end (LRU) costs a Map delete
// and re-insert per key, and the holes those leave make the Map rebuild
// itself; measured, that made the cache cost as much as the reads it saved.
// A hot key evicted by FIFO costs one read and comes back. Keys are the
// IncrementBatch's pair keys (lib/protocol/pair-key.ts), which
// the batch already holds, so a lookup allocates nothing.
//
// Counts are kept as small integers (JS numbers within +-2^30, which V8
// stores in the Map slot itself), and as bigints only beyond: a bigint is
// an object of its own, and every update of a cached key made a new one that
// lived as long as the entry, so the garbage collector traced and moved one
// object more per cached key (the sustained load of issue 14: 200,000 keys
// over 1,000 keyspaces, all cached).

import { pairKeyspaceOf } from '../protocol/pair-key.js';

/** Estimated bytes of one entry besides its key's characters: the Map slot, the string header (a count past +-2^30, a bigint, is rare). */
const ENTRY_OVERHEAD = 80;
/** Counts within +-SMALL are kept as numbers (V8 small integers: no object of their own). */
const SMALL = 2 ** 30;
const SMALL_N = BigInt(SMALL);

/** A count as the cache keeps it. */
function pack(count: bigint): number | bigint {
  return count < SMALL_N && count > -SMALL_N ? Number(count) : count;
}
/**
 * Admission: below this share of hits among the pairs an apply looked up,
 * new pairs are not added (existing entries are still updated). On distinct
 * keys (a leaderboard filling up) every pair misses, and adding then
 * evicting each one cost ~20% of the apply's CPU time and most of its
 * garbage (bench:worker workload (c), BENCHMARKS.md). Uniform keys over
 * more keys than the cache holds (1,000,000 keys, a 14 MiB cache: ~13% of
 * hits) paid the same to save a read for one pair in eight: at 30% the
 * cache admits only where it saves more than it costs (bench:worker (a):
 * 51,455 → 54,488 frames per CPU-second).
 */
const MIN_HIT_RATIO = 0.3;
/** While admission is off, one apply in this many admits again, so a workload that turns hot fills the cache. */
const PROBE_EVERY = 8;

export class CountCache {
  /** Pair key -> count. Insertion order = order of first write (FIFO eviction). */
  private readonly counts = new Map<string, number | bigint>();
  /** latin1 keyspace name -> entries of it cached. */
  private readonly perKeyspace = new Map<string, number>();
  private bytes = 0;
  #admitting = true;
  #sinceProbe = 0;

  constructor(readonly capacityBytes: number) {}

  /** Whether the next apply adds its new pairs (see MIN_HIT_RATIO); existing entries are updated either way. */
  get admitting(): boolean {
    return this.enabled && this.#admitting;
  }

  /** An apply looked up `looked` pairs of existing keyspaces and found `hits` here: decides admission for the next. */
  noteLookups(hits: number, looked: number): void {
    if (looked === 0) return;
    if (hits >= looked * MIN_HIT_RATIO) {
      this.#admitting = true;
      this.#sinceProbe = 0;
      return;
    }
    this.#sinceProbe++;
    this.#admitting = this.#sinceProbe % PROBE_EVERY === 0;
  }

  get enabled(): boolean {
    return this.capacityBytes > 0;
  }

  /** The cached count of a pair, or undefined. */
  get(pair: string): bigint | undefined {
    const v = this.counts.get(pair);
    return typeof v === 'number' ? BigInt(v) : v;
  }

  /** How many keys of keyspace `ks` (latin1 name) are cached: if it equals the keyspace's size, all are. */
  cachedIn(ks: string): number {
    return this.perKeyspace.get(ks) ?? 0;
  }

  /**
   * Record committed counts of keyspace `ks`: `items[i].pair` now counts
   * `counts[at + i]`; `wasCached[at + i]` says whether the entry is cached
   * (1: updated in place; 0: added at the newest end; 2: not known, because
   * an overlapped apply committed in between and may have added or evicted
   * it: looked up).
   */
  record(ks: string, items: ReadonlyArray<{ readonly pair: string }>, counts: readonly bigint[], wasCached: Uint8Array, at: number, admit = true): void {
    if (this.capacityBytes === 0) return;
    const map = this.counts;
    let added = 0;
    let bytes = 0;
    for (let i = 0; i < items.length; i++) {
      const pair = items[i]!.pair;
      const cached = wasCached[at + i]!;
      if (cached === 0 || (cached === 2 && !map.has(pair))) {
        if (!admit) continue;
        added++;
        bytes += ENTRY_OVERHEAD + pair.length;
      }
      map.set(pair, pack(counts[at + i]!));
    }
    if (added > 0) {
      this.bytes += bytes;
      this.perKeyspace.set(ks, (this.perKeyspace.get(ks) ?? 0) + added);
    }
  }

  /** Evict the entries first written longest ago until the cache fits its capacity. */
  trim(): void {
    if (this.bytes <= this.capacityBytes) return;
    const oldest = this.counts.keys();
    while (this.bytes > this.capacityBytes) {
      const pair = oldest.next().value as string;
      this.counts.delete(pair);
      this.bytes -= ENTRY_OVERHEAD + pair.length;
      const ks = pairKeyspaceOf(pair);
      const left = (this.perKeyspace.get(ks) ?? 1) - 1;
      if (left === 0) this.perKeyspace.delete(ks);
      else this.perKeyspace.set(ks, left);
    }
  }

  clear(): void {
    this.counts.clear();
    this.perKeyspace.clear();
    this.bytes = 0;
  }

  get size(): number {
    return this.counts.size;
  }
}
