// The cluster as `countd status` shows it (docs/cluster.md, "Operations"),
// read from JetStream alone: the live nodes and what each reports with its
// heartbeat (applied position, pending messages and lag per owned
// partition), the leases (owner and fencing epoch), the snapshots (position)
// and the stream (last stored sequence and messages kept, per partition).
// Only partitions that hold messages, a lease, or a snapshot are listed.

import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { CountdError, ErrorCodes } from '../errors.js';
import type { PartitionState } from './applier.js';
import { bucketKeys, describe } from './nats.js';
import { LEASES_BUCKET, NODES_BUCKET, PARTITIONS, partitionOfSubject, SNAPSHOTS_BUCKET, STREAM, SUBJECT_PREFIX, leaseKey, subjectOf } from './partition.js';
import { snapshotName } from './snapshots.js';

export interface ClusterNodeStatus {
  id: string;
  read: string;
  partitions: number;
}

export interface ClusterPartitionStatus {
  partition: number;
  owner: string | null;
  /** The lease's KV revision (fencing epoch); null without a lease. */
  epoch: number | null;
  /** Stream sequence the owner applied up to (its last heartbeat); null when the owner reports none. */
  applied: number | null;
  /** Messages stored after the applied one, as the owner's consumer reports them. */
  pending: number | null;
  /** Seconds the owner is behind (age of the last applied message while messages are pending). */
  lagSeconds: number | null;
  /** Sequence of the partition's last message in the stream; null when the stream keeps none. */
  stored: number | null;
  /** Messages of the partition the stream keeps (the rest was purged below a snapshot). */
  messages: number;
  /** Position of the latest snapshot; null if none. */
  snapshot: number | null;
}

export interface ClusterStatus {
  servers: string[];
  /** `inSync`: the stream's leader and the replicas that are current (a server that is down or catching up is not). */
  stream: { messages: number; bytes: number; firstSeq: number; lastSeq: number; replicas: number; inSync: number; leader: string | null };
  nodes: ClusterNodeStatus[];
  partitions: ClusterPartitionStatus[];
}

interface Heartbeat {
  id: string;
  read: string;
  partitions?: Record<string, PartitionState>;
}

/** Read the cluster's state through `servers`; COUNTD_CLUSTER if JetStream cannot be reached or holds no countd cluster. */
export async function clusterStatus(servers: string[], timeoutMs = 10_000): Promise<ClusterStatus> {
  let nc;
  try {
    nc = await connect({ servers, name: 'countd status', timeout: timeoutMs, maxReconnectAttempts: 0 });
  } catch (err) {
    throw new CountdError(ErrorCodes.CLUSTER, `cannot connect to NATS at ${servers.join(',')}: ${describe(err)}`, { cause: err });
  }
  try {
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
    const info = await jsm.streams.info(STREAM, { subjects_filter: `${SUBJECT_PREFIX}*` });
    const kvm = new Kvm(nc);
    const nodesKv = await kvm.open(NODES_BUCKET);
    const leasesKv = await kvm.open(LEASES_BUCKET);
    const objects = await new Objm(nc).open(SNAPSHOTS_BUCKET);
    const nodes: Heartbeat[] = [];
    for (const key of await bucketKeys(jsm, NODES_BUCKET)) {
      const e = await nodesKv.get(key);
      if (e?.operation === 'PUT') nodes.push(e.json<Heartbeat>());
    }
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const messages = new Map<number, number>();
    for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
      const p = partitionOfSubject(subject);
      if (p >= 0) messages.set(p, n);
    }
    const partitions: ClusterPartitionStatus[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const lease = await leasesKv.get(leaseKey(p));
      const held = lease?.operation === 'PUT' ? lease : null;
      const snap = await objects.info(snapshotName(p));
      const snapshot = snap && !snap.deleted ? Number(snap.metadata?.['position'] ?? 0) : null;
      const kept = messages.get(p) ?? 0;
      if (!held && snapshot === null && kept === 0) continue;
      const owner = held ? String((held.json<{ node?: unknown }>().node ?? '')) : null;
      const state = owner === null ? undefined : byId.get(owner)?.partitions?.[String(p)];
      const stored = kept > 0 ? (await jsm.streams.getMessage(STREAM, { last_by_subj: subjectOf(p) }))?.seq ?? null : null;
      partitions.push({
        partition: p,
        owner,
        epoch: held ? held.revision : null,
        applied: state?.position ?? null,
        pending: state?.pending ?? null,
        lagSeconds: state?.lag ?? null,
        stored,
        messages: kept,
        snapshot,
      });
    }
    const owned = (id: string) => partitions.filter((x) => x.owner === id).length;
    return {
      servers,
      stream: { messages: info.state.messages, bytes: info.state.bytes, firstSeq: info.state.first_seq, lastSeq: info.state.last_seq, replicas: info.config.num_replicas, inSync: inSync(info.cluster), leader: info.cluster?.leader ?? null },
      nodes: nodes.map((n) => ({ id: n.id, read: n.read, partitions: owned(n.id) })).sort((a, b) => a.id.localeCompare(b.id)),
      partitions,
    };
  } catch (err) {
    if (err instanceof CountdError) throw err;
    throw new CountdError(ErrorCodes.CLUSTER, `cannot read the cluster's state from JetStream at ${servers.join(',')}: ${describe(err)}`, { cause: err });
  } finally {
    await nc.close().catch(() => {});
  }
}

function inSync(cluster: { leader?: string; replicas?: Array<{ current: boolean; offline?: boolean }> } | undefined): number {
  if (!cluster?.leader) return 0;
  return 1 + (cluster.replicas ?? []).filter((r) => r.current && r.offline !== true).length;
}

/** The human form: one line per node, one per partition. */
export function formatClusterStatus(c: ClusterStatus): string {
  const dash = (v: number | null, f: (n: number) => string = String) => (v === null ? '-' : f(v));
  const lines = [
    `cluster:        ${c.nodes.length} node(s) live via ${c.servers.join(',')}; stream ${STREAM}: ${c.stream.messages} messages kept (sequences ${c.stream.firstSeq}-${c.stream.lastSeq}), R${c.stream.replicas}, ${c.stream.inSync} in sync, leader ${c.stream.leader ?? 'NONE'}`,
    ...c.nodes.map((n) => `  node ${n.id}  read ${n.read}  owns ${n.partitions} partition(s)`),
    '  partition  owner             epoch  applied  stored   pending  lag(s)  snapshot  kept',
    ...c.partitions.map((p) =>
      [
        `  ${String(p.partition).padEnd(9)}`,
        (p.owner ?? 'NONE').padEnd(17),
        dash(p.epoch).padEnd(6),
        dash(p.applied).padEnd(8),
        dash(p.stored).padEnd(8),
        dash(p.pending).padEnd(8),
        dash(p.lagSeconds, (n) => n.toFixed(1)).padEnd(7),
        dash(p.snapshot).padEnd(9),
        String(p.messages),
      ].join(' '),
    ),
  ];
  return lines.join('\n') + '\n';
}
