// The plain per-period model of the windowed-keyspace tests (windows.test.ts,
// windows-crash.test.ts): seeded random batches of increments, sets, deletes,
// keyspace deletes and creates (every operator, windows of seconds to months,
// `--ties first`) at the times of a test clock, the model that applies them
// one map per period, the batches as the Store takes them (IncrementBatch, or
// the worker's PairSums from commit-log OPS payloads), and the comparison of
// every kept period read through the Store's API with the model's.

import assert from 'node:assert/strict';
import { OP_CREATE_KEYSPACE, OP_DELETE_KEY, OP_DELETE_KEYSPACE, OP_INCREMENT, OP_SET, writeOpEntry } from '../../lib/commitlog/format.js';
import { isCountdError } from '../../lib/errors.js';
import { NO_WINDOW, settingsTail, type WindowSettings } from '../../lib/protocol/window-settings.js';
import { PairSums } from '../../lib/roles/work/pair-sums.js';
import { batchFromSummed } from '../../lib/roles/work/summed-batch.js';
import { Operator } from '../../lib/store/combine.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { oldestKept, periodAgo, periodStart } from '../../lib/store/windows.js';
import { modelKeyOp, type ModelEntry } from './helpers.js';
import { TieOrders } from './ordered-model.js';

export const sizes = { keyspaceSize: 8, keySize: 16 };
export const KEYSPACES = ['a', 'b', 'c'].map((s) => Buffer.from(s, 'latin1'));
export const T0 = Date.UTC(2026, 11, 7, 23, 59, 50); // ten seconds before midnight, a Monday's eve
export const WINDOWS: WindowSettings[] = [
  { unit: 1, keep: 1, seconds: 10 },
  { unit: 1, keep: 3, seconds: 10 },
  { unit: 2, keep: 2, seconds: 0 },
  { unit: 4, keep: 2, seconds: 0 },
  { unit: 5, keep: 3, seconds: 0 },
];

export type Op =
  | { kind: 'write'; ks: Buffer; key: Buffer; value: bigint; at: number }
  | { kind: 'set'; ks: Buffer; key: Buffer; value: bigint; at: number }
  | { kind: 'deleteKey'; ks: Buffer; key: Buffer; at: number }
  | { kind: 'deleteKeyspace'; ks: Buffer; at: number }
  | { kind: 'create'; ks: Buffer; operator: number; window: WindowSettings | undefined; ties: number; at: number };

/** The plain model: one map per stored keyspace (a windowed keyspace's periods by `name@start`), ops applied one at a time. */
export class PeriodModel {
  readonly spaces = new Map<string, Map<string, bigint>>();
  readonly operators = new Map<string, number>();
  readonly windows = new Map<string, WindowSettings>();
  /** Keyspaces declared `--ties first` (their periods rank ties by it). */
  readonly tiesFirst = new Set<string>();
  private readonly orders = new TieOrders();

  /** A batch (one Store#apply) starts. */
  begin(): void {
    this.orders.begin(this.spaces);
  }

  /** A batch ends: a key of a ties-first keyspace's name whose count changed (or that is new) reached it now. */
  end(): void {
    this.orders.end(this.spaces, (name) => this.tiesFirst.has(keyspaceOf(name)));
  }

  target(ks: string, at: number): string {
    const w = this.windows.get(ks);
    return w === undefined ? ks : `${ks}@${periodStart(w, at)}`;
  }

  apply(op: Op): void {
    const ks = op.ks.toString('latin1');
    if (op.kind === 'deleteKeyspace' || op.kind === 'create') {
      // Every name of it goes, also one emptied earlier in the batch: a name written again is a new keyspace.
      for (const name of new Set([...this.spaces.keys(), ...this.orders.namesBefore()])) {
        if (name !== ks && !name.startsWith(`${ks}@`)) continue;
        this.spaces.delete(name);
        this.orders.drop(name);
      }
      this.operators.delete(ks);
      this.windows.delete(ks);
      this.tiesFirst.delete(ks);
      if (op.kind === 'create') {
        this.operators.set(ks, op.operator);
        if (op.window !== undefined) this.windows.set(ks, op.window);
        if (op.ties === 1) this.tiesFirst.add(ks);
      }
      return;
    }
    const name = this.target(ks, op.at);
    const space = this.spaces.get(name) ?? new Map<string, bigint>();
    modelKeyOp(space, op.key.toString('latin1'), op.kind, op.kind === 'deleteKey' ? 0n : op.value, this.operators.get(ks) ?? Operator.sum);
    if (space.size === 0) this.spaces.delete(name);
    else this.spaces.set(name, space);
  }

  expire(now: number): void {
    for (const name of [...this.spaces.keys()]) {
      const at = name.lastIndexOf('@');
      if (at < 0) continue;
      const w = this.windows.get(name.slice(0, at));
      if (w === undefined || Number(name.slice(at + 1)) < oldestKept(w, now)) this.spaces.delete(name);
    }
  }

  ranked(name: string): ModelEntry[] {
    return this.orders.ranked(name, this.spaces.get(name), this.tiesFirst.has(keyspaceOf(name)));
  }

  periods(ks: string): Array<{ start: number; size: number }> {
    const out: Array<{ start: number; size: number }> = [];
    for (const [name, space] of this.spaces) if (name.startsWith(`${ks}@`)) out.push({ start: Number(name.slice(ks.length + 1)), size: space.size });
    return out.sort((a, b) => a.start - b.start);
  }
}

/** The keyspace a model name (`ks` or `ks@start`) belongs to. */
function keyspaceOf(name: string): string {
  const at = name.lastIndexOf('@');
  return at < 0 ? name : name.slice(0, at);
}

export const STEPS = [0, 1000, 4000, 7000, 3_600_000, 86_400_000, 9 * 86_400_000, 40 * 86_400_000];

/** A batch of ops at times from `now` on (a batch spans several records, each with its writtenAt); now and then one made long ago (a log applied late). */
export function randomOps(rand: () => number, keys: Buffer[], now: number): Op[] {
  const ops: Op[] = [];
  const n = 1 + Math.floor(rand() * 30);
  let at = now;
  for (let i = 0; i < n; i++) {
    if (rand() < 0.1) at += Math.floor(rand() * 12_000);
    const when = rand() < 0.03 ? at - 100 * 86_400_000 : at;
    const ks = KEYSPACES[Math.floor(rand() * KEYSPACES.length)]!;
    const key = keys[Math.floor(rand() * keys.length)]!;
    const r = rand();
    const value = BigInt(Math.floor(rand() * 2000) - 500);
    if (r < 0.62) ops.push({ kind: 'write', ks, key, value: rand() < 0.5 ? value : BigInt(Math.floor(rand() * 7) - 3), at: when });
    else if (r < 0.74) ops.push({ kind: 'set', ks, key, value, at: when });
    else if (r < 0.92) ops.push({ kind: 'deleteKey', ks, key, at: when });
    else if (r < 0.985) {
      const window = rand() < 0.25 ? undefined : WINDOWS[Math.floor(rand() * WINDOWS.length)];
      ops.push({ kind: 'create', ks, operator: 1 + Math.floor(rand() * 4), window, ties: rand() < 0.4 ? 1 : 0, at: when });
    } else ops.push({ kind: 'deleteKeyspace', ks, at: when });
  }
  return ops;
}

/** The ops as an IncrementBatch: each added at its writtenAt. */
export function incrementBatch(store: Store, ops: Op[]): IncrementBatch {
  const batch = new IncrementBatch(store.operators(), store.windows());
  for (const op of ops) {
    batch.writtenAt = op.at;
    if (op.kind === 'write') batch.add(op.ks, op.key, op.value);
    else if (op.kind === 'set') batch.set(op.ks, op.key, op.value);
    else if (op.kind === 'deleteKey') batch.deleteKey(op.ks, op.key);
    else if (op.kind === 'deleteKeyspace') batch.deleteKeyspace(op.ks);
    else batch.createKeyspace(op.ks, op.operator, op.ties, op.window);
  }
  return batch;
}

/** The ops as commit-log OPS records, one per run of ops with the same writtenAt, summed by the worker's PairSums. */
export function summedBatch(store: Store, ops: Op[]): IncrementBatch {
  const codes = { write: OP_INCREMENT, set: OP_SET, deleteKey: OP_DELETE_KEY, deleteKeyspace: OP_DELETE_KEYSPACE, create: OP_CREATE_KEYSPACE };
  const table = new PairSums(store.operators(), store.windows());
  let i = 0;
  while (i < ops.length) {
    const at = ops[i]!.at;
    const payload = Buffer.alloc(ops.length * 64);
    let p = 0;
    for (; i < ops.length && ops[i]!.at === at; i++) {
      const op = ops[i]!;
      if (op.kind === 'write' && op.value === 0n) continue; // the writer logs no increment of 0
      const value = op.kind === 'write' || op.kind === 'set' ? op.value : op.kind === 'create' ? BigInt(op.operator) : 0n;
      let key = op.kind === 'deleteKeyspace' ? Buffer.alloc(0) : op.kind === 'create' ? Buffer.alloc(0) : op.key;
      if (op.kind === 'create' && (op.window !== undefined || op.ties !== 0)) key = trimmed(settingsTail(op.window ?? NO_WINDOW, op.ties));
      const names = Buffer.concat([op.ks, key]);
      p = writeOpEntry(payload, p, codes[op.kind], value, names, 0, op.ks.length, op.ks.length, key.length);
    }
    if (p > 0) table.addOps(payload.subarray(0, p), at);
  }
  return batchFromSummed(table.toSummed());
}

/** A create's key field as the write server logs it: trailing NULs cut off. */
function trimmed(tail: Buffer): Buffer {
  let n = tail.length;
  while (n > 0 && tail[n - 1] === 0) n--;
  return tail.subarray(0, n);
}

export async function compare(store: Store, model: PeriodModel, now: number): Promise<void> {
  for (const ks of KEYSPACES) {
    const id = ks.toString('latin1');
    const w = model.windows.get(id);
    assert.deepEqual(store.windows().get(id), w, `window of ${id}`);
    assert.deepEqual(await store.periods(ks), model.periods(id), `stored periods of ${id}`);
    const kept = w === undefined ? 1 : w.keep;
    for (let ago = 0; ago < kept; ago++) {
      const name = w === undefined ? id : `${id}@${periodAgo(w, now, ago)}`;
      const ranked = model.ranked(name);
      const got: ModelEntry[] = [];
      for await (const e of store.iterate(ks, { ago, now })) got.push(e);
      assert.deepEqual(got, ranked, `${name} (--ago ${ago})`);
      assert.equal(await store.size(ks, { ago, now }), ranked.length);
      for (let r = 0; r < ranked.length; r += 5) assert.equal(await store.rank(ks, ranked[r]!.key, { ago, now }), r);
      assert.equal(await store.checkRankIndex(ks, { ago, now }), true, `rank index of ${name}`);
    }
    await assert.rejects(store.page(ks, 0, 10, { ago: kept, now }), (err) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
  }
  const listed = KEYSPACES.map((ks) => ks.toString('latin1'))
    .map((id) => [id, model.spaces.get(model.target(id, now))?.size ?? 0] as const)
    .filter(([, size]) => size > 0);
  assert.deepEqual((await store.keyspaces({ now })).map((k) => [k.name.toString('latin1'), k.size]), listed);
}


/** One step of a planned run: a batch (one Store#apply), the test clock after it, and whether expiry runs then. */
export interface PlannedStep {
  ops: Op[];
  now: number;
  expire: boolean;
}

/**
 * The steps windows.test.ts runs, as a plan a process can resume at any
 * step (windows-crash.test.ts): a windowed `max` keyspace that ranks ties
 * first, then `rounds` seeded batches with expiry at the test clock now and
 * then. The same seeded `rand` gives the same plan in every process.
 */
export function planSteps(rounds: number, rand: () => number): PlannedStep[] {
  const keys = Array.from({ length: 40 }, (_, i) => Buffer.from(`k${i}`));
  let now = T0; // ten seconds before a day, a week and a month end
  const steps: PlannedStep[] = [{ ops: [{ kind: 'create', ks: KEYSPACES[0]!, operator: Operator.max, window: WINDOWS[1], ties: 1, at: now }], now, expire: false }];
  for (let round = 0; round < rounds; round++) {
    now += STEPS[Math.floor(rand() * STEPS.length)]!;
    const ops = randomOps(rand, keys, now);
    now = Math.max(now, ...ops.map((o) => o.at));
    steps.push({ ops, now, expire: rand() < 0.5 });
  }
  return steps;
}

/** The model after the first `n` steps of a plan. */
export function modelAfter(steps: PlannedStep[], n: number): PeriodModel {
  const model = new PeriodModel();
  for (const step of steps.slice(0, n)) {
    model.begin();
    for (const op of step.ops) model.apply(op);
    model.end();
    if (step.expire) model.expire(step.now);
  }
  return model;
}

/** Batches in a run of windows-crash.test.ts (after the first step's create). */
export const CRASH_ROUNDS = 120;
/** The mark a crash-test step writes with its apply: the step's index, u32 BE. */
export const STEP_MARK = 'test/step';
