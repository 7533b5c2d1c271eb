// The benchmark's data set: key i (0 <= i < keys) lives in keyspace i % keyspaces,
// named `ks<i % keyspaces>` / `key<i>`. Every system under test receives the
// same key sequences: connection c draws from its own seeded generator, so the
// data each system holds differs only in how far along the sequences it got.

import { mulberry32 as makeRandom } from '../../test/harness/rng.js';

/** The seeded source of every key sequence (mulberry32). */
export { makeRandom };

export type KeyDistribution = 'uniform' | 'zipf';

export interface KeySetOptions {
  keys: number;
  keyspaces: number;
  distribution: KeyDistribution;
  /** Zipf exponent; 0.99 as in YCSB. */
  zipfExponent?: number;
  seed?: number;
}

export const SENTINEL_KEYSPACE = 'bench-sentinel';
export const SENTINEL_KEY = 'end';

export function keyspaceName(keyspaceIndex: number): string {
  return 'ks' + keyspaceIndex;
}

export function keyName(keyIndex: number): string {
  return 'key' + keyIndex;
}


// A prime coprime with 10^k: spreads Zipf ranks over key indexes (so the hot
// keys do not all sit in the first keyspaces) while staying a bijection.
const SCRAMBLE = 1_000_003;

/** The cumulative distribution of Zipf(s) over ranks 0..n-1. */
export function zipfCdf(n: number, s: number): Float64Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let r = 0; r < n; r++) {
    sum += 1 / Math.pow(r + 1, s);
    cdf[r] = sum;
  }
  for (let r = 0; r < n; r++) cdf[r]! /= sum;
  return cdf;
}

/** Draw a key index from `cdf` with `rand`: the Zipf rank, scrambled over the keys. */
export function zipfIndex(cdf: Float64Array, rand: () => number): number {
  const u = rand();
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  // lo * SCRAMBLE < 2^53 for any key count below 9e9: exact in a double.
  return (lo * SCRAMBLE) % cdf.length;
}

export class KeySet {
  readonly keys: number;
  readonly keyspaces: number;
  readonly distribution: KeyDistribution;
  readonly zipfExponent: number;
  readonly seed: number;
  #zipfCdf: Float64Array | undefined;
  /** One bit per key: was it ever drawn? (distinct keys written) */
  readonly #seen: Uint8Array;
  #distinct = 0;

  constructor(options: KeySetOptions) {
    this.keys = options.keys;
    this.keyspaces = options.keyspaces;
    this.distribution = options.distribution;
    this.zipfExponent = options.zipfExponent ?? 0.99;
    this.seed = options.seed ?? 42;
    this.#seen = new Uint8Array(Math.ceil(this.keys / 8));
    if (this.distribution === 'zipf') this.#zipfCdf = zipfCdf(this.keys, this.zipfExponent);
  }

  describe(): string {
    const dist = this.distribution === 'uniform' ? 'uniform random' : `Zipf (s = ${this.zipfExponent}, ranks scrambled over keys)`;
    return `${this.keys.toLocaleString('en-US')} keys, key i in keyspace i % ${this.keyspaces}, ${dist}`;
  }

  /** A key-index generator for one connection of one phase. */
  stream(connection: number, phase: number): () => number {
    const rand = makeRandom(this.seed * 7919 + phase * 104729 + connection * 1299709);
    const n = this.keys;
    const cdf = this.#zipfCdf;
    const seen = this.#seen;
    const record = (i: number): number => {
      const byte = i >>> 3;
      const bit = 1 << (i & 7);
      if ((seen[byte]! & bit) === 0) {
        seen[byte] = seen[byte]! | bit;
        this.#distinct++;
      }
      return i;
    };
    if (cdf === undefined) return () => record(Math.floor(rand() * n));
    return () => record(zipfIndex(cdf, rand));
  }

  /** A keyspace-index generator (uniform) for read phases. */
  keyspaceStream(connection: number, phase: number): () => number {
    const rand = makeRandom(this.seed * 31 + phase * 7 + connection * 65537 + 1);
    const n = this.keyspaces;
    return () => Math.floor(rand() * n);
  }

  /** Distinct keys drawn since the last reset. */
  get distinct(): number {
    return this.#distinct;
  }

  resetSeen(): void {
    this.#seen.fill(0);
    this.#distinct = 0;
  }
}

/**
 * The data set the read phase pages through, identical in every system: in
 * each of `keyspaces` keyspaces `rks<j>`, `perKeyspace` keys with fixed
 * pseudo-random counts from 1 to 1,000,000. Kept apart from the write phase's
 * keyspaces, whose content depends on how fast each system wrote.
 */
export class ReadDataSet {
  readonly keyspaces: number;
  readonly perKeyspace: number;
  readonly size: number;

  constructor(keyspaces: number, perKeyspace: number) {
    this.keyspaces = keyspaces;
    this.perKeyspace = perKeyspace;
    this.size = keyspaces * perKeyspace;
  }

  describe(): string {
    return `${this.keyspaces.toLocaleString('en-US')} keyspaces rks<j> × ${this.perKeyspace} keys, counts pseudo-random from 1 to 1,000,000`;
  }

  keyspace(i: number): string {
    return readKeyspaceName(i % this.keyspaces);
  }

  key(i: number): string {
    return keyName(i);
  }

  count(i: number): number {
    return 1 + Math.floor(makeRandom(i * 2654435761)() * 1_000_000);
  }

  /** Sum of every count: what the read set adds up to once applied. */
  total(): number {
    let sum = 0;
    for (let i = 0; i < this.size; i++) sum += this.count(i);
    return sum;
  }
}

export function readKeyspaceName(keyspaceIndex: number): string {
  return 'rks' + keyspaceIndex;
}
