// countd-read: serves ranked pages over TCP (docs/protocol.md section 2) and, on
// connections that negotiated them with a hello, the extension ops of
// docs/read-protocol-extensions.md (get, rank, around, keyspaces, health).
//
// One connection is a stream of pipelined requests answered strictly in
// order: requests are decoded lazily from the connection's buffer and
// answered one at a time. Memory per connection stays bounded: the socket is
// paused while more than INPUT_HIGH_WATER bytes of requests wait, and no
// request is answered while the socket's output waits to drain.

import net from 'node:net';
import { CountdError, ErrorCodes, invalidArgument } from '../errors.js';
import { metrics, readBuffered } from '../metrics.js';
import { FieldSizes, checkFieldSizes, readRequestSize } from '../protocol/fields.js';
import { DEFAULT_HOST, DEFAULT_READ_PORT } from '../protocol/ports.js';
import { READ_EXTENSIONS_VERSION, ReadRequest, ReadRequestDecoder } from '../protocol/read-request.js';
import {
  N_MALFORMED,
  N_PAGE_TOO_LARGE,
  encodeHealthResponse,
  encodeHelloResponse,
  type HealthReport,
  encodeKeyspacesResponse,
  encodePageResponse,
  encodePositionedResponse,
  encodeStatusResponse,
  encodeDenseResponse,
  encodeCountResponse,
  encodeSettingsResponse,
} from '../protocol/read-response.js';
import { Logger, silentLogger } from '../util/log.js';
import type { Store } from '../store/store.js';
import { PageCache, type VersionedStore } from './read/page-cache.js';

export const DEFAULT_PAGE_LIMIT = 10_000;
export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_PAGE_CACHE_BYTES = 32 * 1024 * 1024;
export const DEFAULT_READ_IDLE_TIMEOUT_MS = 300_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

/** The part of Store the reader uses (tests may pass a model of it). */
export type ReadableStore = Pick<Store, 'page' | 'get' | 'around' | 'keyspaces' | 'denseRank' | 'countKeys' | 'keyspaceSettings'> & VersionedStore;

export interface ReaderOptions {
  store: ReadableStore;
  sizes: FieldSizes;
  /** Address to listen on; default 127.0.0.1. */
  listen?: string;
  /** Port; default 48880; 0 picks a free port. */
  port?: number;
  /** Largest `length` answered; above it the answer is n = -2. Default 10,000. */
  pageLimit?: number;
  /**
   * Connections at most. Default 1024. At the limit a new connection closes
   * the one idle the longest (not answering a request; possibly holding part
   * of one), so idle clients never lock readers out; it is refused only when
   * every connection is being answered.
   */
  maxConnections?: number;
  /** Close a connection idle (no bytes either way, nothing being answered) this long; 0 = never. Default 300,000 (5 minutes). */
  idleTimeoutMs?: number;
  /**
   * Bytes all connections may hold in answers their clients have not read
   * (plus requests read ahead: each connection reads at most 256 KiB ahead).
   * Above it, the connection whose client has not read the longest is
   * closed. Default 64 MiB.
   */
  maxBufferedBytes?: number;
  /** Bytes of encoded page responses kept between applies (page-cache.ts); 0 = no cache. Default 32 MiB. */
  pageCacheBytes?: number;
  /** The health of the worker sharing this process (the health op); without it, state `none`. */
  health?: () => HealthReport;
  /**
   * Cluster mode: the store that answers for a keyspace this node does not
   * own (its owner, over the read port: lib/cluster/), or undefined to answer
   * from `store`.
   */
  route?: (keyspace: Buffer) => ReadableStore | undefined;
  logger?: Logger;
}

const NO_WORKER: HealthReport = { state: 'none', since: 0, failures: 0, code: '', message: 'no worker runs in the process serving reads' };

export interface ReaderHandle {
  readonly port: number;
  readonly address: string;
  /** Open connections. */
  readonly connections: number;
  /** Bytes the connections hold (requests read ahead, answers not read by their clients): see maxBufferedBytes. */
  readonly bufferedBytes: number;
  /** Stop accepting, finish the request each connection is answering, close every connection. */
  close(): Promise<void>;
}

const STATUS_MALFORMED = encodeStatusResponse(N_MALFORMED);
const STATUS_TOO_LARGE = encodeStatusResponse(N_PAGE_TOO_LARGE);
/** Requests waiting in a connection's input before it stops reading, in bytes. */
const INPUT_HIGH_WATER = 256 * 1024;
const CLOSE_GRACE_MS = 5000;

/** The options with their defaults, validated (COUNTD_INVALID_ARGUMENT). */
function settingsOf(options: ReaderOptions) {
  const sizes = checkFieldSizes(options.sizes);
  const s = {
    sizes,
    listen: options.listen ?? DEFAULT_HOST,
    port: options.port ?? DEFAULT_READ_PORT,
    pageLimit: options.pageLimit ?? DEFAULT_PAGE_LIMIT,
    maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_READ_IDLE_TIMEOUT_MS,
    pageCacheBytes: options.pageCacheBytes ?? DEFAULT_PAGE_CACHE_BYTES,
    maxBufferedBytes: options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
  };
  const { port, pageLimit, maxConnections, idleTimeoutMs, pageCacheBytes, maxBufferedBytes } = s;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalidArgument(`read port must be 0..65535, got ${port}`);
  if (!Number.isSafeInteger(pageLimit) || pageLimit < 1) throw invalidArgument(`page limit must be a positive integer, got ${pageLimit}`);
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 1) throw invalidArgument(`max connections must be a positive integer, got ${maxConnections}`);
  if (!Number.isSafeInteger(idleTimeoutMs) || idleTimeoutMs < 0) throw invalidArgument(`idle timeout must be a non-negative integer, got ${idleTimeoutMs}`);
  if (!Number.isSafeInteger(pageCacheBytes) || pageCacheBytes < 0) throw invalidArgument(`page cache bytes must be a non-negative integer, got ${pageCacheBytes}`);
  if (!Number.isSafeInteger(maxBufferedBytes) || maxBufferedBytes < 1) throw invalidArgument(`max buffered bytes must be a positive integer, got ${maxBufferedBytes}`);
  if (!options.store) throw invalidArgument('a store is required');
  if (options.route !== undefined && typeof options.route !== 'function') throw invalidArgument('route must be a function');
  return s;
}

export async function startReader(options: ReaderOptions): Promise<ReaderHandle> {
  const { sizes, listen, port, pageLimit, maxConnections, idleTimeoutMs, pageCacheBytes, maxBufferedBytes } = settingsOf(options);
  const logger = (options.logger ?? silentLogger).child('read');
  const connections = new Set<ReadConnection>();
  /** Connections closed to admit new ones or to free memory, until their sockets close. */
  const evicting = new Set<ReadConnection>();
  let buffered = 0;
  const ctx: ConnectionContext = {
    store: options.store,
    route: options.route,
    sizes,
    pageLimit: BigInt(pageLimit),
    pageCache: pageCacheBytes > 0 ? new PageCache(pageCacheBytes) : undefined,
    health: options.health ?? (() => NO_WORKER),
    idleTimeoutMs,
    logger,
    highWater: Math.max(INPUT_HIGH_WATER, readRequestSize(sizes) + sizes.keySize + 8),
    buffered(delta) {
      buffered += delta;
      readBuffered.bytes += delta;
      if (delta > 0 && buffered > maxBufferedBytes && shedNonReader(connections, evicting)) shed();
    },
  };
  const shed = everyTenSeconds(() => logger.warn('read answers held over the memory budget: closed the connection whose client reads slowest', { maxBufferedBytes }));
  const refused = everyTenSeconds(() => logger.warn('connection refused: every connection is being answered', { maxConnections }));
  const server = net.createServer({ allowHalfOpen: true, noDelay: true });
  server.on('connection', (socket) => {
    if (connections.size - evicting.size >= maxConnections && !evictIdle(connections, evicting)) {
      socket.destroy();
      refused();
      return;
    }
    const conn = new ReadConnection(socket, ctx);
    connections.add(conn);
    metrics.readConnections.inc();
    socket.once('close', () => {
      connections.delete(conn);
      evicting.delete(conn);
      metrics.readConnections.dec();
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(new CountdError(ErrorCodes.IO_ERROR, `read server cannot listen on ${listen}:${port}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(port, listen, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger.error('read server error', { error: err.message }));
  const addr = server.address() as net.AddressInfo;
  logger.info('listening', { address: addr.address, port: addr.port, pageLimit });

  let closing: Promise<void> | undefined;
  return {
    port: addr.port,
    address: addr.address,
    get connections() {
      return connections.size;
    },
    get bufferedBytes() {
      return buffered;
    },
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        const all = [...connections].map((c) => c.shutdown());
        const timer = setTimeout(() => {
          for (const c of connections) c.destroy();
        }, CLOSE_GRACE_MS);
        await Promise.all(all);
        clearTimeout(timer);
        await closed;
        logger.info('closed');
      })();
      return closing;
    },
  };
}

/** `log`, at most once every ten seconds: a flood of events must not flood the log. */
function everyTenSeconds(log: () => void): () => void {
  let last = -Infinity;
  return () => {
    if (Date.now() - last < 10_000) return;
    last = Date.now();
    log();
  };
}

/** Over the buffered-bytes budget: close the connection whose client has not read its answer the longest. */
function shedNonReader(connections: Set<ReadConnection>, evicting: Set<ReadConnection>): boolean {
  let worst: ReadConnection | undefined;
  for (const c of connections) if (c.blocked && !evicting.has(c) && (worst === undefined || c.lastActive < worst.lastActive)) worst = c;
  if (worst === undefined) return false;
  evicting.add(worst);
  worst.destroy();
  return true;
}

interface ConnectionContext {
  store: ReadableStore;
  sizes: FieldSizes;
  pageLimit: bigint;
  idleTimeoutMs: number;
  logger: Logger;
  highWater: number;
  pageCache: PageCache | undefined;
  route: ReaderOptions['route'];
  health: () => HealthReport;
  /** Bytes held by connections changed by `delta` (counted against maxBufferedBytes). */
  buffered(delta: number): void;
}

/**
 * At the connection limit, close the connection idle the longest among those
 * not answering a request (one holding part of a request counts as idle).
 * False when every connection is being answered.
 */
function evictIdle(connections: Set<ReadConnection>, evicting: Set<ReadConnection>): boolean {
  let best: ReadConnection | undefined;
  for (const c of connections) {
    if (evicting.has(c) || c.busy) continue;
    if (best === undefined || c.lastActive < best.lastActive) best = c;
  }
  if (best === undefined) return false;
  evicting.add(best);
  best.destroy();
  return true;
}

class ReadConnection {
  readonly #socket: net.Socket;
  readonly #ctx: ConnectionContext;
  readonly #decoder: ReadRequestDecoder;
  #running = false;
  #inputEnded = false;
  #finished = false; // no more requests will be answered
  #paused = false;
  /** An answer waits for the client to read (socket draining). */
  #blocked = false;
  /** Bytes counted for this connection in ctx.buffered. */
  #held = 0;
  #closed: Promise<void>;
  /** When bytes last came in or an answer went out (ms, monotonic enough for ordering). */
  lastActive = performance.now();

  constructor(socket: net.Socket, ctx: ConnectionContext) {
    this.#socket = socket;
    this.#ctx = ctx;
    this.#decoder = new ReadRequestDecoder(ctx.sizes);
    this.#closed = new Promise((resolve) =>
      socket.once('close', () => {
        ctx.buffered(-this.#held);
        this.#held = 0;
        resolve();
      }),
    );
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => {
      this.#inputEnded = true;
      this.#pump();
    });
    socket.on('error', (err) => ctx.logger.debug('connection error', { error: err.message }));
    if (ctx.idleTimeoutMs > 0) {
      socket.setTimeout(ctx.idleTimeoutMs, () => {
        if (!this.busy) {
          ctx.logger.debug('closing idle connection');
          socket.destroy();
        }
      });
    }
  }

  /** Answer what is being answered, then close. */
  shutdown(): Promise<void> {
    this.#finish();
    return this.#closed;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /**
   * Answering a request. A connection whose client does not read its answers
   * (waiting for the socket to drain) is not busy: it may be closed like an idle one.
   */
  get busy(): boolean {
    return this.#running && !this.#blocked;
  }

  /** Its client has not read an answer yet. */
  get blocked(): boolean {
    return this.#blocked;
  }

  /** Count what the connection holds now: requests read ahead, answers not yet read by the client. */
  #account(): void {
    if (this.#socket.destroyed) return; // counted off on close
    const now = this.#decoder.buffered + this.#socket.writableLength;
    if (now === this.#held) return;
    const delta = now - this.#held;
    this.#held = now;
    this.#ctx.buffered(delta);
  }

  #onData(chunk: Buffer): void {
    this.lastActive = performance.now();
    if (this.#finished) return;
    this.#decoder.push(chunk);
    this.#account();
    if (this.#decoder.buffered > this.#ctx.highWater && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
    this.#pump();
  }

  /** Stop reading and end the connection once the current answer is written. */
  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#socket.pause();
    if (!this.#running) this.#socket.end();
  }

  #pump(): void {
    if (this.#running || this.#finished) return;
    this.#running = true;
    this.#loop().then(
      () => {
        this.#running = false;
        if (this.#finished) this.#socket.end();
      },
      (err: unknown) => {
        this.#running = false;
        this.#ctx.logger.error('read failed; closing the connection', { error: err instanceof Error ? err.message : String(err) });
        this.#socket.destroy();
      },
    );
  }

  async #loop(): Promise<void> {
    const socket = this.#socket;
    while (!this.#finished && !socket.destroyed) {
      const item = this.#decoder.next();
      if (this.#paused && this.#decoder.buffered <= this.#ctx.highWater / 2) {
        this.#paused = false;
        socket.resume();
      }
      if (item === undefined) {
        // Nothing complete is buffered. A client that half-closed gets its answers, then our FIN.
        if (this.#inputEnded) this.#finished = true;
        return;
      }
      if ('malformed' in item) {
        metrics.readRequests.inc({ kind: 'malformed' });
        this.#ctx.logger.debug('malformed request; closing the connection', { reason: item.malformed });
        socket.write(STATUS_MALFORMED);
        this.#finished = true;
        return;
      }
      const started = process.hrtime.bigint();
      const response = await this.#answer(item);
      metrics.readSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      if (socket.destroyed) return;
      this.lastActive = performance.now();
      if (!socket.write(response)) {
        this.#blocked = true;
        this.#account();
        await new Promise<void>((resolve) => {
          const done = (): void => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          socket.on('drain', done);
          socket.on('close', done);
        });
        this.#blocked = false;
      }
      this.#account();
    }
  }

  async #answer(req: ReadRequest): Promise<Buffer> {
    const { sizes, pageLimit, route } = this.#ctx;
    const store = (route !== undefined && 'keyspace' in req && route(req.keyspace)) || this.#ctx.store;
    if ('length' in req && req.length > pageLimit) {
      metrics.readRequests.inc({ kind: 'too-large' });
      return STATUS_TOO_LARGE;
    }
    metrics.readRequests.inc({ kind: req.op });
    switch (req.op) {
      case 'page': {
        const version = store.version;
        const cache = version === undefined ? undefined : this.#ctx.pageCache;
        const key = cache && PageCache.key(req.keyspace, req.offset, req.length);
        const hit = key && cache.get(key, version!);
        if (hit) {
          metrics.readCacheHits.inc();
          return hit;
        }
        const response = encodePageResponse(await store.page(req.keyspace, req.offset, Number(req.length)), sizes);
        if (key) cache.set(key, version!, response);
        return response;
      }
      case 'get': {
        const count = await store.get(req.keyspace, req.key);
        return encodePageResponse(count === undefined ? [] : [{ key: req.key, count }], sizes);
      }
      case 'rank':
      case 'around': {
        // rank = around with a window of one: the key's rank and count from one snapshot.
        const n = req.op === 'rank' ? 1 : Number(req.length);
        const found = await store.around(req.keyspace, req.key, n);
        return found === undefined ? encodePositionedResponse(0, [], sizes) : encodePositionedResponse(found.offset, found.entries, sizes);
      }
      case 'keyspaces': {
        const all = await store.keyspaces();
        all.sort((a, b) => Buffer.compare(a.name, b.name));
        const from = req.offset >= BigInt(all.length) ? all.length : Number(req.offset);
        return encodeKeyspacesResponse(all.slice(from, from + Number(req.length)), sizes);
      }
      case 'dense': {
        const found = await store.denseRank(req.keyspace, req.key);
        return encodeDenseResponse(found && { rank: found.rank, dense: found.dense, entry: { key: req.key, count: found.count } }, sizes);
      }
      case 'count':
        return encodeCountResponse(await store.countKeys(req.keyspace, { min: req.min }));
      case 'settings': {
        const all = await store.keyspaceSettings();
        const from = req.offset >= BigInt(all.length) ? all.length : Number(req.offset);
        return encodeSettingsResponse(all.slice(from, from + Number(req.length)), sizes);
      }
      case 'hello':
        return encodeHelloResponse(sizes, req.version < READ_EXTENSIONS_VERSION ? req.version : READ_EXTENSIONS_VERSION);
      case 'health':
        return encodeHealthResponse(this.#ctx.health());
    }
  }
}
