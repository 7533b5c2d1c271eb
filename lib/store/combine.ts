// How increments combine: the one rule, in one place. Today the rule is the
// saturating sum. While a batch is summed (IncrementBatch#add, and the
// summing thread's PairSums in lib/roles/work/pair-sums.ts) deltas of one
// pair add up exactly, without a bound, so the order in which frames arrive
// cannot change the outcome; the apply then adds that sum to the stored count
// and clamps the result to the signed 64-bit range (saturates) rather than
// wrapping around or failing the whole batch. Rules such as max, min or set
// would be added here, next to the sum. countd migrate follows the same
// rule when it builds a keyspace's final counts itself (lib/migrate/importer.ts).
//
// Sets and deletes (the extended write protocol) are ordered with the
// increments of a batch. A pair's summed state is then a MODE and a delta:
//   add     the delta is added to the stored count (no set or delete yet);
//   reset   the stored count is replaced: a set to v, then increments, is
//           reset with delta v + increments (a delete followed by increments
//           is reset from 0);
//   deleted the key is removed (a delete, or a keyspace delete, with no
//           increment or set after it).
// So a batch stays one summed value per pair, whatever order its frames came in.

import { INT64_MAX, INT64_MIN } from '../protocol/fields.js';

/** Two deltas of one pair, combined while a batch is summed: exact, unbounded. */
export function addDeltas(a: bigint, b: bigint): bigint {
  return a + b;
}

/**
 * A stored count after an apply: the exact sum of the old count (0n for a
 * key that does not exist yet) and the batch's summed delta, clamped to the
 * signed 64-bit range. A result that differs from its argument saturated.
 */
export function saturate(sum: bigint): bigint {
  return sum > INT64_MAX ? INT64_MAX : sum < INT64_MIN ? INT64_MIN : sum;
}

/** Whether a summed delta fits a signed 64-bit field (else it travels as a decimal: SummedBatch). */
export function fitsInt64(value: bigint): boolean {
  return value >= INT64_MIN && value <= INT64_MAX;
}

/** A pair's mode in a summed batch (see the top of this file). */
export const PairMode = { add: 0, reset: 1, deleted: 2 } as const;
export type PairModeValue = (typeof PairMode)[keyof typeof PairMode];

/** The mode after a non-zero increment: a deleted key comes back, counting from 0. */
export function modeAfterIncrement(mode: number): PairModeValue {
  return (mode === PairMode.deleted ? PairMode.reset : mode) as PairModeValue;
}

/**
 * The stored count after an apply of a pair in `mode` with summed `delta`,
 * `old` being its count before (undefined: absent); undefined: the key is
 * gone (or stays absent).
 */
export function countAfter(mode: number, old: bigint | undefined, delta: bigint): bigint | undefined {
  if (mode === PairMode.deleted) return undefined;
  if (mode === PairMode.reset) return saturate(delta);
  return saturate(addDeltas(old ?? 0n, delta));
}
