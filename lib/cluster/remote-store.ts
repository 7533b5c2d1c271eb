// Reads of a keyspace another node owns, answered by that node over its peer
// read port (the client library), in the shape the reader expects of a store
// (routed-store.ts picks the owner). The period of a windowed keyspace's read
// (`ago`) goes along; the owner reads it against its own clock.

import { Client } from '../client/client.js';
import { CountdError, ErrorCodes } from '../errors.js';
import type { FieldSizes } from '../protocol/fields.js';
import { PeriodNotKeptError, type PeriodChoice } from '../store/periods.js';
import type { Entry } from '../store/store.js';

export class RemoteStore {
  readonly #client: Client;

  constructor(address: string, sizes: FieldSizes) {
    const i = address.lastIndexOf(':');
    this.#client = new Client({ host: address.slice(0, i), readPort: Number(address.slice(i + 1)), keyspaceSize: sizes.keyspaceSize, keySize: sizes.keySize });
  }

  page(keyspace: Uint8Array, offset: number | bigint, length: number, at?: PeriodChoice): Promise<Entry[]> {
    return notKept(this.#client.page(keyspace, offset, length, ago(at)));
  }

  get(keyspace: Uint8Array, key: Uint8Array, at?: PeriodChoice): Promise<bigint | undefined> {
    return notKept(this.#client.get(keyspace, key, ago(at)));
  }

  async around(keyspace: Uint8Array, key: Uint8Array, n: number, at?: PeriodChoice): Promise<{ offset: number; entries: Entry[] } | undefined> {
    const found = await notKept(this.#client.around(keyspace, key, n, ago(at)));
    if (found.length === 0) return undefined;
    return { offset: Number(found[0]!.rank), entries: found.map((e) => ({ key: e.key, count: e.count })) };
  }

  async denseRank(keyspace: Uint8Array, key: Uint8Array, at?: PeriodChoice): Promise<{ rank: number; dense: number; count: bigint } | undefined> {
    const found = await notKept(this.#client.denseRank(keyspace, key, ago(at)));
    return found === undefined ? undefined : { rank: Number(found.rank), dense: Number(found.dense), count: found.count };
  }

  async countKeys(keyspace: Uint8Array, options: { min?: bigint } = {}, at?: PeriodChoice): Promise<number> {
    return Number(await notKept(this.#client.count(keyspace, { ...options, ...ago(at) })));
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}

function ago(at: PeriodChoice | undefined): { ago?: number } {
  return at?.ago ? { ago: at.ago } : {};
}

/** The owner's "period not kept" (n = -3) answered as this node's reader answers its own. */
async function notKept<T>(read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (err) {
    // The client names the period in its message; the answer's n = -3 is in the message of its cause.
    for (let e: unknown = err; e instanceof CountdError && e.code === ErrorCodes.INVALID_ARGUMENT; e = e.cause) {
      if (/\(n = -3\)/.test(e.message)) throw new PeriodNotKeptError((err as Error).message);
    }
    throw err;
  }
}
