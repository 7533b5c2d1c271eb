// The JSON API of the console, version 1 (docs/http-api.md): every answer
// the page shows comes from here. Reads go through the daemon's read port
// (the client library), the commit-log pool is read from disk, and the
// history from the sampler; nothing is changed.

import { Client, KeyspaceInfo, connectableHost } from '../client/client.js';
import { CommitLogPool, PoolStatus } from '../commitlog/pool.js';
import type { DataDir } from '../datadir/meta.js';
import type { DaemonRecord } from '../datadir/daemon-record.js';
import { isCountdError } from '../errors.js';
import { escapeName } from '../util/escape.js';
import { History } from './history.js';
import { choiceParam, intParam, nameParam, offsetParam, textParam } from './params.js';
import { listPool, reportLog } from './pool-view.js';
import { notFound } from './reply.js';
import { Cached } from './cached.js';

export const API_VERSION = 1;
export const API_PREFIX = `/api/v${API_VERSION}/`;
/** Most entries one page request may ask for (the read server's default page limit is 10,000). */
export const MAX_PAGE = 1000;
const MAX_LIST = 1000;
/** How long a keyspace list or pool status may be reused: the page polls, the daemon need not work for each poll. */
const CACHE_MS = 1000;
/** Up to this age the keyspace list is answered at once while a fresh one is fetched (cached.ts). */
const KEYSPACES_STALE_MS = 5000;

export interface ApiContext {
  dataDir: DataDir;
  daemon: Omit<DaemonRecord, 'httpPort'>;
  httpPort: () => number;
  version: string;
  history: History;
}

type Handler = (q: URLSearchParams) => Promise<unknown>;

export class Api {
  readonly #ctx: ApiContext;
  readonly #client: Client;
  readonly #keyspaces: Cached<KeyspaceRow[]>;
  readonly #pool: Cached<PoolStatus>;
  readonly #logs: Cached<Awaited<ReturnType<typeof listPool>>>;
  readonly #routes: Record<string, Handler>;

  constructor(ctx: ApiContext) {
    this.#ctx = ctx;
    const d = ctx.daemon;
    this.#client = new Client({ host: connectableHost(d.listen), writePort: d.writePort, readPort: d.readPort, ...ctx.dataDir.sizes });
    this.#keyspaces = new Cached(CACHE_MS, async () => (await this.#client.keyspaces()).map(keyspaceRow), KEYSPACES_STALE_MS);
    this.#pool = new Cached(CACHE_MS, () => poolStatus(ctx.dataDir));
    this.#logs = new Cached(CACHE_MS, () => listPool(ctx.dataDir.paths.commitlog, ctx.dataDir.sizes));
    this.#routes = {
      status: () => this.status(),
      history: (q) => this.history(q),
      keyspaces: (q) => this.keyspaces(q),
      keyspace: (q) => this.keyspace(q),
      'keyspace/search': (q) => this.search(q),
      commitlogs: () => this.commitLogs(),
    };
  }

  /** The answer to GET `path` (below API_PREFIX); rejects with COUNTD_NOT_FOUND for a path the API does not have. */
  handle(path: string, q: URLSearchParams): Promise<unknown> {
    const route = this.#routes[path];
    if (route) return route(q);
    const log = /^commitlogs\/(\d{1,10})$/.exec(path);
    if (log) return this.commitLog(Number(log[1]), q);
    return Promise.reject(notFound(`no API path ${API_PREFIX}${path} (see docs/http-api.md)`));
  }

  async close(): Promise<void> {
    await this.#client.close();
  }

  async status(): Promise<unknown> {
    const { daemon: d, dataDir } = this.#ctx;
    const [commitLogs, keyspaces] = await Promise.all([this.#pool.get(), this.#keyspaceCount()]);
    return {
      apiVersion: API_VERSION,
      version: this.#ctx.version,
      pid: d.pid,
      startedAt: d.startedAt,
      uptimeSeconds: Math.max(0, Math.floor((Date.now() - Date.parse(d.startedAt)) / 1000)),
      listen: d.listen,
      ports: { write: d.writePort, read: d.readPort, http: this.#ctx.httpPort(), metrics: d.metricsPort ?? null },
      dataDir: dataDir.paths.root,
      keyspaceSize: dataDir.sizes.keyspaceSize,
      keySize: dataDir.sizes.keySize,
      commitLogs,
      ...keyspaces,
    };
  }

  async #keyspaceCount(): Promise<{ keyspaces: number | null; keyspacesNote?: string }> {
    try {
      return { keyspaces: (await this.#keyspaces.get()).length };
    } catch (err) {
      if (!isCountdError(err)) throw err;
      return { keyspaces: null, keyspacesNote: err.message };
    }
  }

  async history(q: URLSearchParams): Promise<unknown> {
    const since = intParam(q, 'since', 0, Number.MAX_SAFE_INTEGER, 0);
    return { intervalMs: 1000, now: Date.now(), ...this.#ctx.history.since(since) };
  }

  async keyspaces(q: URLSearchParams): Promise<unknown> {
    const offset = intParam(q, 'offset', 0, Number.MAX_SAFE_INTEGER, 0);
    const limit = intParam(q, 'limit', 1, MAX_LIST, 50);
    const filter = textParam(q, 'filter', 1024).toLowerCase();
    const sort = choiceParam(q, 'sort', ['name', 'keys'] as const);
    const all = await this.#keyspaces.get();
    let rows = filter === '' ? all : all.filter((r) => r.lower.includes(filter));
    // Name order is the store's (bytes ascending); by keys, largest first, ties by name.
    if (sort === 'keys') rows = rows.slice().sort((a, b) => b.keys - a.keys);
    const page = rows.slice(offset, offset + limit).map((r) => ({ name: r.name, keys: r.keys }));
    return { total: all.length, matched: rows.length, offset, limit, sort, filter, keyspaces: page };
  }

  async #sizeOf(name: Buffer): Promise<number> {
    const found = (await this.#keyspaces.get()).find((k) => k.bytes.equals(name));
    if (found) return found.keys;
    // Created since the list was cached?
    const fresh = (await this.#keyspaces.refresh()).find((k) => k.bytes.equals(name));
    if (!fresh) throw notFound(`no keyspace ${JSON.stringify(escapeName(name))}`);
    return fresh.keys;
  }

  #keyspaceParam(q: URLSearchParams): Buffer {
    return nameParam(q, 'name', { what: 'keyspace', size: this.#ctx.dataDir.sizes.keyspaceSize });
  }

  async keyspace(q: URLSearchParams): Promise<unknown> {
    const name = this.#keyspaceParam(q);
    const offset = offsetParam(q);
    const limit = intParam(q, 'limit', 1, MAX_PAGE, 50);
    const keys = await this.#sizeOf(name);
    const entries = await this.#client.page(name, offset, limit);
    return {
      name: escapeName(name),
      keys,
      offset: Number(offset),
      limit,
      entries: entries.map((e, i) => ({ rank: Number(offset) + i, key: escapeName(e.key), count: e.count })),
    };
  }

  async search(q: URLSearchParams): Promise<unknown> {
    const name = this.#keyspaceParam(q);
    const key = nameParam(q, 'key', { what: 'key', size: this.#ctx.dataDir.sizes.keySize });
    const n = intParam(q, 'n', 1, MAX_PAGE, 11);
    const keys = await this.#sizeOf(name);
    const around = await this.#client.around(name, key, n);
    const hit = around.find((e) => e.key.equals(key));
    if (hit === undefined) throw notFound(`no key ${JSON.stringify(escapeName(key))} in keyspace ${JSON.stringify(escapeName(name))}`);
    return {
      name: escapeName(name),
      keys,
      key: escapeName(key),
      rank: Number(hit.rank),
      count: hit.count,
      around: around.map((e) => ({ rank: Number(e.rank), key: escapeName(e.key), count: e.count })),
    };
  }

  async commitLogs(): Promise<unknown> {
    const [status, logs] = await Promise.all([this.#pool.get(), this.#logs.get()]);
    return { status, logs };
  }

  async commitLog(index: number, q: URLSearchParams): Promise<unknown> {
    const limit = intParam(q, 'limit', 0, 10_000, 100);
    return reportLog(this.#ctx.dataDir.paths.commitlog, this.#ctx.dataDir.sizes, index, limit);
  }
}

/** A keyspace as the list shows it: escaped once per fetch, not per request. */
interface KeyspaceRow {
  bytes: Buffer;
  name: string;
  lower: string;
  keys: number;
}

function keyspaceRow(k: KeyspaceInfo): KeyspaceRow {
  const name = escapeName(k.name);
  return { bytes: k.name, name, lower: name.toLowerCase(), keys: Number(k.size) };
}

/** The pool by state, from the data source of `countd status` (CommitLogPool.status()). */
async function poolStatus(dataDir: DataDir): Promise<PoolStatus> {
  const pool = await CommitLogPool.open({ dir: dataDir.paths.commitlog, sizes: dataDir.sizes });
  return pool.status();
}
