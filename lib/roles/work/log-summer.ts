// The worker's side of its summing thread (summer-thread.ts; messages in
// summer-protocol.ts). A session sums one batch: begin(), add() chunks of
// claimed logs, finish() -> IncrementBatch. If the thread dies mid-session,
// everything of that session fails (CountdError COUNTD_IO_ERROR): the worker
// then releases its logs dirty and retries them, so a log reported 'apply'
// is never applied without its entries. A new thread starts on next use.

import { Worker } from 'node:worker_threads';
import { CountdError, ErrorCodes } from '../../errors.js';
import type { FieldSizes } from '../../protocol/fields.js';
import type { IncrementBatch } from '../../store/increment-batch.js';
import type { WindowSettings } from '../../store/windows.js';
import { batchFromSummed } from './summed-batch.js';
import type { LogOutcome, LogToSum, SummerReply, SummerRequest } from './summer-protocol.js';

type Pending = { resolve: (reply: SummerReply) => void; reject: (err: Error) => void };
type Request = SummerRequest extends infer R ? (R extends SummerRequest ? Omit<R, 'id'> : never) : never;

export class LogSummer {
  readonly #sizes: FieldSizes;
  #thread: Worker | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #session = 0;
  /** The session begun on the current thread, or -1. */
  #open = -1;
  #closed = false;

  constructor(sizes: FieldSizes) {
    this.#sizes = sizes;
  }

  /** Start a new batch (any unfinished one is dropped); `declared`: the operators of declared keyspaces (Store#operators()); `windows`: the windowed ones (Store#windows()). */
  async begin(declared: ReadonlyMap<string, number> = new Map(), windows: ReadonlyMap<string, WindowSettings> = new Map()): Promise<void> {
    const session = ++this.#session;
    this.#open = -1;
    await this.#call({ op: 'begin', session, sizes: this.#sizes, declared: [...declared], windows: [...windows] });
    this.#open = session;
  }

  /**
   * Read, verify and sum `logs` into the batch, in order, until it holds
   * `maxKeys` distinct keys (the rest come back 'deferred', not read): what
   * happened to each, and the batch's distinct keys so far.
   */
  async add(logs: LogToSum[], maxKeys = Number.MAX_SAFE_INTEGER): Promise<{ logs: LogOutcome[]; keys: number }> {
    const reply = await this.#call({ op: 'add', session: this.#current(), logs, maxKeys });
    if (reply.ok !== true || reply.op !== 'add') throw this.#protocolError(reply);
    return { logs: reply.logs, keys: reply.keys };
  }

  /** The summed batch of every log reported 'apply' since begin(). */
  async finish(): Promise<IncrementBatch> {
    const reply = await this.#call({ op: 'finish', session: this.#current() });
    this.#open = -1;
    if (reply.ok !== true || reply.op !== 'finish') throw this.#protocolError(reply);
    return batchFromSummed(reply.batch);
  }

  /** The running thread, if any (for tests: terminating it must fail the session). */
  get thread(): Worker | undefined {
    return this.#thread;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const thread = this.#thread;
    this.#thread = undefined;
    if (thread !== undefined) await thread.terminate();
  }

  #current(): number {
    if (this.#open < 0) throw new CountdError(ErrorCodes.IO_ERROR, 'the summing thread lost its batch (it exited); the logs will be retried');
    return this.#open;
  }

  #protocolError(reply: SummerReply): CountdError {
    return new CountdError(ErrorCodes.IO_ERROR, `summing thread: ${reply.ok ? `unexpected reply to ${reply.op}` : reply.error}`);
  }

  #call(request: Request): Promise<SummerReply> {
    if (this.#closed) return Promise.reject(new CountdError(ErrorCodes.CLOSED, 'the log summer is closed'));
    const thread = this.#start();
    const id = this.#nextId++;
    // Referenced only while a request waits: an idle summer keeps no process alive.
    thread.ref();
    return new Promise<SummerReply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      thread.postMessage({ ...request, id } as SummerRequest);
    }).then((reply) => {
      if (!reply.ok) throw this.#protocolError(reply);
      if (reply.session !== (request as { session: number }).session) throw this.#protocolError(reply);
      return reply;
    });
  }

  #start(): Worker {
    if (this.#thread !== undefined) return this.#thread;
    const thread = new Worker(new URL('./summer-thread.js', import.meta.url));
    thread.unref();
    thread.on('message', (reply: SummerReply) => {
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) thread.unref();
      pending?.resolve(reply);
    });
    const fail = (why: string): void => {
      if (this.#thread === thread) {
        this.#thread = undefined;
        this.#open = -1;
      }
      const err = new CountdError(ErrorCodes.IO_ERROR, `the summing thread ${why}; the logs will be retried`);
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    thread.on('error', (err) => fail(`failed: ${err.message}`));
    thread.on('exit', (code) => fail(`exited with code ${code}`));
    this.#thread = thread;
    return thread;
  }
}
