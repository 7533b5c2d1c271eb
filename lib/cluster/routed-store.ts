// Reads of a partition another node owns (docs/cluster.md, "Reads through any
// node"). Each call goes to the partition's owner at the time of the call, or
// to this node's own store once this node owns it.
//
// A node killed with kill -9 keeps its lease and heartbeat until the others
// see it gone (the heartbeat's age, then a round: docs/cluster.md, "Ownership
// and failover"), and its read port refuses meanwhile. A read that cannot
// reach the owner is therefore not failed at once: it waits for the
// partition's owner to change and goes to the new one, retrying the same
// owner now and then (a dropped connection to a live node), for at most
// FAILOVER_WAIT_MS, the documented failover bound. Past it the error stands
// (the reader closes the client's connection: the client sees no answer).
// Likewise a read of a partition this node has just taken waits, as long,
// until the partition is restored and replayed up to the stream's end, so a
// read after a failover does not answer from a database that does not hold
// the partition yet.

import { CountdError, ErrorCodes } from '../errors.js';
import type { FieldSizes } from '../protocol/fields.js';
import type { PeriodChoice } from '../store/periods.js';
import type { Entry, Store } from '../store/store.js';
import type { NodeInfo } from './ownership.js';
import { RemoteStore } from './remote-store.js';

/** How long a read waits for a partition whose owner cannot be reached to move (docs/cluster.md: failover within 15 s). */
export const FAILOVER_WAIT_MS = 15_000;
/** How often the owner is looked up again while waiting. */
const POLL_MS = 100;
/** While the owner stays the same, it is tried again this often. */
const RETRY_SAME_MS = 1000;

/** What the reader asks of a store for one keyspace (lib/roles/reader.ts ReadableStore, without listings). */
type KeyspaceReads = Pick<Store, 'page' | 'get' | 'around' | 'denseRank' | 'countKeys'>;

export interface RouterOptions {
  self: string;
  /** The node answering for partition p now (Ownership#ownerOf). */
  ownerOf(p: number): NodeInfo | undefined;
  /** This node's own store. */
  local: KeyspaceReads;
  /** Whether this node, owning partition p, answers its reads now (Applier#serving). */
  serving(p: number): boolean;
  sizes: FieldSizes;
  /** Tests shorten the wait. */
  waitMs?: number;
}

export class Router {
  readonly #o: RouterOptions;
  readonly #remotes = new Map<string, RemoteStore>();
  readonly #routed = new Map<number, RoutedStore>();
  #closed = false;

  constructor(o: RouterOptions) {
    this.#o = o;
  }

  /** The store answering reads of partition p when another node owns it now, or this node has not caught it up yet; undefined: this node's own. */
  route(p: number): RoutedStore | undefined {
    const owner = this.#o.ownerOf(p);
    if (owner === undefined || (owner.id === this.#o.self && this.#o.serving(p))) return undefined;
    let routed = this.#routed.get(p);
    if (!routed) this.#routed.set(p, (routed = new RoutedStore(this, p)));
    return routed;
  }

  /** Run `read` against the owner of p, waiting through a failover (see the top of the file). */
  async call<T>(p: number, read: (store: KeyspaceReads) => Promise<T>): Promise<T> {
    const deadline = Date.now() + (this.#o.waitMs ?? FAILOVER_WAIT_MS);
    for (;;) {
      const owner = this.#o.ownerOf(p);
      if (owner === undefined) return read(this.#o.local);
      if (owner.id === this.#o.self) {
        if (this.#o.serving(p) || this.#closed || Date.now() >= deadline) return read(this.#o.local);
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        continue;
      }
      try {
        return await read(this.#remote(owner.read));
      } catch (err) {
        if (!unreachable(err) || this.#closed || Date.now() >= deadline) throw err;
        await this.#moved(p, owner.id, deadline);
      }
    }
  }

  /** Resolves once p's owner is no longer `from`, RETRY_SAME_MS has passed, or the deadline. */
  async #moved(p: number, from: string, deadline: number): Promise<void> {
    const until = Math.min(deadline, Date.now() + RETRY_SAME_MS);
    while (!this.#closed && Date.now() < until && this.#o.ownerOf(p)?.id === from) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  #remote(address: string): RemoteStore {
    let remote = this.#remotes.get(address);
    if (!remote) this.#remotes.set(address, (remote = new RemoteStore(address, this.#o.sizes)));
    return remote;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#remotes.values()].map((r) => r.close().catch(() => {})));
  }
}

/** A client-side failure to reach the owner's read port (refused, reset, closed before the answer). */
function unreachable(err: unknown): boolean {
  return err instanceof CountdError && err.code === ErrorCodes.CONNECTION;
}

/** Partition p's reads, for the reader (no version: the page cache never holds these answers). */
export class RoutedStore {
  readonly version = undefined;
  readonly #router: Router;
  readonly #p: number;

  constructor(router: Router, p: number) {
    this.#router = router;
    this.#p = p;
  }

  page(keyspace: Uint8Array, offset: number | bigint, length: number, at?: PeriodChoice): Promise<Entry[]> {
    return this.#router.call(this.#p, (s) => s.page(keyspace, offset, length, at));
  }

  get(keyspace: Uint8Array, key: Uint8Array, at?: PeriodChoice): Promise<bigint | undefined> {
    return this.#router.call(this.#p, (s) => s.get(keyspace, key, at));
  }

  around(keyspace: Uint8Array, key: Uint8Array, n: number, at?: PeriodChoice): Promise<{ offset: number; entries: Entry[] } | undefined> {
    return this.#router.call(this.#p, (s) => s.around(keyspace, key, n, at));
  }

  denseRank(keyspace: Uint8Array, key: Uint8Array, at?: PeriodChoice): Promise<{ rank: number; dense: number; count: bigint } | undefined> {
    return this.#router.call(this.#p, (s) => s.denseRank(keyspace, key, at));
  }

  countKeys(keyspace: Uint8Array, options: { min?: bigint } = {}, at?: PeriodChoice): Promise<number> {
    return this.#router.call(this.#p, (s) => s.countKeys(keyspace, options, at));
  }

  async keyspaces(): Promise<never> {
    throw new Error('keyspaces are listed by each node itself');
  }

  async keyspaceSettings(): Promise<never> {
    throw new Error('keyspaces are listed by each node itself');
  }
}
