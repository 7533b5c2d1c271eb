// Reads of a keyspace this node does not own, answered by the partition's
// owner over its read port (the client library), in the shape the reader
// expects of a store. No version: the page cache never holds these answers.

import { Client } from '../client/client.js';
import type { FieldSizes } from '../protocol/fields.js';
import type { Entry } from '../store/store.js';

export class RemoteStore {
  readonly version = undefined;
  readonly #client: Client;

  constructor(address: string, sizes: FieldSizes) {
    const i = address.lastIndexOf(':');
    this.#client = new Client({ host: address.slice(0, i), readPort: Number(address.slice(i + 1)), keyspaceSize: sizes.keyspaceSize, keySize: sizes.keySize });
  }

  page(keyspace: Uint8Array, offset: number | bigint, length: number): Promise<Entry[]> {
    return this.#client.page(keyspace, offset, length);
  }

  get(keyspace: Uint8Array, key: Uint8Array): Promise<bigint | undefined> {
    return this.#client.get(keyspace, key);
  }

  async around(keyspace: Uint8Array, key: Uint8Array, n: number): Promise<{ offset: number; entries: Entry[] } | undefined> {
    const found = await this.#client.around(keyspace, key, n);
    if (found.length === 0) return undefined;
    return { offset: Number(found[0]!.rank), entries: found.map((e) => ({ key: e.key, count: e.count })) };
  }

  async denseRank(keyspace: Uint8Array, key: Uint8Array): Promise<{ rank: number; dense: number; count: bigint } | undefined> {
    const found = await this.#client.denseRank(keyspace, key);
    return found === undefined ? undefined : { rank: Number(found.rank), dense: Number(found.dense), count: found.count };
  }

  async countKeys(keyspace: Uint8Array, options: { min?: bigint } = {}): Promise<number> {
    return Number(await this.#client.count(keyspace, options));
  }

  async keyspaces(): Promise<never> {
    throw new Error('keyspaces are listed by each node itself');
  }

  async keyspaceSettings(): Promise<never> {
    throw new Error('keyspaces are listed by each node itself');
  }

  close(): Promise<void> {
    return this.#client.close();
  }
}
