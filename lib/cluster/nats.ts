// The connection of a countd process to NATS JetStream, and the stream and
// buckets of the cluster (docs/cluster.md, "What lives in JetStream"), created
// by whichever node comes first and opened by the others.

import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { CountdError, ErrorCodes } from '../errors.js';
import { LEASES_BUCKET, NODES_BUCKET, SNAPSHOTS_BUCKET, STREAM, STREAM_LAYOUT, SUBJECT_PREFIX } from './partition.js';

/** A node whose heartbeat is older than this is dead (the nodes bucket's max age). */
export const NODE_TTL_MS = 5000;
/** How long a node waits for JetStream to accept the stream and buckets at start. */
const SETUP_TIMEOUT_MS = 30_000;
/** JetStream's duplicate window (Nats-Msg-Id): countd sends no message ids since 0.7.0 (the per-writer watermark is the exact dedupe); kept as 0.6.0 created it. */
const DUPLICATE_WINDOW_NS = 120 * 1e9;

export interface ClusterConnection {
  nc: NatsConnection;
  js: JetStreamClient;
  nodes: KV;
  leases: KV;
  /** The partition snapshots (snapshots.ts). */
  snapshots: ObjectStore;
  jsm: JetStreamManager;
  close(): Promise<void>;
}

export interface ConnectOptions {
  servers: string[];
  /** Replicas of the stream and buckets if this node creates them. */
  replicas: number;
  /** Shown in the server's connection list. */
  name: string;
}

/** Connect, and create or open the stream and the two buckets. */
export async function connectCluster(o: ConnectOptions): Promise<ClusterConnection> {
  let nc: NatsConnection;
  try {
    // noAsyncTraces: otherwise every request (each publish) builds an Error for its stack, a
    // few percent of the writer's CPU under load (BENCHMARKS.md, "Cluster").
    nc = await connect({ servers: o.servers, name: o.name, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 10_000, noAsyncTraces: true });
  } catch (err) {
    throw new CountdError(ErrorCodes.CLUSTER, `cannot connect to NATS at ${o.servers.join(',')}: ${describe(err)}`, { cause: err });
  }
  // A JetStream cluster that just started elects its leaders first: retry for a while.
  const deadline = Date.now() + SETUP_TIMEOUT_MS;
  for (;;) {
    try {
      await ensureStream(nc, o.replicas);
      const kvm = new Kvm(nc);
      const nodes = await kvm.create(NODES_BUCKET, { replicas: o.replicas, history: 1, ttl: NODE_TTL_MS });
      const leases = await kvm.create(LEASES_BUCKET, { replicas: o.replicas, history: 1 });
      const snapshots = await new Objm(nc).create(SNAPSHOTS_BUCKET, { replicas: o.replicas, storage: StorageType.File });
      return { nc, js: jetstream(nc), nodes, leases, snapshots, jsm: await jetstreamManager(nc), close: () => nc.drain() };
    } catch (err) {
      if (err instanceof LayoutMismatch) {
        await nc.close().catch(() => {});
        throw err;
      }
      if (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      await nc.close().catch(() => {});
      throw new CountdError(ErrorCodes.CLUSTER, `cannot set up the cluster's stream and buckets on JetStream: ${describe(err)}`, { cause: err });
    }
  }
}

async function ensureStream(nc: NatsConnection, replicas: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const found = await jsm.streams.info(STREAM).catch(() => undefined); // undefined: not there yet (or another node creates it now)
  if (found !== undefined) return checkLayout(found.config.description);
  try {
    await jsm.streams.add({
      name: STREAM,
      subjects: [`${SUBJECT_PREFIX}*`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      num_replicas: replicas,
      duplicate_window: DUPLICATE_WINDOW_NS,
      description: STREAM_LAYOUT,
    });
  } catch (err) {
    // Two nodes creating it at once: the second finds it there.
    const info = await jsm.streams.info(STREAM).catch(() => {
      throw err;
    });
    checkLayout(info.config.description);
  }
}

/** A stream of another layout (countd 0.6.0's) is refused: its keyspaces are in other partitions. */
function checkLayout(description: string | undefined): void {
  if (description === STREAM_LAYOUT) return;
  throw new LayoutMismatch(
    `the JetStream stream ${STREAM} has the layout "${description || 'countd 0.6.0: partitions=64, NATS headers'}", this countd needs "${STREAM_LAYOUT}": ` +
      `run the countd version that made it, or start the cluster afresh (delete the stream ${STREAM} and the buckets ${NODES_BUCKET} and ${LEASES_BUCKET}) and write its data again`,
  );
}

class LayoutMismatch extends CountdError {
  constructor(message: string) {
    super(ErrorCodes.CLUSTER, message);
  }
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The keys of a KV bucket, read from its stream's subjects: one request with
 * a timeout. (A KV keys() runs a consumer, which can go silent with a
 * nats-server and leave the caller waiting: docs/cluster.md, "Losing a
 * nats-server".) A deleted key is listed until its marker expires: get() says.
 */
export async function bucketKeys(jsm: JetStreamManager, bucket: string): Promise<string[]> {
  const prefix = `$KV.${bucket}.`;
  const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}>` });
  return Object.keys(info.state.subjects ?? {}).filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length));
}
