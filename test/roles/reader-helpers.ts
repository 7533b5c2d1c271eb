// Test helpers for countd-read: an in-memory model of the store's read side
// (rank order by definition, not by an index) and a raw TCP client that
// speaks the read protocol through the codecs under test.

import net from 'node:net';
import { FieldSizes } from '../../lib/protocol/fields.js';
import { ReadOpName } from '../../lib/protocol/read-request.js';
import { ReadEntry, ReadResponse, ReadResponseDecoder } from '../../lib/protocol/read-response.js';

const id = (b: Uint8Array | string): string => Buffer.from(typeof b === 'string' ? Buffer.from(b) : b).toString('latin1');

/** Rank order of docs/protocol.md: count descending, then key bytes ascending. */
export function rankCompare(a: ReadEntry, b: ReadEntry): number {
  if (a.count !== b.count) return a.count > b.count ? -1 : 1;
  return Buffer.compare(a.key, b.key);
}

export class ModelStore {
  readonly spaces = new Map<string, Map<string, bigint>>();

  add(keyspace: string | Buffer, key: string | Buffer, delta: bigint): void {
    if (delta === 0n) return;
    let m = this.spaces.get(id(keyspace));
    if (!m) this.spaces.set(id(keyspace), (m = new Map()));
    m.set(id(key), (m.get(id(key)) ?? 0n) + delta);
  }

  ranked(keyspace: string | Uint8Array): ReadEntry[] {
    const m = this.spaces.get(id(keyspace));
    if (!m) return [];
    return [...m].map(([k, count]) => ({ key: Buffer.from(k, 'latin1'), count })).sort(rankCompare);
  }

  async page(keyspace: string | Uint8Array, offset: number | bigint, length: number): Promise<ReadEntry[]> {
    const all = this.ranked(keyspace);
    if (BigInt(offset) >= BigInt(all.length)) return [];
    return all.slice(Number(offset), Number(offset) + length);
  }

  async get(keyspace: string | Uint8Array, key: string | Uint8Array): Promise<bigint | undefined> {
    return this.spaces.get(id(keyspace))?.get(id(key));
  }

  async rank(keyspace: string | Uint8Array, key: string | Uint8Array): Promise<number | undefined> {
    const i = this.ranked(keyspace).findIndex((e) => id(e.key) === id(key));
    return i < 0 ? undefined : i;
  }

  /** Window of n entries with the key in the middle (Store.around: floor(n / 2) entries before it), shifted to stay inside. */
  async around(keyspace: string | Uint8Array, key: string | Uint8Array, n: number): Promise<{ offset: number; entries: ReadEntry[] } | undefined> {
    const all = this.ranked(keyspace);
    const r = all.findIndex((e) => id(e.key) === id(key));
    if (r < 0) return undefined;
    const start = Math.max(0, Math.min(r - Math.floor(n / 2), all.length - n));
    return { offset: start, entries: all.slice(start, start + n) };
  }

  async size(keyspace: string | Uint8Array): Promise<number> {
    return this.spaces.get(id(keyspace))?.size ?? 0;
  }

  async keyspaces(): Promise<Array<{ name: Buffer; size: number }>> {
    return [...this.spaces].map(([k, m]) => ({ name: Buffer.from(k, 'latin1'), size: m.size }));
  }

  /** Rank, dense rank (distinct counts above) and count of a key, by definition. */
  async denseRank(keyspace: string | Uint8Array, key: string | Uint8Array): Promise<{ rank: number; dense: number; count: bigint } | undefined> {
    const all = this.ranked(keyspace);
    const r = all.findIndex((e) => id(e.key) === id(key));
    if (r < 0) return undefined;
    return { rank: r, dense: new Set(all.filter((e) => e.count > all[r]!.count).map((e) => e.count)).size, count: all[r]!.count };
  }

  async countKeys(keyspace: string | Uint8Array, options: { min?: bigint } = {}): Promise<number> {
    return this.ranked(keyspace).filter((e) => options.min === undefined || e.count >= options.min).length;
  }

  /** Every keyspace with settings all zero (the model declares none). */
  async keyspaceSettings(): Promise<Array<{ name: Buffer; size: number; settings: Buffer }>> {
    return (await this.keyspaces()).map((k) => ({ ...k, settings: Buffer.alloc(16) })).sort((a, b) => Buffer.compare(a.name, b.name));
  }
}

/** A raw read-protocol client: send encoded requests, collect decoded responses. */
export class RawReadClient {
  readonly socket: net.Socket;
  readonly decoder: ReadResponseDecoder;
  readonly responses: ReadResponse[] = [];
  closed = false;
  #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket, sizes: FieldSizes) {
    this.socket = socket;
    this.decoder = new ReadResponseDecoder(sizes);
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let r = this.decoder.next(); r !== undefined; r = this.decoder.next()) this.responses.push(r);
      this.#notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#notify();
    });
    socket.on('error', () => {});
  }

  static connect(port: number, sizes: FieldSizes): Promise<RawReadClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawReadClient(s, sizes)));
      s.once('error', reject);
    });
  }

  send(op: ReadOpName, bytes: Buffer): void {
    this.decoder.expect(op);
    this.socket.write(bytes);
  }

  #notify(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Wait until `count` responses arrived (or the connection closed). */
  async waitFor(count: number): Promise<ReadResponse[]> {
    while (this.responses.length < count && !this.closed) await new Promise<void>((r) => this.#waiters.push(r));
    return this.responses;
  }

  async waitClosed(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.#waiters.push(r));
  }

  close(): void {
    this.socket.destroy();
  }
}
