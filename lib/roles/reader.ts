// countd-read: serves ranked pages over TCP (docs/protocol.md section 2) and the
// extension ops of docs/read-protocol-extensions.md (get, rank, around,
// keyspaces, hello).
//
// One connection is a stream of pipelined requests answered strictly in
// order: requests are decoded lazily from the connection's buffer and
// answered one at a time. Memory per connection stays bounded: the socket is
// paused while more than INPUT_HIGH_WATER bytes of requests wait, and no
// request is answered while the socket's output waits to drain.

import net from 'node:net';
import { CountdError, ErrorCodes, invalidArgument } from '../errors.js';
import { metrics } from '../metrics.js';
import { FieldSizes, checkFieldSizes, readRequestSize } from '../protocol/fields.js';
import { DEFAULT_HOST, DEFAULT_READ_PORT } from '../protocol/ports.js';
import { ReadRequest, ReadRequestDecoder } from '../protocol/read-request.js';
import {
  N_MALFORMED,
  N_PAGE_TOO_LARGE,
  encodeHelloResponse,
  encodeKeyspacesResponse,
  encodePageResponse,
  encodePositionedResponse,
  encodeStatusResponse,
} from '../protocol/read-response.js';
import { Logger, silentLogger } from '../util/log.js';
import type { Store } from '../store/store.js';
import { PageCache, type VersionedStore } from './read/page-cache.js';

export const DEFAULT_PAGE_LIMIT = 10_000;
export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_PAGE_CACHE_BYTES = 32 * 1024 * 1024;

/** The part of Store the reader uses (tests may pass a model of it). */
export type ReadableStore = Pick<Store, 'page' | 'get' | 'around' | 'keyspaces'> & VersionedStore;

export interface ReaderOptions {
  store: ReadableStore;
  sizes: FieldSizes;
  /** Address to listen on; default 127.0.0.1. */
  listen?: string;
  /** Port; default 48880; 0 picks a free port. */
  port?: number;
  /** Largest `length` answered; above it the answer is n = -2. Default 10,000. */
  pageLimit?: number;
  /** Connections beyond this are refused. Default 1024. */
  maxConnections?: number;
  /** Close a connection idle (no bytes either way, nothing pending) this long; 0 (default) = never. */
  idleTimeoutMs?: number;
  /** Bytes of encoded page responses kept between applies (page-cache.ts); 0 = no cache. Default 32 MiB. */
  pageCacheBytes?: number;
  /**
   * Cluster mode: the store that answers for a keyspace this node does not
   * own (its owner, over the read port: lib/cluster/), or undefined to answer
   * from `store`.
   */
  route?: (keyspace: Buffer) => ReadableStore | undefined;
  logger?: Logger;
}

export interface ReaderHandle {
  readonly port: number;
  readonly address: string;
  /** Stop accepting, finish the request each connection is answering, close every connection. */
  close(): Promise<void>;
}

const STATUS_MALFORMED = encodeStatusResponse(N_MALFORMED);
const STATUS_TOO_LARGE = encodeStatusResponse(N_PAGE_TOO_LARGE);
/** Requests waiting in a connection's input before it stops reading, in bytes. */
const INPUT_HIGH_WATER = 256 * 1024;
const CLOSE_GRACE_MS = 5000;

export async function startReader(options: ReaderOptions): Promise<ReaderHandle> {
  const sizes = checkFieldSizes(options.sizes);
  const listen = options.listen ?? DEFAULT_HOST;
  const port = options.port ?? DEFAULT_READ_PORT;
  const pageLimit = options.pageLimit ?? DEFAULT_PAGE_LIMIT;
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const idleTimeoutMs = options.idleTimeoutMs ?? 0;
  const pageCacheBytes = options.pageCacheBytes ?? DEFAULT_PAGE_CACHE_BYTES;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalidArgument(`read port must be 0..65535, got ${port}`);
  if (!Number.isSafeInteger(pageLimit) || pageLimit < 1) throw invalidArgument(`page limit must be a positive integer, got ${pageLimit}`);
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 1) throw invalidArgument(`max connections must be a positive integer, got ${maxConnections}`);
  if (!Number.isSafeInteger(idleTimeoutMs) || idleTimeoutMs < 0) throw invalidArgument(`idle timeout must be a non-negative integer, got ${idleTimeoutMs}`);
  if (!Number.isSafeInteger(pageCacheBytes) || pageCacheBytes < 0) throw invalidArgument(`page cache bytes must be a non-negative integer, got ${pageCacheBytes}`);
  if (!options.store) throw invalidArgument('a store is required');
  if (options.route !== undefined && typeof options.route !== 'function') throw invalidArgument('route must be a function');
  const logger = (options.logger ?? silentLogger).child('read');
  const ctx: ConnectionContext = {
    store: options.store,
    route: options.route,
    sizes,
    pageLimit: BigInt(pageLimit),
    pageCache: pageCacheBytes > 0 ? new PageCache(pageCacheBytes) : undefined,
    idleTimeoutMs,
    logger,
    highWater: Math.max(INPUT_HIGH_WATER, readRequestSize(sizes) + sizes.keySize + 8),
  };

  const connections = new Set<ReadConnection>();
  const server = net.createServer({ allowHalfOpen: true, noDelay: true });
  server.maxConnections = maxConnections;
  server.on('connection', (socket) => {
    const conn = new ReadConnection(socket, ctx);
    connections.add(conn);
    metrics.readConnections.inc();
    socket.once('close', () => {
      connections.delete(conn);
      metrics.readConnections.dec();
    });
  });
  server.on('drop', () => logger.warn('connection refused: too many connections', { maxConnections }));

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

interface ConnectionContext {
  store: ReadableStore;
  sizes: FieldSizes;
  pageLimit: bigint;
  idleTimeoutMs: number;
  logger: Logger;
  highWater: number;
  pageCache: PageCache | undefined;
  route: ReaderOptions['route'];
}

class ReadConnection {
  readonly #socket: net.Socket;
  readonly #ctx: ConnectionContext;
  readonly #decoder: ReadRequestDecoder;
  #running = false;
  #inputEnded = false;
  #finished = false; // no more requests will be answered
  #paused = false;
  #closed: Promise<void>;

  constructor(socket: net.Socket, ctx: ConnectionContext) {
    this.#socket = socket;
    this.#ctx = ctx;
    this.#decoder = new ReadRequestDecoder(ctx.sizes);
    this.#closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => {
      this.#inputEnded = true;
      this.#pump();
    });
    socket.on('error', (err) => ctx.logger.debug('connection error', { error: err.message }));
    if (ctx.idleTimeoutMs > 0) {
      socket.setTimeout(ctx.idleTimeoutMs, () => {
        if (!this.#running) {
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

  #onData(chunk: Buffer): void {
    if (this.#finished) return;
    this.#decoder.push(chunk);
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
      if (!socket.write(response)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          socket.on('drain', done);
          socket.on('close', done);
        });
      }
    }
  }

  async #answer(req: ReadRequest): Promise<Buffer> {
    const { sizes, pageLimit, route } = this.#ctx;
    const store = (route !== undefined && req.op !== 'hello' && 'keyspace' in req && route(req.keyspace)) || this.#ctx.store;
    if ('length' in req && req.op !== 'hello' && req.length > pageLimit) {
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
      case 'hello':
        return encodeHelloResponse(sizes);
    }
  }
}
