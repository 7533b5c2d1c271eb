// Wiring of the roles into processes, shared by the role binaries
// (countd-write, countd-worker, countd-read: lib/cli/role-main.ts) and the
// children of `countd start` (child-main.ts). Each takes the daemon's typed
// settings (settings.ts) and hands each role the part it uses. A "store"
// process holds the database: the worker and, when it serves reads
// (settings.readPort), the reader (LevelDB admits one process per database).

import { DataDir } from '../datadir/meta.js';
import { CountdError, ErrorCodes, isCountdError } from '../errors.js';
import { storeChildSettingsFor } from '../roles/memory-budget.js';
import { startReader } from '../roles/reader.js';
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
  return defined({ listen: s.listen, port: s.writePort, logSize: s.logSize, handoverMs: s.handoverMs, backlogSoft: s.backlogSoft, backlogHard: s.backlogHard, maxConnections: s.maxConnections, idleTimeoutMs: s.idleTimeoutMs });
}

/** What the reader takes of the settings (undefined: the reader's own default). */
function readerOptions(s: DaemonSettings) {
  return defined({ listen: s.listen, port: s.readPort, pageLimit: s.pageLimit, maxConnections: s.maxConnections, idleTimeoutMs: s.idleTimeoutMs });
}

export async function runWriter(dataDir: DataDir, s: DaemonSettings, logger: Logger): Promise<RunningRole> {
  const writer = await startWriter({ dataDir, ...writerOptions(s), logger: logger.child('write') });
  return { ports: { write: writer.port }, close: () => writer.close() };
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
      ...(memory && { cacheSize: memory.cacheSize, writeBufferSize: memory.writeBufferSize, countCacheBytes: memory.countCacheBytes, blockCacheBytes: memory.blockCacheBytes }),
    });
  } catch (err) {
    if (isCountdError(err, ErrorCodes.LOCKED) && options.lockedHint) {
      throw new CountdError(ErrorCodes.LOCKED, options.lockedHint, { cause: err });
    }
    throw err;
  }
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  let read: Awaited<ReturnType<typeof startReader>> | undefined;
  try {
    worker = await startWorker({ dataDir, store, logger: logger.child('worker'), ...(memory && { maxBatchKeys: memory.maxBatchKeys }) });
    if (s.readPort !== undefined) {
      const health = worker.health;
      read = await startReader({ store, sizes: dataDir.sizes, ...readerOptions(s), health, logger: logger.child('read'), ...(memory && { pageCacheBytes: memory.pageCacheBytes }) });
    }
  } catch (err) {
    await worker?.close().catch(() => {});
    await store.close().catch(() => {});
    throw err;
  }
  return {
    ports: read ? { read: read.port } : {},
    async close() {
      // Readers first (no new requests), then the worker finishes its apply, then the database closes.
      await read?.close();
      await worker?.close();
      await store.close();
    },
  };
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
    const read = await startReader({ store, sizes: dataDir.sizes, ...readerOptions(s), logger: logger.child('read') });
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
