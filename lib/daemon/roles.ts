// Wiring of the roles into processes, shared by the role binaries
// (countd-write, countd-worker, countd-read: lib/cli/role-main.ts) and the
// children of `countd start` (child-main.ts). Each takes the daemon's typed
// settings (settings.ts) and hands each role the part it uses. A "store"
// process holds the database: the worker and, when it serves reads
// (settings.readPort), the reader (LevelDB admits one process per database).

import { startClusterStore, startClusterWriter, type ClusterStore } from '../cluster/node.js';
import { DataDir } from '../datadir/meta.js';
import { CountdError, ErrorCodes, isCountdError } from '../errors.js';
import { storeChildSettingsFor } from '../roles/memory-budget.js';
import { startReader } from '../roles/reader.js';
import { tokenService } from '../roles/read/tokens.js';
import { connectableHost } from '../client/client.js';
import { startWorker } from '../roles/worker.js';
import { startWriter } from '../roles/writer.js';
import { Store } from '../store/store.js';
import { Logger } from '../util/log.js';
import type { DaemonSettings } from './settings.js';

/** A running role process: its bound ports, and how to stop it in order. */
export interface RunningRole {
  ports: { write?: number; read?: number };
  close(): Promise<void>;
}

/** What the writer takes of the settings (undefined: the writer's own default). */
function writerOptions(s: DaemonSettings) {
  // Idempotent producers need the database's state through the read port; cluster mode speaks no version 2 (docs/cluster.md).
  const producers = s.readPort === undefined || s.readPort === 0 || s.nats !== undefined ? undefined : { readHost: connectableHost(s.listen), readPort: s.readPort, ...defined({ maxProducers: s.maxProducers, expiryMs: s.producerExpiryMs }) };
  return defined({ listen: s.listen, port: s.writePort, logSize: s.logSize, handoverMs: s.handoverMs, backlogSoft: s.backlogSoft, backlogHard: s.backlogHard, backlogMs: s.backlogMs, maxConnections: s.maxConnections, idleTimeoutMs: s.idleTimeoutMs, producers });
}

/** What the reader takes of the settings (undefined: the reader's own default). */
function readerOptions(s: DaemonSettings) {
  return defined({ listen: s.listen, port: s.readPort, pageLimit: s.pageLimit, maxConnections: s.maxConnections, idleTimeoutMs: s.idleTimeoutMs });
}

export async function runWriter(dataDir: DataDir, s: DaemonSettings, logger: Logger): Promise<RunningRole> {
  // Cluster mode: each group commit is also published to JetStream before its WINs (lib/cluster/).
  const cluster = s.nats === undefined ? undefined : await startClusterWriter({ servers: s.nats, replicas: s.natsReplicas }, logger.child('cluster'));
  try {
    const writer = await startWriter({ dataDir, ...writerOptions(s), logger: logger.child('write'), ...(cluster && { replicate: cluster.replicate }) });
    return {
      ports: { write: writer.port },
      async close() {
        await writer.close();
        await cluster?.close();
      },
    };
  } catch (err) {
    await cluster?.close().catch(() => {});
    throw err;
  }
}

/** Open the database, start the worker and, with a read port set, the reader on the same store. */
export async function runStore(dataDir: DataDir, s: DaemonSettings, logger: Logger, options: { lockedHint?: string } = {}): Promise<RunningRole> {
  // With a memory setting, the caches and the batch size are derived from it; without, each part keeps its own default.
  const memory = s.storeMemory === undefined ? undefined : storeChildSettingsFor(s.storeMemory);
  let store: Store;
  try {
    store = await Store.open({
      location: dataDir.paths.db,
      sizes: dataDir.sizes,
      logger: logger.child('store'),
      ...(memory && { cacheSize: memory.cacheSize, writeBufferSize: memory.writeBufferSize, countCacheBytes: memory.countCacheBytes, blockCacheBytes: memory.blockCacheBytes, keyFilterBytes: memory.keyFilterBytes }),
    });
  } catch (err) {
    if (isCountdError(err, ErrorCodes.LOCKED) && options.lockedHint) {
      throw new CountdError(ErrorCodes.LOCKED, options.lockedHint, { cause: err });
    }
    throw err;
  }
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  let read: Awaited<ReturnType<typeof startReader>> | undefined;
  let cluster: ClusterStore | undefined;
  let peer: Awaited<ReturnType<typeof startReader>> | undefined;
  const clustered = s.nats !== undefined && s.readPort !== undefined;
  try {
    // Token awaits are woken by this process's worker when an apply commits (read/tokens.ts).
    const tokens = clustered || s.readPort === undefined ? undefined : tokenService(store, dataDir.paths.commitlog, dataDir.sizes, { wakeOnApply: true });
    worker = await startWorker({ dataDir, store, logger: logger.child('worker'), countsElsewhere: clustered, ...(memory && { maxBatchKeys: memory.maxBatchKeys }), ...defined({ producerExpiryMs: s.producerExpiryMs }), ...(tokens && { onApplied: () => tokens.changed() }) });
    if (s.readPort !== undefined) {
      const health = worker.health;
      const route = clustered ? (keyspace: Buffer) => cluster?.route(keyspace) : undefined;
      read = await startReader({ store, sizes: dataDir.sizes, ...readerOptions(s), health, logger: logger.child('read'), ...(memory && { pageCacheBytes: memory.pageCacheBytes }), ...(route && { route }), ...(tokens && { tokens }) });
    }
    if (clustered) {
      // The port other nodes forward reads to: answered from this database, never forwarded
      // again, so two nodes that disagree for a moment about an owner cannot bounce a request.
      peer = await startReader({ store, sizes: dataDir.sizes, ...readerOptions(s), port: 0, health: worker.health, logger: logger.child('peer-read') });
      cluster = await joinCluster(store, dataDir, s, peer.port, logger);
    }
  } catch (err) {
    await peer?.close().catch(() => {});
    await read?.close().catch(() => {});
    await worker?.close().catch(() => {});
    await store.close().catch(() => {});
    throw err;
  }
  return {
    ports: read ? { read: read.port } : {},
    async close() {
      // Readers first (no new requests), then the cluster's applies and the worker's finish, then the database closes.
      await read?.close();
      await peer?.close();
      await cluster?.close();
      await worker?.close();
      await store.close();
    },
  };
}

/** Cluster mode: hold leases and apply owned partitions into `store`; a failed apply ends the process (restarted from the database's positions). */
function joinCluster(store: Store, dataDir: DataDir, s: DaemonSettings, peerPort: number, logger: Logger): Promise<ClusterStore> {
  const host = s.listen === '0.0.0.0' || s.listen === '::' ? '127.0.0.1' : s.listen;
  return startClusterStore(
    { servers: s.nats!, replicas: s.natsReplicas, snapshotMs: s.natsSnapshotMs, purge: s.natsPurge },
    { store, sizes: dataDir.sizes, readAddress: `${host}:${peerPort}`, logger: logger.child('cluster'), onFatal: () => process.exit(1) },
  );
}

/** Reads alone: the database must be free (no worker holds it). */
export async function runReader(dataDir: DataDir, s: DaemonSettings, logger: Logger): Promise<RunningRole> {
  let store: Store;
  try {
    store = await Store.open({ location: dataDir.paths.db, sizes: dataDir.sizes, logger: logger.child('store') });
  } catch (err) {
    if (isCountdError(err, ErrorCodes.LOCKED)) {
      throw new CountdError(
        ErrorCodes.LOCKED,
        `the database ${dataDir.paths.db} is held by another process; run \`countd start\` (or countd-worker --read-port) which serves reads together with the worker`,
        { cause: err },
      );
    }
    throw err;
  }
  try {
    const read = await startReader({ store, sizes: dataDir.sizes, ...readerOptions(s), logger: logger.child('read'), tokens: tokenService(store, dataDir.paths.commitlog, dataDir.sizes) });
    return {
      ports: { read: read.port },
      async close() {
        await read.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}

/** Drop undefined settings, so the roles apply their own defaults. */
function defined<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}
