// Partition ownership (docs/cluster.md, "Ownership and failover"). Each node
// puts a heartbeat `n.<id>` into the nodes bucket every HEARTBEAT_MS; the
// bucket's max age (NODE_TTL_MS) removes the key of a node that stopped, so
// the keys present are the live nodes. Partition p's lease is the key `p.<p>`
// of the leases bucket, value {node}; its KV revision is the fencing epoch.
//
// Each tick a node computes, by rendezvous hashing over the live nodes, the
// owner each partition should have, and:
//   - takes a partition that should be its own when its lease is absent or
//     held by a node that is not live (create, or update at the revision it
//     read: two nodes racing for it, one wins);
//   - hands a partition it holds to the node that should own it once that
//     node has been live for SETTLE_TICKS ticks (delete at its revision), so
//     a node that joins takes about 1/n of the partitions, and only those;
//     a node that flaps does not move partitions back and forth.
// Rendezvous hashing moves only the partitions whose best node changed: a
// node's loss moves its partitions, nothing else (no rebalance storm).

import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { Logger } from '../util/log.js';
import { describe } from './nats.js';
import { leaseKey, PARTITIONS } from './partition.js';

export const HEARTBEAT_MS = 1000;
const SETTLE_TICKS = 2;
/** Rounds failing this long: the process restarts (events.stuck). */
export const STUCK_MS = 15_000;

export interface NodeInfo {
  id: string;
  /** host:port of its read port. */
  read: string;
}

export interface Lease {
  node: string;
  revision: number;
}

export interface OwnershipEvents {
  gained(p: number, epoch: number): Promise<void>;
  lost(p: number): void;
  /** About to hand partition p over: stop applying and snapshotting it (no purge may follow the release). */
  releasing?(p: number): Promise<void>;
  /** No round succeeded for STUCK_MS. */
  stuck(err: unknown): void;
}

export class Ownership {
  readonly self: NodeInfo;
  readonly #nodes: KV;
  readonly #leasesKv: KV;
  readonly #events: OwnershipEvents;
  readonly #logger: Logger;
  readonly leases = new Map<number, Lease>();
  /** Live nodes, with the tick they were first seen. */
  readonly live = new Map<string, NodeInfo & { since: number }>();
  #ticks = 0;
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #closed = false;
  #beating = false;
  #lastRound = Date.now();

  /** More to put with each heartbeat (the node's partition states, for `countd status`). */
  readonly #report: (() => object) | undefined;
  /** The keys of the nodes bucket (nats.ts bucketKeys). */
  readonly #nodeKeys: () => Promise<string[]>;

  constructor(nodes: KV, leases: KV, self: NodeInfo, events: OwnershipEvents, logger: Logger, o: { report?: () => object; nodeKeys: () => Promise<string[]> }) {
    this.#report = o.report;
    this.#nodeKeys = o.nodeKeys;
    this.#nodes = nodes;
    this.#leasesKv = leases;
    this.self = self;
    this.#events = events;
    this.#logger = logger;
  }

  async start(): Promise<void> {
    await this.#tick();
    this.#timer = setInterval(() => {
      this.#beat();
      // A round that hangs (a JetStream request that neither answers nor times out) is stuck too:
      // this node's view of owners would stay as it was, and its reads go to dead nodes.
      if (this.#ticking !== undefined && Date.now() - this.#lastRound > STUCK_MS && !this.#closed) this.#events.stuck(new Error(`no ownership round has completed for ${Date.now() - this.#lastRound} ms`));
      this.#ticking ??= this.#tick().finally(() => (this.#ticking = undefined));
    }, HEARTBEAT_MS);
  }

  /** The node that answers for partition p: its lease holder if live, else the node that should take it. */
  ownerOf(p: number): (NodeInfo & { since: number }) | undefined {
    const lease = this.leases.get(p);
    const holder = lease && this.live.get(lease.node);
    if (holder) return holder;
    const best = this.#best(p);
    return best === undefined ? undefined : this.live.get(best);
  }

  #leaseChanged(p: number, lease: Lease | undefined): void {
    if (!(p >= 0 && p < PARTITIONS)) return;
    const before = this.leases.get(p);
    if (lease) this.leases.set(p, lease);
    else this.leases.delete(p);
    const mine = lease?.node === this.self.id;
    if (before?.node === this.self.id && !mine) this.#events.lost(p);
    const same = before?.node === lease?.node && before?.revision === lease?.revision;
    if (mine && !same && !this.#closed) this.#events.gained(p, lease!.revision).catch((err: unknown) => this.#logger.error('cannot start applying a partition', { partition: p, error: describe(err) }));
  }

  async #tick(): Promise<void> {
    if (this.#closed) return;
    this.#ticks++;
    this.#beat();
    let step = 'listing the live nodes';
    try {
      await this.#refreshLive();
      step = 'reading the leases';
      await this.#refreshLeases();
      for (let p = 0; p < PARTITIONS; p++) {
        step = `deciding partition ${p}`;
        await this.#decide(p);
      }
      this.#lastRound = Date.now();
    } catch (err) {
      this.#logger.warn('cluster ownership round failed; retrying', { step, error: describe(err) });
      // Seen with nats-server 2.9 after losing a server: this connection's JetStream requests
      // keep timing out while a new process's work. Past the limit, start afresh.
      if (Date.now() - this.#lastRound > STUCK_MS) this.#events.stuck(err);
    }
  }

  /** Put the heartbeat, on its own: a slow round must not make this node look dead. */
  #beat(): void {
    if (this.#beating || this.#closed) return;
    this.#beating = true;
    this.#nodes
      .put(`n.${this.self.id}`, JSON.stringify({ ...this.#report?.(), ...this.self }))
      .catch((err: unknown) => this.#logger.warn('heartbeat failed', { error: describe(err) }))
      .finally(() => (this.#beating = false));
  }

  async #refreshLive(): Promise<void> {
    const seen = new Set<string>();
    for (const key of await this.#nodeKeys()) {
      const e = await this.#nodes.get(key);
      if (!e || e.operation !== 'PUT') continue;
      const info = e.json<NodeInfo>();
      seen.add(info.id);
      if (!this.live.has(info.id)) {
        this.live.set(info.id, { ...info, since: this.#ticks });
        this.#logger.info('node live', { node: info.id, read: info.read, self: this.self.id });
      }
    }
    for (const id of [...this.live.keys()]) {
      if (seen.has(id)) continue;
      this.live.delete(id);
      this.#logger.info('node gone', { node: id, self: this.self.id });
    }
  }

  /**
   * Every lease, read again each round. (A KV watch would be cheaper, but its
   * consumer can go silently with a nats-server; a read fails loudly.)
   */
  async #refreshLeases(): Promise<void> {
    const entries = await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => this.#leasesKv.get(leaseKey(p))));
    entries.forEach((e, p) => this.#leaseChanged(p, e && e.operation === 'PUT' ? { node: parseNode(e.value), revision: e.revision } : undefined));
  }

  async #decide(p: number): Promise<void> {
    const best = this.#best(p);
    const lease = this.leases.get(p);
    const me = this.self.id;
    if (lease?.node === me) {
      const other = best === undefined ? undefined : this.live.get(best);
      if (other && other.id !== me && this.#ticks - other.since >= SETTLE_TICKS) {
        await this.#events.releasing?.(p);
        const released = await this.#leasesKv.delete(leaseKey(p), { previousSeq: lease.revision }).then(() => true, () => false);
        if (released) this.#leaseChanged(p, undefined);
        else this.#events.gained(p, lease.revision).catch((err: unknown) => this.#logger.error('cannot start applying a partition', { partition: p, error: describe(err) }));
      }
      return;
    }
    if (best !== me) return;
    if (lease && this.live.has(lease.node)) return;
    const value = JSON.stringify({ node: me });
    try {
      const revision = lease ? await this.#leasesKv.update(leaseKey(p), value, lease.revision) : await this.#leasesKv.create(leaseKey(p), value);
      this.#leaseChanged(p, { node: me, revision });
    } catch {
      // Another node was faster, or the lease changed since we read it: the next round reads it.
    }
  }

  /** Rendezvous hashing: the live node with the highest hash of (node, partition). */
  #best(p: number): string | undefined {
    let best: string | undefined;
    let score = -1;
    for (const id of this.live.keys()) {
      const s = createHash('sha1').update(`${id}/${p}`).digest().readUInt32BE(0);
      if (s > score || (s === score && id < best!)) {
        score = s;
        best = id;
      }
    }
    return best;
  }

  /** Stop, hand every lease back (the others take them at their next tick) and leave the live set. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#ticking;
    for (const [p, lease] of this.leases) {
      if (lease.node === this.self.id) await this.#leasesKv.delete(leaseKey(p), { previousSeq: lease.revision }).catch(() => {});
    }
    await this.#nodes.delete(`n.${this.self.id}`).catch(() => {});
  }
}

function parseNode(value: Uint8Array): string {
  try {
    return String((JSON.parse(Buffer.from(value).toString('utf8')) as { node?: unknown }).node ?? '');
  } catch {
    return '';
  }
}
