// The plain in-order model of the lifecycle tests: operations applied one at
// a time, each keyspace by its operator; `--ties first` keyspaces rank equal
// counts by the apply (batch) at which each key reached its count, then by
// key bytes. Batches are marked with begin()/end(): a key's order is the
// batch after which its count differs from the one before it (or it is new,
// or its keyspace was deleted or created in the batch), as the store's
// apply order (docs/storage-format.md, "Ties first").

import { Operator } from '../../lib/store/combine.js';
import type { ModelEntry } from './helpers.js';

export type Op =
  | { kind: 'write'; ks: Buffer; key: Buffer; value: bigint }
  | { kind: 'set'; ks: Buffer; key: Buffer; value: bigint }
  | { kind: 'deleteKey'; ks: Buffer; key: Buffer }
  | { kind: 'deleteKeyspace'; ks: Buffer }
  | { kind: 'create'; ks: Buffer; operator: number; ties?: number };

export class OrderedModel {
  readonly spaces = new Map<string, Map<string, bigint>>();
  readonly operators = new Map<string, number>();
  /** Keyspaces declared `--ties first`. */
  readonly tiesFirst = new Set<string>();
  /** Per ties-first keyspace: key -> the batch at which it reached its count. */
  readonly orders = new Map<string, Map<string, number>>();
  private batch = 0;
  private before = new Map<string, Map<string, bigint>>();
  private dropped = new Set<string>();

  begin(): void {
    this.before = new Map([...this.spaces].map(([ks, space]) => [ks, new Map(space)]));
    this.dropped = new Set();
  }

  end(): void {
    this.batch++;
    for (const ks of this.tiesFirst) {
      const space = this.spaces.get(ks);
      const was = this.dropped.has(ks) ? undefined : this.before.get(ks);
      const orders = new Map<string, number>();
      for (const [key, count] of space ?? []) {
        const old = was?.get(key);
        orders.set(key, old === count ? (this.orders.get(ks)?.get(key) ?? this.batch) : this.batch);
      }
      this.orders.set(ks, orders);
    }
    for (const ks of [...this.orders.keys()]) if (!this.tiesFirst.has(ks)) this.orders.delete(ks);
  }

  apply(op: Op): void {
    const ks = op.ks.toString('latin1');
    if (op.kind === 'deleteKeyspace' || op.kind === 'create') {
      this.spaces.delete(ks);
      this.dropped.add(ks);
      this.tiesFirst.delete(ks);
      if (op.kind === 'create') {
        this.operators.set(ks, op.operator);
        if (op.ties === 1) this.tiesFirst.add(ks);
      } else this.operators.delete(ks);
      return;
    }
    const key = op.key.toString('latin1');
    let space = this.spaces.get(ks);
    if (op.kind === 'deleteKey') {
      space?.delete(key);
      if (space?.size === 0) this.spaces.delete(ks);
      return;
    }
    if (op.kind === 'write' && op.value === 0n) return;
    if (space === undefined) this.spaces.set(ks, (space = new Map()));
    const old = space.get(key);
    const operator = this.operators.get(ks) ?? Operator.sum;
    let next = op.value;
    if (op.kind === 'write' && old !== undefined) {
      if (operator === Operator.sum) next = old + op.value;
      else if (operator === Operator.max) next = old > op.value ? old : op.value;
      else if (operator === Operator.min) next = old < op.value ? old : op.value;
    }
    space.set(key, next);
  }

  ranked(ks: Buffer): ModelEntry[] {
    const name = ks.toString('latin1');
    const orders = this.tiesFirst.has(name) ? this.orders.get(name) : undefined;
    const list = [...(this.spaces.get(name) ?? [])].map(([k, count]) => ({ key: Buffer.from(k, 'latin1'), count, order: orders?.get(k) ?? 0 }));
    list.sort((a, b) => (a.count !== b.count ? (a.count > b.count ? -1 : 1) : a.order !== b.order ? a.order - b.order : Buffer.compare(a.key, b.key)));
    return list.map(({ key, count }) => ({ key, count }));
  }
}

/** Dense rank (0-based) of entry r of a ranked list: the number of distinct counts above its count. */
export function denseRankOf(ranked: ModelEntry[], r: number): number {
  return new Set(ranked.filter((e) => e.count > ranked[r]!.count).map((e) => e.count)).size;
}

/** Keys with a count of at least `min`. */
export function countAtLeast(ranked: ModelEntry[], min: bigint): number {
  return ranked.filter((e) => e.count >= min).length;
}
