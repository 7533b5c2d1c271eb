// How increments combine: the one rule, in one place. Today the rule is the
// saturating sum. While a batch is summed (IncrementBatch#add, and the
// summing thread's PairSums in lib/roles/work/pair-sums.ts) deltas of one
// pair add up exactly, without a bound, so the order in which frames arrive
// cannot change the outcome; the apply then adds that sum to the stored count
// and clamps the result to the signed 64-bit range (saturates) rather than
// wrapping around or failing the whole batch. Rules such as max, min or set
// would be added here, next to the sum. countd migrate follows the same
// rule when it builds a keyspace's final counts itself (lib/migrate/importer.ts).

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
