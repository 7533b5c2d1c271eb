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

/**
 * The batch (apply) at which each key of a stored name reached its count,
 * batch by batch: a key's order changes when a batch leaves it with another
 * count than before it, or it is new, or its name was dropped (deleted or
 * re-created) in the batch. Used by the models of --ties first keyspaces
 * (here) and of their periods (windows.test.ts).
 */
export class TieOrders {
  private readonly orders = new Map<string, Map<string, number>>();
  private batch = 0;
  private before = new Map<string, Map<string, bigint>>();
  private dropped = new Set<string>();

  /** A batch starts on `spaces` (name -> key -> count). */
  begin(spaces: Map<string, Map<string, bigint>>): void {
    this.before = new Map([...spaces].map(([name, space]) => [name, new Map(space)]));
    this.dropped = new Set();
  }

  /** The names the batch began with. */
  namesBefore(): IterableIterator<string> {
    return this.before.keys();
  }

  /** The batch deleted or re-created `name`: a key written to it again is new. */
  drop(name: string): void {
    this.dropped.add(name);
  }

  /** A batch ends: the orders of the names of `spaces` that rank ties first. */
  end(spaces: Map<string, Map<string, bigint>>, tiesFirst: (name: string) => boolean): void {
    this.batch++;
    const next = new Map<string, Map<string, number>>();
    for (const [name, space] of spaces) {
      if (!tiesFirst(name)) continue;
      const was = this.dropped.has(name) ? undefined : this.before.get(name);
      const orders = new Map<string, number>();
      for (const [key, count] of space) orders.set(key, was?.get(key) === count ? (this.orders.get(name)?.get(key) ?? this.batch) : this.batch);
      next.set(name, orders);
    }
    this.orders.clear();
    for (const [name, orders] of next) this.orders.set(name, orders);
  }

  /** The entries of `space` in rank order: count descending, then (ties first) order ascending, then key bytes. */
  ranked(name: string, space: Map<string, bigint> | undefined, tiesFirst: boolean): ModelEntry[] {
    const orders = tiesFirst ? this.orders.get(name) : undefined;
    const list = [...(space ?? [])].map(([k, count]) => ({ key: Buffer.from(k, 'latin1'), count, order: orders?.get(k) ?? 0 }));
    list.sort((a, b) => (a.count !== b.count ? (a.count > b.count ? -1 : 1) : a.order !== b.order ? a.order - b.order : Buffer.compare(a.key, b.key)));
    return list.map(({ key, count }) => ({ key, count }));
  }
}

export class OrderedModel {
  readonly spaces = new Map<string, Map<string, bigint>>();
  readonly operators = new Map<string, number>();
  /** Keyspaces declared `--ties first`. */
  readonly tiesFirst = new Set<string>();
  private readonly orders = new TieOrders();

  begin(): void {
    this.orders.begin(this.spaces);
  }

  end(): void {
    this.orders.end(this.spaces, (ks) => this.tiesFirst.has(ks));
  }

  apply(op: Op): void {
    const ks = op.ks.toString('latin1');
    if (op.kind === 'deleteKeyspace' || op.kind === 'create') {
      this.spaces.delete(ks);
      this.orders.drop(ks);
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
    return this.orders.ranked(name, this.spaces.get(name), this.tiesFirst.has(name));
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
