// How increments combine: the one rule, in one place. Today the rule is the
// saturating sum. While a batch is summed (IncrementBatch#add, and the
// summing thread's PairSums in lib/roles/work/pair-sums.ts) deltas of one
// pair add up exactly, without a bound, so the order in which frames arrive
// cannot change the outcome; the apply then adds that sum to the stored count
// and clamps the result to the signed 64-bit range (saturates) rather than
// wrapping around or failing the whole batch. A keyspace created with another
// operator (max, min, set: combineValues below) combines its values by that
// operator instead, in the batch and with the stored count alike. countd
// migrate follows the sum rule when it builds a keyspace's final counts
// itself (lib/migrate/importer.ts).
//
// Sets and deletes (the extended write protocol) are ordered with the
// increments of a batch. A pair's summed state is then a MODE and a delta:
//   add     the delta is combined with the stored count (no set or delete yet);
//   reset   the stored count is replaced: a set to v, then writes w1, w2, is
//           reset with delta combine(combine(v, w1), w2) (a delete followed
//           by writes starts from the first write);
//   deleted the key is removed (a delete, or a keyspace delete, with no
//           increment or set after it).
// So a batch stays one summed value per pair, whatever order its frames came in.

import { INT64_MAX, INT64_MIN } from '../protocol/fields.js';
import { Operator } from '../protocol/write-ops.js';

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
 * A keyspace's operator, chosen when it is created (`countd create --op`):
 * how the values written to a key combine. Undeclared keyspaces sum.
 *   sum  an increment adds (saturating): today's behaviour;
 *   max  a write is a candidate: the count becomes the larger (a best score);
 *   min  the count becomes the smaller;
 *   set  the last write wins.
 * The codes (lib/protocol/write-ops.ts) are those of the commit log's create
 * entry and of the store's settings record (docs/storage-format.md).
 */
export { Operator, OPERATOR_NAMES, type OperatorName } from '../protocol/write-ops.js';

/** Two values written to one pair of a keyspace with `operator`, in this order, combined while a batch is summed. */
export function combineValues(operator: number, a: bigint, b: bigint): bigint {
  if (operator === Operator.max) return a > b ? a : b;
  if (operator === Operator.min) return a < b ? a : b;
  if (operator === Operator.set) return b;
  return addDeltas(a, b);
}
