// A small seeded PRNG (mulberry32) so that every random scenario of the crash
// and hostile tests can be replayed from its seed (printed on failure).

export interface Rng {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [min, max] (both included). */
  int(min: number, max: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  bytes(n: number): Buffer;
}

/**
 * mulberry32: uniform in [0, 1) from a 32-bit seed. Small, fast, good enough
 * for test data; the one seeded source of every test and benchmark.
 */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function rng(seed: number): Rng {
  const next = mulberry32(seed);
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  return {
    seed,
    next,
    int,
    chance: (p) => next() < p,
    pick: (items) => items[int(0, items.length - 1)]!,
    bytes: (n) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = int(0, 255);
      return b;
    },
  };
}

/** A seed from COUNTD_SEED if set (to replay a failure), else a fresh one. */
export function seedFromEnv(): number {
  const env = process.env.COUNTD_SEED;
  if (env !== undefined && /^\d+$/.test(env)) return Number(env) >>> 0;
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}
