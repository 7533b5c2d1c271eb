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
 * The count after applying a batch's summed delta to the stored count (0n
 * for a key that does not exist yet). It equals addDeltas(old, delta) unless
 * that left the int64 range: then the nearest bound (see isSaturated).
 */
export function applyDelta(old: bigint, delta: bigint): bigint {
  return saturate(addDeltas(old, delta));
}

/** An exact sum clamped to the signed 64-bit range: a stored count. */
export function saturate(sum: bigint): bigint {
  return sum > INT64_MAX ? INT64_MAX : sum < INT64_MIN ? INT64_MIN : sum;
}

/** Whether applyDelta(old, delta) was clamped. */
export function isSaturated(old: bigint, delta: bigint, applied: bigint): boolean {
  return applied !== old + delta;
}

/** Whether a summed delta fits a signed 64-bit field (else it travels as a decimal: SummedBatch). */
export function fitsInt64(value: bigint): boolean {
  return value >= INT64_MIN && value <= INT64_MAX;
}
