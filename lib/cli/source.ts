// Where the read commands (dump, read, get, rank, around, keyspaces) get their
// answers: from a running daemon through its read port (the client library),
// or, when no daemon runs, from the database opened directly. LevelDB admits
// one process per database, so a running daemon must be asked, not bypassed.

import { promises as fsp } from 'node:fs';
import { Client, DenseRankedEntry, Entry, KeyspaceSettings, RankedEntry } from '../client/client.js';
import { OPERATOR_NAMES, TIES_NAMES } from '../protocol/write-ops.js';
import { DataDirPaths } from '../datadir/layout.js';
import { openDataDir } from '../datadir/meta.js';
import { CountdError, ErrorCodes, errnoCode, isCountdError } from '../errors.js';
import type { HealthReport } from '../protocol/read-response.js';
import type { Store } from '../store/store.js';
import { DaemonTarget, findDaemon } from './find-daemon.js';
import { CommonArgs, DaemonAddress, DaemonArgs, daemonAddressOf, dataDirOf } from './options.js';
import { Output } from './output.js';

export interface ReadSource {
  /** Where the answers come from, for messages: "daemon 127.0.0.1:48880" or "database /d/db". */
  readonly origin: string;
  page(keyspace: Buffer, offset: bigint, length: bigint): Promise<Entry[]>;
  dump(keyspace: Buffer): AsyncIterable<Entry>;
  get(keyspace: Buffer, key: Buffer): Promise<bigint | undefined>;
  rank(keyspace: Buffer, key: Buffer): Promise<RankedEntry | undefined>;
  around(keyspace: Buffer, key: Buffer, n: bigint): Promise<RankedEntry[]>;
  keyspaces(): Promise<Array<{ name: Buffer; size: bigint }>>;
  /** Rank, dense rank and count of one key, from one snapshot. */
  denseRank(keyspace: Buffer, key: Buffer): Promise<DenseRankedEntry | undefined>;
  /** The number of keys (with a count of at least `min`). */
  count(keyspace: Buffer, min: bigint | undefined): Promise<bigint>;
  /** Every keyspace that exists or is declared, with its size and settings (the read port's settings op, or the store). */
  settings(): Promise<KeyspaceSettings[]>;
  /** The worker's health, through a daemon's read port (absent when the database is read directly). */
  health?(): Promise<HealthReport>;
  close(): Promise<void>;
}

/**
 * A daemon given by flags, else the one recorded in the data directory's
 * daemon.json, else the database itself. The data directory must exist (it
 * is never created by a read).
 */
export async function openReadSource(dataDir: string, address: DaemonAddress): Promise<ReadSource> {
  const daemon = await findDaemon(dataDir, address, 'read');
  if (daemon !== undefined) {
    return clientSource(new Client({ host: daemon.host, readPort: daemon.port, ...daemon.sizes }), daemon);
  }
  const dir = await openDataDir(dataDir, { create: false });
  return storeSource(dir.paths, dir.sizes);
}

/**
 * The body of every read command: open the source the flags name, hand it and
 * an Output to `body`, flush, and close the source whatever happens.
 */
export async function withReadSource(argv: CommonArgs & DaemonArgs, body: (source: ReadSource, out: Output) => Promise<void>): Promise<void> {
  const source = await openReadSource(dataDirOf(argv), daemonAddressOf(argv));
  try {
    const out = new Output();
    await body(source, out);
    await out.flush();
  } finally {
    await source.close();
  }
}

function clientSource(client: Client, daemon: DaemonTarget): ReadSource {
  return {
    origin: `daemon ${daemon.host}:${daemon.port}`,
    page: (ks, offset, length) => client.page(ks, offset, length),
    dump: (ks) => client.dump(ks),
    get: (ks, key) => client.get(ks, key),
    rank: (ks, key) => client.rank(ks, key),
    around: (ks, key, n) => client.around(ks, key, n),
    keyspaces: () => client.keyspaces(),
    denseRank: (ks, key) => client.denseRank(ks, key),
    count: (ks, min) => client.count(ks, { min }),
    settings: () => client.keyspaceSettings(),
    health: () => client.health(),
    close: () => client.close(),
  };
}

async function storeSource(paths: DataDirPaths, sizes: Store['sizes']): Promise<ReadSource> {
  // Opening creates a database; a data directory that never had one reads as empty instead.
  if (!(await exists(paths.db))) return emptySource(paths.db);
  // Loaded only here: LevelDB's native module is not needed when a daemon answers.
  const { Store } = await import('../store/store.js');
  let store: Store;
  try {
    store = await Store.open({ location: paths.db, sizes });
  } catch (err) {
    if (!isCountdError(err, ErrorCodes.LOCKED)) throw err;
    throw new CountdError(
      ErrorCodes.LOCKED,
      `the database ${paths.db} is held by another process and no daemon.json names a read port; ` +
        'run `countd start` (or countd-worker --read-port) which serves reads together with the worker, or give --read-port',
      { cause: err },
    );
  }
  const MAX = BigInt(Number.MAX_SAFE_INTEGER);
  return {
    origin: `database ${paths.db}`,
    page: (ks, offset, length) => store.page(ks, offset, Number(length > MAX ? MAX : length)),
    dump: (ks) => store.iterate(ks),
    get: (ks, key) => store.get(ks, key),
    async rank(ks, key) {
      const r = await store.around(ks, key, 1);
      const e = r?.entries[0];
      return r === undefined || e === undefined ? undefined : { rank: BigInt(r.offset), key: e.key, count: e.count };
    },
    async around(ks, key, n) {
      const r = await store.around(ks, key, Number(n));
      return r === undefined ? [] : r.entries.map((e, i) => ({ rank: BigInt(r.offset + i), key: e.key, count: e.count }));
    },
    keyspaces: async () => (await store.keyspaces()).map((k) => ({ name: k.name, size: BigInt(k.size) })),
    async denseRank(ks, key) {
      const r = await store.denseRank(ks, key);
      return r === undefined ? undefined : { rank: BigInt(r.rank), dense: BigInt(r.dense), key, count: r.count };
    },
    count: async (ks, min) => BigInt(await store.countKeys(ks, { min })),
    settings: async () =>
      (await store.keyspaceSettings()).map((k) => ({ name: k.name, size: BigInt(k.size), op: OPERATOR_NAMES[k.settings[0]!], ties: TIES_NAMES[k.settings[1]!] ?? 'key' })),
    close: () => store.close(),
  };
}

function emptySource(db: string): ReadSource {
  return {
    origin: `database ${db} (not created yet)`,
    page: async () => [],
    dump: async function* () {},
    get: async () => undefined,
    rank: async () => undefined,
    around: async () => [],
    keyspaces: async () => [],
    denseRank: async () => undefined,
    count: async () => 0n,
    settings: async () => [],
    close: async () => {},
  };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.stat(p);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}
