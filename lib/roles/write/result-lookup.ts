// The key's count and rank for a write that asked for them (FLAG_RESULT,
// docs/write-protocol-extensions.md "Count and rank in the reply"): once the
// write is durable the writer asks the read port of its pool's database, on
// one pipelined connection, to await the write's token and then rank the
// key; the two are answered in order, so the rank reads a snapshot that holds
// the write. A lost connection (the store child restarting, say) is opened
// again until RESULT_WAIT_MS has passed since the write was durable; then,
// or when the await times out, the answer is ResultState.unknown (the write
// stays durable and is applied all the same).

import { ReadConnection } from '../../client/read-connection.js';
import { CountdError, ErrorCodes } from '../../errors.js';
import type { FieldSizes } from '../../protocol/fields.js';
import type { ReadResponse } from '../../protocol/read-response.js';
import { RESULT_WAIT_MS, ResultState, type ReplyResult } from '../../protocol/write-ops.js';
import type { Logger } from '../../util/log.js';

/** Pause before the read port is tried again after a lost connection. */
const RETRY_MS = 50;

export const UNKNOWN_RESULT: ReplyResult = { state: ResultState.unknown, count: 0n, rank: 0n };

export class ResultLookup {
  #conn: ReadConnection | undefined;
  #closed = false;

  constructor(
    readonly endpoint: { host: string; port: number },
    readonly sizes: FieldSizes,
    readonly logger: Logger,
    readonly waitMs: number = RESULT_WAIT_MS,
  ) {}

  /** The count and rank of `keyspace`/`key` once every write up to `token` is applied. */
  async lookup(keyspace: Buffer, key: Buffer, token: bigint): Promise<ReplyResult> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0 || this.#closed) return UNKNOWN_RESULT;
      try {
        return await this.#ask(keyspace, key, token, left);
      } catch (err) {
        if (err instanceof CountdError && err.code === ErrorCodes.TOKEN_TIMEOUT) return UNKNOWN_RESULT;
        this.logger.debug('result lookup: the read port did not answer; retrying', { error: (err as Error).message });
        await new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_MS, Math.max(1, left))));
      }
    }
  }

  async #ask(keyspace: Buffer, key: Buffer, token: bigint, timeoutMs: number): Promise<ReplyResult> {
    if (this.#conn === undefined || !this.#conn.usable) this.#conn = new ReadConnection(this.endpoint, this.sizes);
    const conn = this.#conn;
    const waited = conn.request({ op: 'await', token, timeoutMs });
    const ranked = conn.request({ op: 'rank', keyspace, key });
    ranked.catch(() => {});
    await waited;
    const res = (await ranked) as Extract<ReadResponse, { op: 'rank' | 'around'; status: 'ok' }>;
    const entry = res.entries[0];
    return entry === undefined ? { state: ResultState.absent, count: 0n, rank: 0n } : { state: ResultState.found, count: entry.count, rank: res.first };
  }

  /** Lookups under way answer ResultState.unknown at once. */
  close(): void {
    this.#closed = true;
    this.#conn?.destroy();
  }
}
