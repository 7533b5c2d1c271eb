// One TCP connection to a countd server with pipelined requests: requests are
// written back to back (batched into one socket write per tick), replies come
// in request order and settle the oldest pending call. A connection that
// fails rejects every call still pending on it and is never reused: the Client
// opens a new one for the next call (lazy reconnect). Calls are never retried
// here, because an increment whose reply was lost may or may not have applied.

import net from 'node:net';
import { CountdError, ErrorCodes } from '../errors.js';
import { PendingQueue } from './pending.js';

export interface Endpoint {
  host: string;
  port: number;
}

export abstract class Connection<P extends { reject(err: Error): void }> {
  protected readonly pending = new PendingQueue<P>();
  readonly #endpoint: Endpoint;
  readonly #what: string;
  #socket: net.Socket | undefined;
  #out: Buffer[] = [];
  #flushScheduled = false;
  /** Set once the connection may take no more calls (failed, closing, or the server ended it). */
  #dead = false;
  #closing = false;
  #closed: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;

  constructor(endpoint: Endpoint, what: string) {
    this.#endpoint = endpoint;
    this.#what = what;
  }

  /** False once this connection takes no more calls; the owner then opens a new one. */
  get usable(): boolean {
    return !this.#dead;
  }

  /** Queue one request (already encoded and validated) and the call waiting for its reply. */
  protected enqueue(request: Buffer, call: P): void {
    if (this.#dead) {
      call.reject(this.connectionError('the connection is closed'));
      return;
    }
    if (this.#socket === undefined) this.#open();
    this.pending.push(call);
    this.#out.push(request);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // One write per tick for all calls made in it: 10,000 concurrent calls become a few syscalls.
      setImmediate(() => this.#flush());
    }
  }

  /** Bytes arrived from the server; the subclass parses replies and settles calls. */
  protected abstract onData(chunk: Buffer): void;

  /**
   * Stop taking calls on this connection (after a reply that makes the server
   * close it, e.g. BAD or ERR): later calls go to a new connection.
   */
  protected retire(): void {
    this.#dead = true;
  }

  /** Called by the subclass when the last pending call settled. */
  protected settled(): void {
    if (this.#closing && this.pending.length === 0) this.#socket?.end();
  }

  /** Fail the connection: every pending call rejects with `err` (or a COUNTD_CONNECTION error). */
  protected fail(err?: Error): void {
    this.#dead = true;
    const reason = err ?? this.connectionError('the connection was lost before a reply');
    for (const call of this.pending.drain()) call.reject(reason);
    this.#out = [];
    this.#socket?.destroy();
  }

  protected connectionError(detail: string, cause?: unknown): CountdError {
    const { host, port } = this.#endpoint;
    return new CountdError(ErrorCodes.CONNECTION, `countd ${this.#what} port ${host}:${port}: ${detail}`, { cause });
  }

  /** Let pending calls finish, then close. */
  close(): Promise<void> {
    this.#dead = true;
    this.#closing = true;
    if (this.#socket === undefined || this.#socket.destroyed) return Promise.resolve();
    this.#closed ??= new Promise((resolve) => (this.#resolveClosed = resolve));
    if (this.pending.length === 0) this.#socket.end();
    return this.#closed;
  }

  /** Close at once: pending calls reject with COUNTD_CONNECTION. */
  destroy(): void {
    this.fail(this.connectionError('the client was closed before a reply'));
  }

  #open(): void {
    const { host, port } = this.#endpoint;
    const socket = net.connect({ host, port });
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.onData(chunk);
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)));
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const detail =
        err.code === 'ECONNREFUSED'
          ? 'connection refused (is the daemon running?)'
          : `${err.code ?? err.message}${this.pending.length > 0 ? ' before a reply' : ''}`;
      this.fail(this.connectionError(detail, err));
    });
    socket.on('close', () => {
      this.#dead = true;
      if (this.pending.length > 0) this.fail(this.connectionError('the server closed the connection before a reply'));
      this.#resolveClosed?.();
    });
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#out.length === 0 || this.#socket === undefined || this.#socket.destroyed) return;
    const data = this.#out.length === 1 ? this.#out[0]! : Buffer.concat(this.#out);
    this.#out = [];
    this.#socket.write(data);
  }
}
