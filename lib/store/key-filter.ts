// Which keys an apply may skip reading: a Bloom filter of the keys written
// to the keyspaces this store created, in memory of a fixed size.
//
// On distinct keys (a leaderboard filling up) every pair of an apply is
// new, and each costs a negative lookup in LevelDB (memtables, then a
// filter and index check per overlapping table of every level): ~40% of an
// apply's time (BENCHMARKS.md, "The engine keeps up (issue 14, 0.7.0)").
// A keyspace created by an apply of this store ("covered") has had every
// key it holds written by an apply that went through add(), so a key the
// filter has never seen is certainly absent and is not read.
//
// Exact, because it only ever answers "absent" for a key never added:
// - add() is called when an apply prepares (before it commits), so the
//   next apply, prepared on top of it, sees its keys; a failed apply leaves
//   extra bits, which cost reads, never a wrong count;
// - a keyspace is covered once the apply creating it has committed
//   (cover(), from the swap), so an id of an apply that failed is never
//   covered; ids are never reused, and a keyspace created otherwise (bulk
//   create) is never covered;
// - nothing is removed: a deleted key stays a "maybe" (read, absent).
// Keyspaces that existed when the store opened are not covered: their
// pairs are read as before.
//
// The size is fixed (StoreOptions keyFilterBytes, from --memory): memory
// does not grow with the keys. As keys are added the false positives rise;
// past SATURATED keys per bit the filter stops answering (covers() false)
// rather than hash for little gain, until the store reopens.

/** Bits set per key. 3 keeps most of the gain at ~2 bits a key (a filter 5x over its design size): ~37% of reads left. */
const PROBES = 3;
/** Largest filter: bit positions stay below 2^31. */
export const MAX_KEY_FILTER_BYTES = 256 * 1024 * 1024;
/** Keys per bit past which the filter no longer answers: at 2 bits a key, ~40% of absent keys would still be read. */
const SATURATED = 0.5;

export class KeyFilter {
  readonly #bits: Uint32Array;
  /** Bit positions: a 32-bit hash scaled to [0, bits) (a multiply, not a modulo). */
  readonly #scale: number;
  /** Keyspaces created by an apply, committed or not: their new keys are added. */
  readonly #tracked = new Set<number>();
  /** Of those, the ones whose creating apply committed: absent keys are known. */
  readonly #covered = new Set<number>();
  #added = 0;
  readonly #limit: number;

  /** A filter of `bytes` bytes (rounded down to 4, at most MAX_KEY_FILTER_BYTES), or none if `bytes` is under 64. */
  constructor(bytes: number) {
    const words = bytes >= 64 ? Math.floor(Math.min(bytes, MAX_KEY_FILTER_BYTES) / 4) : 0;
    this.#bits = new Uint32Array(words);
    this.#scale = (words * 32) / 2 ** 32;
    this.#limit = Math.floor(words * 32 * SATURATED);
  }

  get enabled(): boolean {
    return this.#bits.length > 0;
  }

  get bytes(): number {
    return this.#bits.byteLength;
  }

  /** Whether every key of keyspace `id` went through add(), and the filter still answers. */
  covers(id: number): boolean {
    return this.#added <= this.#limit && this.#covered.has(id);
  }

  /** Whether new keys of keyspace `id` are to be added: an apply created it (committed or not). */
  tracks(id: number): boolean {
    return this.#tracked.has(id);
  }

  /** An apply being prepared creates keyspace `id` (a fresh id): from now on its new keys are added. */
  track(id: number): void {
    if (this.enabled) this.#tracked.add(id);
  }

  /** The apply that created keyspace `id` has committed: every key it holds went through add(). */
  cover(id: number): void {
    if (this.#tracked.has(id)) this.#covered.add(id);
  }

  /** Keyspace `id`'s records are gone (deleted), or were written some other way: forget it. */
  uncover(id: number): void {
    this.#tracked.delete(id);
    this.#covered.delete(id);
  }

  /** Key bytes[start, start + length) of keyspace `id` is written (or about to be). */
  add(id: number, bytes: Uint8Array, start: number, length: number): void {
    if (!this.enabled) return;
    this.#added++;
    this.#probe(id, bytes, start, length, true);
  }

  /** false: the key was never added (certainly absent from a covered keyspace); true: maybe. */
  mayContain(id: number, bytes: Uint8Array, start: number, length: number): boolean {
    return this.#probe(id, bytes, start, length, false);
  }

  /** Forget everything (the store reopened: its state is loaded again). */
  clear(): void {
    this.#bits.fill(0);
    this.#tracked.clear();
    this.#covered.clear();
    this.#added = 0;
  }

  /** Two 32-bit hashes of (id, key) combined as h1 + i·h2 (Kirsch-Mitzenmacher); sets or tests PROBES bits. */
  #probe(id: number, bytes: Uint8Array, start: number, length: number, set: boolean): boolean {
    // FNV-1a and a multiply-xor hash over the id's two halves, then the key.
    let h1 = 0x811c9dc5 ^ (id >>> 0);
    let h2 = 0x9747b28c ^ Math.floor(id / 0x100000000);
    h1 = Math.imul(h1, 0x01000193);
    h2 = Math.imul(h2 ^ (h2 >>> 15), 0x2c1b3c6d);
    const end = start + length;
    for (let i = start; i < end; i++) {
      const b = bytes[i]!;
      h1 = Math.imul(h1 ^ b, 0x01000193);
      h2 = Math.imul(h2 ^ b, 0x5bd1e995);
      h2 ^= h2 >>> 13;
    }
    h1 = fmix(h1 ^ length);
    h2 = fmix(h2 ^ length) | 1;
    const bits = this.#bits;
    const scale = this.#scale;
    let found = true;
    for (let i = 0; i < PROBES; i++) {
      const bit = (((h1 + Math.imul(i, h2)) >>> 0) * scale) | 0;
      const word = bit >>> 5;
      const m = 1 << (bit & 31);
      if (set) bits[word] = bits[word]! | m;
      else if ((bits[word]! & m) === 0) {
        found = false;
        break;
      }
    }
    return found;
  }
}

/** MurmurHash3's finalizer: every input bit affects every output bit. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
