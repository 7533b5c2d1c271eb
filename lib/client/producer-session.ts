// An idempotent producer's writes (docs/write-protocol-extensions.md,
// version 2): every write carries (producer id, epoch, sequence), so sending
// it again is safe: the writer answers a copy of a write it made durable
// "duplicate" and applies it once. This session therefore retries by itself:
// when the connection is lost (or answers ERR) before a write's reply, it
// opens a new connection and sends every unanswered write again, in
// sequence order, with the same sequence numbers.
//
// It gives up on a write after `retries` attempts (COUNTD_CONNECTION: it may
// or may not be applied; it is never applied twice). The writes given up
// leave a gap in the sequence, so the session then moves to the next epoch
// and numbers from 0 again (Kafka bumps the epoch the same way); the old
// epoch is fenced, so a late copy of a given-up write is never applied.

import { CountdError, ErrorCodes, isCountdError } from '../errors.js';
import type { FieldSizes } from '../protocol/fields.js';
import { WRITE_OPS_PRODUCERS, encodeHello } from '../protocol/write-ops.js';
import type { Endpoint } from './connection.js';
import { WriteConnection, type WriteAck } from './write-connection.js';

export interface ProducerOptions {
  /** The producer id, 1 … 2^64 − 1: the same for every instance of one logical writer. */
  id: bigint | number;
  /**
   * This instance's epoch, 0 … 2^32 − 1: an instance with a higher epoch
   * fences those with a lower one. Default: the time in seconds when the
   * Client was created (a restarted instance fences the old one).
   */
  epoch?: number;
  /** Sequence number of the first write (default 0). */
  sequence?: bigint | number;
  /** Attempts per write before giving up (default 10). */
  retries?: number;
  /** Delay before reconnecting, doubled per attempt up to 2 s (default 50 ms). */
  retryDelayMs?: number;
}

interface Entry {
  frame: () => Buffer;
  resolve(ack: WriteAck): void;
  reject(err: Error): void;
  attempts: number;
  /** The connection it was last sent on. */
  sentOn: WriteConnection | undefined;
  done: boolean;
}

const MAX_DELAY_MS = 2000;

export class ProducerSession {
  readonly id: bigint;
  epoch: number;
  /** The next write's sequence number. */
  sequence: bigint;
  readonly #endpoint: Endpoint;
  readonly #sizes: FieldSizes;
  readonly #retries: number;
  readonly #delayMs: number;
  #conn: WriteConnection | undefined;
  #connecting: Promise<void> | undefined;
  /** Writes not answered yet, in sequence order (a Set keeps insertion order and deletes in O(1)). */
  #unacked = new Set<Entry>();
  #fenced: CountdError | undefined;
  #closed = false;

  constructor(endpoint: Endpoint, sizes: FieldSizes, id: bigint, epoch: number, sequence: bigint, retries: number, delayMs: number) {
    this.#endpoint = endpoint;
    this.#sizes = sizes;
    this.id = id;
    this.epoch = epoch;
    this.sequence = sequence;
    this.#retries = retries;
    this.#delayMs = delayMs;
  }

  /**
   * Send the write `encode(epoch, sequence)` builds, with the next sequence
   * (or `sequence` when given; later writes follow it). Resolves once
   * durable (or a duplicate of a durable one).
   */
  send(encode: (epoch: number, sequence: bigint) => Buffer, sequence?: bigint): Promise<WriteAck> {
    if (this.#fenced) return Promise.reject(this.#fenced);
    if (this.#closed) return Promise.reject(new CountdError(ErrorCodes.CLOSED, 'the client is closed'));
    const seq = sequence ?? this.sequence;
    this.sequence = seq + 1n;
    const epoch = this.epoch;
    const frame = encode(epoch, seq); // validates: throws before anything is queued
    return new Promise<WriteAck>((resolve, reject) => {
      const entry: Entry = { frame: () => frame, resolve, reject, attempts: 0, sentOn: undefined, done: false };
      this.#unacked.add(entry);
      this.#pump();
    });
  }

  /** Wait for every write in flight, then close. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#unacked].map((e) => new Promise<void>((resolve) => {
      const { resolve: ok, reject: ko } = e;
      e.resolve = (a) => (ok(a), resolve());
      e.reject = (err) => (ko(err), resolve());
    })));
    await this.#conn?.close();
  }

  /** Send what waits on the current connection, or open one. */
  #pump(): void {
    const conn = this.#conn;
    if (conn === undefined || !conn.usable) {
      this.#connect();
      return;
    }
    for (const entry of this.#unacked) {
      if (entry.done || entry.sentOn === conn) continue;
      entry.sentOn = conn;
      entry.attempts++;
      conn.send2(entry.frame()).then(
        (ack) => this.#settle(entry, ack),
        (err: unknown) => this.#failed(entry, conn, err as Error),
      );
    }
  }

  #connect(): void {
    if (this.#connecting !== undefined || this.#closed) return;
    let attempt = 0;
    for (const e of this.#unacked) attempt = Math.max(attempt, e.attempts);
    const delay = attempt === 0 ? 0 : Math.min(MAX_DELAY_MS, this.#delayMs * 2 ** (attempt - 1));
    this.#connecting = (async () => {
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      const conn = new WriteConnection(this.#endpoint);
      try {
        await conn.hello(encodeHello(this.#sizes, WRITE_OPS_PRODUCERS));
        if (conn.version < WRITE_OPS_PRODUCERS) {
          void conn.close();
          throw new CountdError(ErrorCodes.REJECTED, `the writer speaks version ${conn.version} of the extended write protocol: idempotent producers need version 2 (countd 0.6.0 with a read port; not in cluster mode)`);
        }
        this.#conn = conn;
      } catch (err) {
        conn.destroy();
        if (isCountdError(err, ErrorCodes.REJECTED)) {
          const all = [...this.#unacked];
          this.#unacked.clear();
          for (const e of all) e.reject(err as Error);
          return;
        }
        // Could not connect: each waiting write has used an attempt.
        for (const e of this.#unacked) e.attempts++;
        this.#giveUpExhausted(err as Error);
      }
    })().finally(() => {
      this.#connecting = undefined;
      if (this.#unacked.size > 0) this.#pump();
    });
  }

  #settle(entry: Entry, ack: WriteAck): void {
    entry.done = true;
    this.#remove(entry);
    entry.resolve(ack);
  }

  #failed(entry: Entry, conn: WriteConnection, err: Error): void {
    if (entry.done) return;
    const retryable = isCountdError(err, ErrorCodes.CONNECTION) || isCountdError(err, ErrorCodes.SERVER_ERROR);
    if (!retryable) {
      entry.done = true;
      this.#remove(entry);
      if (isCountdError(err, ErrorCodes.FENCED)) this.#fence(err);
      entry.reject(err);
      return;
    }
    if (this.#conn === conn) this.#conn = undefined;
    this.#giveUpExhausted(err);
    if (!entry.done) this.#pump();
  }

  /** Writes that used every attempt are rejected; the session moves to the next epoch (their sequences leave a gap). */
  #giveUpExhausted(err: Error): void {
    const out = [...this.#unacked].filter((e) => !e.done && e.attempts >= this.#retries);
    if (out.length === 0) return;
    for (const e of out) {
      e.done = true;
      this.#remove(e);
      e.reject(new CountdError(ErrorCodes.CONNECTION, `gave up after ${e.attempts} attempts (${err.message}): the write may or may not have been applied, never twice`, { cause: err }));
    }
    // Later writes of this epoch would follow a gap: start the next epoch (fencing any late copy of those given up).
    if (this.#unacked.size === 0 && this.epoch < 0xffff_ffff) {
      this.epoch++;
      this.sequence = 0n;
    }
  }

  #fence(err: CountdError): void {
    this.#fenced = err;
    const all = [...this.#unacked];
    this.#unacked.clear();
    for (const e of all) {
      e.done = true;
      e.reject(err);
    }
  }

  #remove(entry: Entry): void {
    this.#unacked.delete(entry);
  }
}
