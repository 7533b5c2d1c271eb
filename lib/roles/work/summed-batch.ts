// The summing thread's result as it crosses to the store's thread: plain
// transferable arrays, so a batch of half a million pairs moves without a
// structured clone of one object per pair. PairSums (pair-sums.ts) produces
// it; log-summer.ts turns it into the IncrementBatch Store.apply takes.

import { PAIR_LENGTHS_SIZE, pairKeyLength, pairKeyspaceLength } from '../../protocol/pair-key.js';
import { fitsInt64 } from '../../store/combine.js';
import { IncrementBatch, type PendingIncrement, type PendingKeyspace } from '../../store/increment-batch.js';

/** Node's Buffer#latin1Slice: toString('latin1') without its argument handling. */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

/**
 * Pairs summed per (keyspace, key), listed group by group, in the batch's
 * order.
 */
export interface SummedBatch {
  /** Keyspace names (latin1, see PendingKeyspace#id), and how many pairs each has, in order. */
  /** `declare`: a create (its operator) or delete (0) of the keyspace in the batch changes its settings. */
  groups: Array<{ id: string; pairs: number; dropped: boolean; declare?: number; ties?: number }>;
  /** Every pair key (lib/protocol/pair-key.ts) back to back. */
  pairBytes: Uint8Array;
  /** The key bytes of the batch, and where each pair's key starts in them. */
  keyBytes: Uint8Array;
  keyStarts: Uint32Array;
  /** Each pair's summed delta; for a sum outside int64, 0 here and [pair, decimal] in `big`. */
  deltas: BigInt64Array;
  /** Each pair's PairMode (lib/store/combine.ts). */
  modes: Uint8Array;
  big: Array<[number, string]>;
}

/** Put pair i's summed delta into a SummedBatch's arrays: in `deltas` if it fits int64, else as a decimal in `big`. */
export function putSummedDelta(deltas: BigInt64Array, big: Array<[number, string]>, i: number, sum: bigint): void {
  if (fitsInt64(sum)) deltas[i] = sum;
  else big.push([i, sum.toString()]);
}

/** The IncrementBatch a SummedBatch describes (complete: its add() throws). */
export function batchFromSummed(summed: SummedBatch): IncrementBatch {
  const pairBytes = Buffer.from(summed.pairBytes.buffer, summed.pairBytes.byteOffset, summed.pairBytes.byteLength) as Latin1Buffer;
  const big = new Map(summed.big);
  const keyspaces: PendingKeyspace[] = [];
  let i = 0;
  let at = 0;
  for (const g of summed.groups) {
    const id = g.id;
    const name = Buffer.from(id, 'latin1');
    const items: PendingIncrement[] = new Array(g.pairs);
    for (let j = 0; j < g.pairs; j++) {
      const keyLength = pairKeyLength(pairBytes, at);
      const end = at + PAIR_LENGTHS_SIZE + pairKeyspaceLength(pairBytes, at) + keyLength;
      const bigDelta = big.get(i);
      items[j] = { pair: pairBytes.latin1Slice(at, end), keyStart: summed.keyStarts[i]!, keyLength, delta: bigDelta === undefined ? summed.deltas[i]! : BigInt(bigDelta), mode: summed.modes[i]! };
      at = end;
      i++;
    }
    keyspaces.push({ id, name, items, dropped: g.dropped, declare: g.declare, ties: g.ties });
  }
  return IncrementBatch.assembled(keyspaces, Buffer.from(summed.keyBytes.buffer, summed.keyBytes.byteOffset, summed.keyBytes.byteLength));
}
