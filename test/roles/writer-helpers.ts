// Test helpers for countd-write: temp data directories, a raw TCP client that
// collects reply bytes, and a reader of everything in the commit-log pool
// (through lib/commitlog/reader.ts, as the worker would see it).

import { promises as fsp } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { RECORD_OPS, decodeOps, forEachEntry } from '../../lib/commitlog/format.js';
import { readLogFile } from '../../lib/commitlog/reader.js';
import { parsePoolName } from '../../lib/commitlog/filenames.js';
import { DataDir, openDataDir } from '../../lib/datadir/meta.js';
import { FieldSizes } from '../../lib/protocol/fields.js';
import { encodeFrame } from '../../lib/protocol/write-frame.js';

export const SMALL: FieldSizes = { keyspaceSize: 8, keySize: 8 };

export async function tempDataDir(sizes: FieldSizes = SMALL): Promise<{ root: string; dataDir: DataDir }> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-writer-'));
  const dataDir = await openDataDir(path.join(root, 'data'), { sizes });
  return { root, dataDir };
}

export async function removeDir(root: string): Promise<void> {
  await fsp.rm(root, { recursive: true, force: true });
}

export function frame(increment: bigint | number, keyspace: string, key: string, sizes: FieldSizes = SMALL): Buffer {
  return encodeFrame(increment, keyspace, key, sizes);
}

/** `n` frames (increment i + 1, keyspace "ks", key "k<i % 7>"), back to back. */
export function frames(n: number, sizes: FieldSizes = SMALL, first = 0): Buffer {
  const parts: Buffer[] = [];
  for (let i = first; i < first + n; i++) parts.push(frame(i + 1, 'ks', `k${i % 7}`, sizes));
  return Buffer.concat(parts);
}

/** A raw write-protocol client: sends bytes, collects every reply byte, notes the close. */
export class RawClient {
  readonly socket: net.Socket;
  replies = '';
  closed = false;
  error: Error | null = null;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.replies += d.toString('latin1');
      this.wake();
    });
    socket.on('error', (err) => {
      this.error = err;
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.off('error', reject);
        resolve(new RawClient(socket));
      });
      socket.once('error', reject);
    });
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Send `bytes` in pieces of `piece` bytes, each its own write after a turn of the event loop. */
  async sendInPieces(bytes: Buffer, piece: number): Promise<void> {
    for (let i = 0; i < bytes.length; i += piece) {
      await new Promise<void>((resolve) => this.socket.write(bytes.subarray(i, i + piece), () => resolve()));
    }
  }

  /** Resolve once `pred` holds (checked on every reply and at close); reject after `ms`. */
  until(pred: () => boolean, what: string, ms = 10000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; replies so far: ${this.summary()}; closed=${this.closed}`)), ms);
      const check = (): void => {
        if (pred()) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  /** Wait for `n` reply codes (3 bytes each). */
  replyCount(n: number): Promise<void> {
    return this.until(() => this.replies.length >= 3 * n, `${n} replies`);
  }

  waitClosed(): Promise<void> {
    return this.until(() => this.closed, 'the server to close the connection');
  }

  /** Replies as an array of codes. */
  codes(): string[] {
    const out: string[] = [];
    for (let i = 0; i + 3 <= this.replies.length; i += 3) out.push(this.replies.slice(i, i + 3));
    return out;
  }

  summary(): string {
    const counts = new Map<string, number>();
    for (const c of this.codes()) counts.set(c, (counts.get(c) ?? 0) + 1);
    return [...counts].map(([c, n]) => `${n}×${c}`).join(', ') || 'none';
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

export interface LoggedEntry {
  increment: bigint;
  keyspace: string;
  key: string;
  /** For an op entry of an OPS record: its op code (lib/commitlog/format.ts); the value is in `increment`. */
  op?: number;
}

/** Every entry in every log of the pool, oldest log first, in stream order. */
export async function readPool(dataDir: DataDir): Promise<LoggedEntry[]> {
  const dir = dataDir.paths.commitlog;
  const logs: Array<{ openedAt: number; firstSeq: bigint; entries: LoggedEntry[] }> = [];
  for (const name of await fsp.readdir(dir)) {
    if (parsePoolName(name).kind !== 'log') continue;
    const contents = await readLogFile(path.join(dir, name), dataDir.sizes);
    if (contents.header === null) continue;
    const entries: LoggedEntry[] = [];
    for (const record of contents.records) {
      if (record.type === RECORD_OPS) {
        for (const o of decodeOps(record.payload)) entries.push({ increment: o.value, keyspace: o.keyspace.toString('latin1'), key: o.key.toString('latin1'), op: o.op });
        continue;
      }
      forEachEntry(record.payload, (increment, keyspace, key) => {
        entries.push({ increment, keyspace: keyspace.toString('latin1'), key: key.toString('latin1') });
      });
    }
    logs.push({ openedAt: contents.header.openedAt, firstSeq: contents.header.firstSeq, entries });
  }
  logs.sort((a, b) => (a.firstSeq < b.firstSeq ? -1 : a.firstSeq > b.firstSeq ? 1 : a.openedAt - b.openedAt));
  return logs.flatMap((l) => l.entries);
}

/** Names in the pool directory that are locks. */
export async function lockFiles(dataDir: DataDir): Promise<string[]> {
  return (await fsp.readdir(dataDir.paths.commitlog)).filter((n) => parsePoolName(n).kind === 'lock');
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
