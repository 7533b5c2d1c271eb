// A ledger for sets, deletes and increments on the same keys (the extended
// write protocol), checkable after crashes. A writer runs sessions, each one
// client connection (the Client library, ops pipelined); in every session the
// first op on a key is a set to a value no other op writes, so whatever an
// earlier session left undecided is overwritten. A connection applies its
// ops on one key in order, and a session's unanswered ops may or may not be
// applied, but only as a prefix (docs/cluster.md, "Sets, deletes and
// creates"). So the key's count must be its value after a prefix of one
// session's ops: the last session with an acknowledged op on the key, taken
// at least up to that op, or a later session, taken at least to its set.
// Anything else is an acknowledged op lost, or an op applied twice or out of
// order.

import { Client } from '../../lib/client/client.js';
import type { FieldSizes } from '../../lib/protocol/fields.js';
import type { Rng } from './rng.js';

type Op = { kind: 'set'; value: bigint } | { kind: 'increment'; by: bigint } | { kind: 'delete' };

interface Sent {
  op: Op;
  acked: boolean;
}

interface KeyHistory {
  /** Ops on the key, per session that wrote it, in the order sent. */
  sessions: Sent[][];
}

export interface OpsWriterOptions {
  rng: Rng;
  sizes: FieldSizes;
  /** Where to connect now (a live node's write port), undefined while none. */
  port: () => number | undefined;
  keyspace: string;
  keys: readonly string[];
  /** Ops in flight per session. Default 16. */
  window?: number;
}

export class OpsWriter {
  readonly stats = { sessions: 0, acked: 0, failed: 0 };
  readonly #o: Required<OpsWriterOptions>;
  readonly #history = new Map<string, KeyHistory>();
  #stopping = false;
  #loop: Promise<void> | undefined;
  #nextValue = 1_000_000n;

  constructor(o: OpsWriterOptions) {
    this.#o = { window: 16, ...o };
    for (const k of o.keys) this.#history.set(k, { sessions: [] });
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      const port = this.#o.port();
      if (port !== undefined) await this.#session(port);
      if (!this.#stopping) await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** One connection: ops until one fails (or stop), then close. */
  async #session(port: number): Promise<void> {
    this.stats.sessions++;
    const client = new Client({ host: '127.0.0.1', writePort: port, ...this.#o.sizes });
    const mine = new Map<string, Sent[]>();
    const inFlight = new Set<Promise<void>>();
    let failed = false;
    try {
      while (!this.#stopping && !failed) {
        const key = this.#o.keys[this.#o.rng.int(0, this.#o.keys.length - 1)]!;
        let ops = mine.get(key);
        if (ops === undefined) {
          ops = [];
          mine.set(key, ops);
          this.#history.get(key)!.sessions.push(ops);
        }
        const op = this.#nextOp(ops.length === 0);
        const sent: Sent = { op, acked: false };
        ops.push(sent);
        const p = this.#send(client, key, op).then(
          () => {
            sent.acked = true;
            this.stats.acked++;
          },
          () => {
            failed = true;
            this.stats.failed++;
          },
        );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        if (inFlight.size >= this.#o.window) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    } finally {
      await client.close().catch(() => {});
    }
  }

  #nextOp(first: boolean): Op {
    const r = this.#o.rng.int(0, 9);
    if (first || r < 3) return { kind: 'set', value: (this.#nextValue += 1000n) };
    if (r < 4) return { kind: 'delete' };
    return { kind: 'increment', by: BigInt(this.#o.rng.int(1, 5)) };
  }

  #send(client: Client, key: string, op: Op): Promise<void> {
    const ks = this.#o.keyspace;
    if (op.kind === 'set') return client.set(ks, key, op.value);
    if (op.kind === 'delete') return client.deleteKey(ks, key);
    return client.increment(ks, key, op.by);
  }

  /** The counts `key` may have now (undefined: absent), by the rule at the top of this file. */
  allowed(key: string): Array<bigint | undefined> {
    const sessions = this.#history.get(key)!.sessions;
    let last = -1;
    sessions.forEach((ops, i) => {
      if (ops.some((o) => o.acked)) last = i;
    });
    const out: Array<bigint | undefined> = last < 0 ? [undefined] : [];
    for (let s = Math.max(0, last); s < sessions.length; s++) {
      const ops = sessions[s]!;
      const from = s === last ? ops.map((o) => o.acked).lastIndexOf(true) : 0;
      let value: bigint | undefined;
      ops.forEach((o, i) => {
        value = o.op.kind === 'set' ? o.op.value : o.op.kind === 'delete' ? undefined : (value ?? 0n) + o.op.by;
        if (i >= from) out.push(value);
      });
    }
    return out;
  }

  /** Keys whose count (read by `read`) is not allowed, described; empty when all are. */
  async violations(read: (keyspace: string, key: string) => Promise<bigint | undefined>): Promise<string[]> {
    const bad: string[] = [];
    for (const key of this.#o.keys) {
      const count = await read(this.#o.keyspace, key);
      const allowed = this.allowed(key);
      if (!allowed.includes(count)) bad.push(`${this.#o.keyspace}/${key}: count ${String(count)}, allowed ${allowed.slice(-6).map(String).join(', ')}${allowed.length > 6 ? ', …' : ''}`);
    }
    return bad;
  }
}
