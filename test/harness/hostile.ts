// Hostile clients for test/hostile/: seeded fuzzers of the write and read
// protocols (each connection does one kind of misbehaviour and knows exactly
// what the server must answer), plus raw sockets and a process RSS probe for
// the connection-storm tests.

import fs from 'node:fs';
import net from 'node:net';
import { FieldSizes, writeFrameSize } from '../../lib/protocol/fields.js';
import { encodeFrame } from '../../lib/protocol/write-frame.js';
import { Rng } from './rng.js';

/** The keyspace every write fuzzer writes to; honest clients never use it. */
export const EVIL = 'evil';

/** Resident memory of a process, in bytes (from /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** A socket that collects every byte it receives and notes how it ended. */
export class Probe {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  closed = false;
  /** True when the server ended the connection (we did not destroy it first). */
  closedByServer = false;
  private destroyedByUs = false;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.closedByServer = !this.destroyedByUs;
      this.wake();
    });
  }

  static connect(port: number): Promise<Probe> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.off('error', reject);
        resolve(new Probe(socket));
      });
      socket.once('error', reject);
    });
  }

  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) resolve();
      else this.socket.write(bytes, () => resolve());
    });
  }

  destroy(): void {
    if (!this.closed) this.destroyedByUs = true;
    this.socket.destroy();
  }

  /** Wait until `ok()` or the connection closed, or `timeoutMs` passed. */
  async until(ok: () => boolean, timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!ok() && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return ok();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

export type WriteFuzzKind = 'malformed' | 'truncated' | 'misaligned' | 'split' | 'noise' | 'abrupt';

export interface WriteFuzzOutcome {
  kind: WriteFuzzKind;
  id: number;
  /** Problems: replies other than the protocol requires. */
  problems: string[];
  /** Exact count each key of EVIL must end with ("≤n" for keys that may or may not apply). */
  expect: Map<string, { exact?: bigint; atMost?: bigint }>;
}

/** A name field with a NUL followed by a non-NUL byte: malformed by docs/protocol.md section 1. */
function brokenName(r: Rng, size: number): Buffer {
  const b = r.bytes(size);
  const nul = r.int(0, size - 2);
  b[nul] = 0;
  b[r.int(nul + 1, size - 1)] = r.int(1, 255);
  return b;
}

/** One write connection doing one kind of misbehaviour (chosen by `r`), checked against what the server must answer. */
export async function fuzzWrite(port: number, r: Rng, sizes: FieldSizes, id: number): Promise<WriteFuzzOutcome> {
  const kind = r.pick<WriteFuzzKind>(['malformed', 'truncated', 'misaligned', 'split', 'noise', 'abrupt']);
  const frameSize = writeFrameSize(sizes);
  const out: WriteFuzzOutcome = { kind, id, problems: [], expect: new Map() };
  const p = await Probe.connect(port);
  const valid = (key: string, n: number): Buffer => Buffer.concat(Array.from({ length: n }, () => encodeFrame(1n, EVIL, key, sizes)));
  const replies = (): string => p.received.toString('latin1');
  try {
    switch (kind) {
      case 'malformed': {
        const k = r.int(0, 5);
        const bad = encodeFrame(1n, EVIL, `bad${id}`, sizes);
        const how = r.int(0, 3);
        if (how === 0) bad.fill(0, 8, 8 + sizes.keyspaceSize); // empty keyspace
        else if (how === 1) bad.fill(0, 8 + sizes.keyspaceSize); // empty key
        else if (how === 2) brokenName(r, sizes.keyspaceSize).copy(bad, 8);
        else brokenName(r, sizes.keySize).copy(bad, 8 + sizes.keyspaceSize);
        await p.write(Buffer.concat([valid(`ok${id}`, k), bad, valid(`after${id}`, r.int(0, 3))]));
        await p.until(() => false, 5000);
        if (replies() !== 'WIN'.repeat(k) + 'BAD') out.problems.push(`malformed #${how}: replies ${JSON.stringify(replies())}, expected ${k} WIN then BAD`);
        if (!p.closedByServer) out.problems.push('malformed: the server did not close the connection after BAD');
        if (k > 0) out.expect.set(`ok${id}`, { exact: BigInt(k) });
        out.expect.set(`after${id}`, { exact: 0n });
        out.expect.set(`bad${id}`, { exact: 0n });
        break;
      }
      case 'truncated': {
        const k = r.int(0, 5);
        const partial = encodeFrame(1n, EVIL, `partial${id}`, sizes).subarray(0, r.int(1, frameSize - 1));
        await p.write(Buffer.concat([valid(`ok${id}`, k), partial]));
        await p.until(() => replies().length >= 3 * k, 5000);
        p.socket.end();
        await p.until(() => false, 5000);
        if (replies() !== 'WIN'.repeat(k)) out.problems.push(`truncated: replies ${JSON.stringify(replies())}, expected ${k} WIN`);
        if (k > 0) out.expect.set(`ok${id}`, { exact: BigInt(k) });
        out.expect.set(`partial${id}`, { exact: 0n });
        break;
      }
      case 'misaligned': {
        // 1–7 leading zero bytes shift every frame: the keyspace field then starts with NUL and holds the name after it.
        const shift = r.int(1, 7);
        await p.write(Buffer.concat([Buffer.alloc(shift), valid(`shift${id}`, r.int(1, 4))]));
        await p.until(() => false, 5000);
        if (replies() !== 'BAD') out.problems.push(`misaligned by ${shift}: replies ${JSON.stringify(replies())}, expected BAD`);
        out.expect.set(`shift${id}`, { exact: 0n });
        break;
      }
      case 'split': {
        // Honest frames in random small pieces: reassembled, all acknowledged.
        const n = r.int(1, 4);
        const bytes = valid(`split${id}`, n);
        for (let at = 0; at < bytes.length; ) {
          const piece = r.int(1, 64);
          await p.write(bytes.subarray(at, at + piece));
          at += piece;
        }
        await p.until(() => replies().length >= 3 * n, 5000);
        if (replies() !== 'WIN'.repeat(n)) out.problems.push(`split: replies ${JSON.stringify(replies())}, expected ${n} WIN`);
        out.expect.set(`split${id}`, { exact: BigInt(n) });
        p.socket.end();
        await p.until(() => false, 5000);
        break;
      }
      case 'noise': {
        // Random bytes whose first frame is malformed; BAD if a whole frame arrived, else nothing.
        const len = r.int(1, 3 * frameSize);
        const bytes = r.bytes(len);
        if (len >= 8 + sizes.keyspaceSize) brokenName(r, sizes.keyspaceSize).copy(bytes, 8);
        await p.write(bytes);
        if (len < frameSize) p.socket.end();
        await p.until(() => false, 5000);
        const expected = len >= frameSize ? 'BAD' : '';
        if (replies() !== expected) out.problems.push(`noise of ${len} bytes: replies ${JSON.stringify(replies())}, expected ${JSON.stringify(expected)}`);
        break;
      }
      case 'abrupt': {
        // Valid frames, then a reset without reading: each may or may not apply.
        const n = r.int(1, 20);
        p.socket.write(valid(`abrupt${id}`, n));
        await new Promise((resolve) => setTimeout(resolve, r.int(0, 5)));
        p.socket.resetAndDestroy();
        out.expect.set(`abrupt${id}`, { atMost: BigInt(n) });
        break;
      }
    }
  } finally {
    p.destroy();
  }
  return out;
}

export type ReadFuzzKind = 'page' | 'over-limit' | 'malformed' | 'opcode' | 'truncated';

/** Parse a page response; returns the entries, or a problem. */
function parsePage(buf: Buffer, keySize: number): { n: bigint; entries: Array<{ count: bigint; key: Buffer }>; used: number } | undefined {
  if (buf.length < 8) return undefined;
  const n = buf.readBigInt64LE(0);
  if (n < 0n) return { n, entries: [], used: 8 };
  const rec = 8 + keySize;
  if (buf.length < 8 + Number(n) * rec) return undefined;
  const entries: Array<{ count: bigint; key: Buffer }> = [];
  for (let i = 0; i < Number(n); i++) {
    const at = 8 + i * rec;
    const key = buf.subarray(at + 8, at + rec);
    const end = key.indexOf(0);
    entries.push({ count: buf.readBigInt64LE(at), key: end < 0 ? key : key.subarray(0, end) });
  }
  return { n, entries, used: 8 + Number(n) * rec };
}

function request(offset: bigint, length: bigint, keyspace: Buffer, sizes: FieldSizes): Buffer {
  const b = Buffer.alloc(16 + sizes.keyspaceSize);
  b.writeBigUInt64LE(offset, 0);
  b.writeBigUInt64LE(length, 8);
  keyspace.copy(b, 16);
  return b;
}

/** One read connection doing one kind of request (or misbehaviour); problems are what the server got wrong. */
export async function fuzzRead(port: number, r: Rng, sizes: FieldSizes, keyspaces: string[], pageLimit: number): Promise<{ kind: ReadFuzzKind; problems: string[] }> {
  const kind = r.pick<ReadFuzzKind>(['page', 'over-limit', 'malformed', 'opcode', 'truncated']);
  const problems: string[] = [];
  const p = await Probe.connect(port);
  const ks = Buffer.from(r.pick(keyspaces));
  try {
    switch (kind) {
      case 'page': {
        const length = BigInt(r.int(0, 50));
        await p.write(request(BigInt(r.int(0, 30)), length, ks, sizes));
        await p.until(() => parsePage(p.received, sizes.keySize) !== undefined, 5000);
        const page = parsePage(p.received, sizes.keySize);
        if (!page) problems.push(`page: incomplete answer of ${p.received.length} bytes`);
        else {
          if (page.n < 0n || page.n > length) problems.push(`page: n = ${page.n} for length ${length}`);
          for (let i = 1; i < page.entries.length; i++) {
            const a = page.entries[i - 1]!;
            const b = page.entries[i]!;
            if (a.count < b.count || (a.count === b.count && Buffer.compare(a.key, b.key) >= 0)) problems.push('page: entries out of rank order');
          }
          if (p.closed) problems.push('page: connection closed after a valid request');
        }
        break;
      }
      case 'over-limit': {
        // n = -2 and the connection stays usable.
        const length = BigInt(pageLimit) + BigInt(r.int(1, 1000)) * (r.chance(0.2) ? 1n << 40n : 1n);
        await p.write(Buffer.concat([request(0n, length, ks, sizes), request(0n, 1n, ks, sizes)]));
        await p.until(() => p.received.length >= 16, 5000);
        const n = p.received.length >= 8 ? p.received.readBigInt64LE(0) : undefined;
        if (n !== -2n) problems.push(`over-limit: n = ${String(n)}, expected -2`);
        const next = parsePage(p.received.subarray(8), sizes.keySize);
        if (!(await p.until(() => parsePage(p.received.subarray(8), sizes.keySize) !== undefined, 5000)) && !next) problems.push('over-limit: no answer to the next request');
        break;
      }
      case 'malformed': {
        const bad = r.chance(0.5) ? Buffer.alloc(sizes.keyspaceSize) : brokenName(r, sizes.keyspaceSize);
        await p.write(Buffer.concat([request(0n, 10n, bad, sizes), request(0n, 10n, ks, sizes)]));
        await p.until(() => false, 5000);
        if (p.received.length !== 8 || p.received.readBigInt64LE(0) !== -1n) problems.push(`malformed: answer of ${p.received.length} bytes, expected n = -1 alone`);
        if (!p.closedByServer) problems.push('malformed: connection not closed by the server');
        break;
      }
      case 'opcode': {
        if (r.chance(0.5)) {
          // Plain (no hello): an offset of 2^63 or more is a page that selects nothing, pipelined with a real one.
          const offset = (1n << 63n) | BigInt(r.int(0, 1 << 20));
          await p.write(Buffer.concat([request(offset, BigInt(r.int(0, 50)), ks, sizes), request(0n, 1n, ks, sizes)]));
          await p.until(() => p.received.length >= 8 && parsePage(p.received.subarray(8), sizes.keySize) !== undefined, 5000);
          const n = p.received.length >= 8 ? p.received.readBigInt64LE(0) : undefined;
          if (n !== 0n) problems.push(`plain offset 2^63 or more: n = ${String(n)}, expected 0`);
          if (!parsePage(p.received.subarray(8), sizes.keySize)) problems.push('plain offset 2^63 or more: no answer to the next request');
          if (p.closed) problems.push('plain offset 2^63 or more: connection closed');
          break;
        }
        // After a hello, an unknown op (low byte none of 0 … 9, 16, 17; any period bits above it): n = -1 after its first 8 bytes, then close.
        const unknown = r.chance(0.5) ? r.int(10, 15) : r.int(18, 255);
        const head = Buffer.alloc(8);
        head.writeBigUInt64LE((1n << 63n) | (BigInt(r.int(0, 1 << 12)) << 8n) | BigInt(unknown), 0);
        const hello = Buffer.alloc(16 + sizes.keyspaceSize);
        hello.writeBigUInt64LE(1n << 63n, 0);
        hello.writeBigUInt64LE(1n, 8);
        await p.write(Buffer.concat([hello, head]));
        await p.until(() => false, 5000);
        const helloSize = 8 + 8 + sizes.keySize;
        if (p.received.length !== helloSize + 8 || p.received.readBigInt64LE(helloSize) !== -1n) problems.push(`opcode ${head.readBigUInt64LE(0) & 0xffff_ffff_ffffn}: answer of ${p.received.length} bytes, expected the hello's then n = -1`);
        break;
      }
      case 'truncated': {
        const full = request(0n, 5n, ks, sizes);
        await p.write(full.subarray(0, r.int(1, full.length - 1)));
        p.socket.end();
        await p.until(() => false, 5000);
        if (p.received.length !== 0) problems.push(`truncated: ${p.received.length} bytes answered to a partial request`);
        break;
      }
    }
  } finally {
    p.destroy();
  }
  return { kind, problems };
}
