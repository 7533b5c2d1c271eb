// A countd node's cluster parts, one per process of `countd start --nats`
// (docs/cluster.md): the writer process publishes each group commit
// (publisher.ts); the store process holds leases (ownership.ts), applies the
// partitions it owns (applier.ts) and routes reads of the others to their
// owners (routed-store.ts).

import { randomBytes } from 'node:crypto';
import type { FieldSizes } from '../protocol/fields.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../util/log.js';
import { Applier } from './applier.js';
import { WRITER_ID_SIZE, writerName } from './message.js';
import { bucketKeys, connectCluster } from './nats.js';
import { Ownership } from './ownership.js';
import { leaseKey, NODES_BUCKET, partitionOf } from './partition.js';
import { Publisher } from './publisher.js';
import { Router, type RoutedStore } from './routed-store.js';
import { startSnapshotting } from './snapshot-timer.js';
import { Snapshots } from './snapshots.js';

export interface ClusterSettings {
  servers: string[];
  replicas: number;
  /** ms between two snapshots of an owned partition (store process only). */
  snapshotMs?: number;
  /** Purge the stream below the snapshots (store process only; default 'auto': from nats-server 2.10 on). */
  purge?: 'auto' | 'always' | 'never';
}

/** The writer process's part: replicate(entries, count, type) for the writer's group commit. */
export async function startClusterWriter(s: ClusterSettings, logger: Logger): Promise<{ replicate: (entries: Buffer, count: number, type: number) => Promise<void>; close(): Promise<void> }> {
  const id = randomBytes(WRITER_ID_SIZE);
  const writer = writerName(id);
  const conn = await connectCluster({ servers: s.servers, replicas: s.replicas, name: `countd-write ${writer}` });
  const publisher = new Publisher({ js: conn.js, writer: id, logger });
  logger.info('cluster writer connected', { writer, servers: s.servers.join(',') });
  return { replicate: (entries, _count, type) => publisher.publish(entries, type), close: () => conn.close() };
}

export interface ClusterStore {
  readonly id: string;
  /** The store answering for `keyspace` when another node owns it; undefined: this node's store. */
  route(keyspace: Buffer): RoutedStore | undefined;
  close(): Promise<void>;
}

/** The store process's part, once its read port listens at `readAddress` (host:port). */
export async function startClusterStore(
  s: ClusterSettings,
  o: { store: Store; sizes: FieldSizes; readAddress: string; logger: Logger; onFatal: (err: unknown) => void },
): Promise<ClusterStore> {
  const id = randomBytes(8).toString('hex');
  const conn = await connectCluster({ servers: s.servers, replicas: s.replicas, name: `countd-store ${id}` });
  const purge = purgeAllowed(s.purge ?? 'auto', conn.nc.info?.version ?? '0.0.0');
  if (!purge) o.logger.info('the stream is not purged below the snapshots', { natsPurge: s.purge ?? 'auto', server: conn.nc.info?.version });
  const snapshots = new Snapshots(conn.snapshots, conn.js, conn.jsm, o.store, o.logger, purge);
  const applier = new Applier(conn.js, o.store, o.logger, o.onFatal, snapshots);
  const ownership = new Ownership(conn.nodes, conn.leases, { id, read: o.readAddress }, {
      gained: (p, epoch) => applier.own(p, epoch),
      lost: (p) => {
        applier.disown(p);
        snapshots.forget(p);
      },
      releasing: async (p) => {
        applier.disown(p);
        await snapshotting.idle();
      },
      stuck: (err) => {
        o.logger.error('cannot reach a working JetStream for a while; restarting this process', { error: err instanceof Error ? err.message : String(err) });
        o.onFatal(err);
      },
    }, o.logger, {
      report: () => ({ partitions: Object.fromEntries([...applier.states()].map(([p, st]) => [p, st])) }),
      nodeKeys: () => bucketKeys(conn.jsm, NODES_BUCKET),
    });
  const snapshotting = startSnapshotting(s.snapshotMs ?? 60_000, snapshots, () =>
    applier.ready().map(({ p, epoch, dataSeq }) => ({
      p,
      dataSeq,
      // The lease is still this node's at the epoch the partition was applied under: only then purge.
      stillOwner: async () => {
        const e = await conn.leases.get(leaseKey(p));
        return e?.operation === 'PUT' && e.revision === epoch && e.string().includes(`"${id}"`);
      },
    })),
  );
  const router = new Router({ self: id, ownerOf: (p) => ownership.ownerOf(p), local: o.store, serving: (p) => applier.serving(p), sizes: o.sizes });
  await ownership.start();
  o.logger.info('cluster node joined', { node: id, read: o.readAddress, servers: s.servers.join(',') });
  return {
    id,
    route: (keyspace) => router.route(partitionOf(keyspace)),
    async close() {
      await snapshotting.stop();
      await ownership.close();
      await applier.close();
      await router.close();
      await conn.close();
    },
  };
}

/**
 * Whether to purge. nats-server 2.9 (Debian's 2.9.10 measured) replays a
 * purge filtered by subject as if it were not filtered when every server of
 * the cluster restarts after a crash: messages of OTHER partitions vanish
 * (docs/cluster.md, "Snapshots and purge"). 'auto' purges from 2.10 on.
 */
export function purgeAllowed(mode: 'auto' | 'always' | 'never', serverVersion: string): boolean {
  if (mode !== 'auto') return mode === 'always';
  const [major = 0, minor = 0] = serverVersion.split('.').map((x) => Number.parseInt(x, 10));
  return major > 2 || (major === 2 && minor >= 10);
}
