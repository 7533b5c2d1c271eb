// The Redis side of the side-by-side benchmark: start a private redis-server
// (127.0.0.1, a free port, a temp dir, no RDB snapshots, AOF on with the
// fsync policy under test), drive it with pipelined RESP over the same client
// shape as countd (pipeline.ts), and stop it.
//
//   writes: ZINCRBY ks<i % 1000> 1 key<i>        (countd: one 520-byte write frame)
//   reads:  ZREVRANGE rks<j> 0 99 WITHSCORES      (countd: one 272-byte page request)

import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { KeySet, ReadDataSet, keyName, keyspaceName, readKeyspaceName } from './keys.js';
import { Protocol, ReplyCounter, connect, prebuiltEncoder } from './pipeline.js';
import { dirBytes, peakRss } from './proc-stats.js';
import { track, untrack } from './cleanup.js';

export type AppendFsync = 'always' | 'everysec';

/** The redis-server on the PATH, or undefined. */
export function findRedisServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'redis-server');
    const r = spawnSync(candidate, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return candidate;
  }
  return undefined;
}

/** "7.0.15" from `redis-server --version`, or undefined. */
export function redisVersion(binary: string): string | undefined {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  return /v=(\S+)/.exec(r.stdout ?? '')?.[1];
}

export interface RedisServer {
  port: number;
  pid: number;
  dir: string;
  appendfsync: AppendFsync;
  /** Bytes of the append-only files (Redis 7: <dir>/appendonlydir/*). */
  aofBytes(): Promise<number>;
  /** Peak resident set of the server (VmHWM), bytes. */
  peakRss(): number;
  /** Send one command and wait for its reply (for setup and checks, not for load). */
  command(...args: (string | number)[]): Promise<RespValue>;
  stop(): Promise<void>;
}

export async function startRedis(binary: string, appendfsync: AppendFsync): Promise<RedisServer> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-bench-redis-'));
  const port = await freePort();
  const args = [
    '--bind', '127.0.0.1',
    '--port', String(port),
    '--dir', dir,
    '--save', '',
    '--appendonly', 'yes',
    '--appendfsync', appendfsync,
    '--daemonize', 'no',
    '--protected-mode', 'yes',
    '--logfile', path.join(dir, 'redis.log'),
  ];
  const child: ChildProcess = spawn(binary, args, { stdio: 'ignore' });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${binary}`);
  const entry = track({ what: `redis-server (${appendfsync})`, pid, dir });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });

  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const pong = await respCommand(port, ['PING']);
      if (pong === 'PONG') break;
    } catch {
      // not listening yet
    }
    if (exited) throw new Error(`redis-server exited at start; see ${path.join(dir, 'redis.log')}`);
    if (Date.now() > deadline) throw new Error(`redis-server did not answer PING within 10 s`);
    await sleep(50);
  }

  return {
    port,
    pid,
    dir,
    appendfsync,
    aofBytes: () => dirBytes(path.join(dir, 'appendonlydir'), 'apparent'),
    peakRss: () => peakRss([pid]),
    command: (...a) => respCommand(port, a.map(String)),
    async stop() {
      if (!exited) {
        const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timeout = sleep(10_000).then(() => {
          if (!exited) child.kill('SIGKILL');
        });
        await Promise.race([gone, timeout]);
        if (!exited) await gone;
      }
      await fsp.rm(dir, { recursive: true, force: true });
      untrack(entry);
    },
  };
}

// ---------------------------------------------------------------- load

/** Pipelined ZINCRBY load: the RESP equivalent of countd write frames. */
export function redisWriteProtocol(keys: KeySet, phase: number, connections: number): Protocol {
  const streams = Array.from({ length: connections }, (_, c) => keys.stream(c, phase));
  return {
    encode(conn, count) {
      const next = streams[conn]!;
      let text = '';
      for (let i = 0; i < count; i++) {
        const k = next();
        const ks = keyspaceName(k % keys.keyspaces);
        const key = keyName(k);
        text += `*4\r\n$7\r\nZINCRBY\r\n$${ks.length}\r\n${ks}\r\n$1\r\n1\r\n$${key.length}\r\n${key}\r\n`;
      }
      return Buffer.from(text, 'latin1');
    },
    replyCounter: () => respReplyCounter(),
  };
}

/** ZINCRBY that writes the read data set once; run with `requests: set.size`. */
export function redisReadSetProtocol(set: ReadDataSet): Protocol {
  let next = 0;
  return {
    encode(_conn, count) {
      let text = '';
      for (let i = 0; i < count; i++, next++) {
        const ks = set.keyspace(next);
        const key = set.key(next);
        const by = String(set.count(next));
        text += `*4\r\n$7\r\nZINCRBY\r\n$${ks.length}\r\n${ks}\r\n$${by.length}\r\n${by}\r\n$${key.length}\r\n${key}\r\n`;
      }
      return Buffer.from(text, 'latin1');
    },
    replyCounter: () => respReplyCounter(),
  };
}

/** Pipelined ZREVRANGE rks<j> 0 <length-1> WITHSCORES (j uniform): the RESP equivalent of a countd top-N page. */
export function redisReadProtocol(keys: KeySet, phase: number, connections: number, pageLength: number): Protocol {
  const streams = Array.from({ length: connections }, (_, c) => keys.keyspaceStream(c, phase));
  const stop = String(pageLength - 1);
  const requests = Array.from({ length: keys.keyspaces }, (_, j) => {
    const ks = readKeyspaceName(j);
    return Buffer.from(
      `*5\r\n$9\r\nZREVRANGE\r\n$${ks.length}\r\n${ks}\r\n$1\r\n0\r\n$${stop.length}\r\n${stop}\r\n$10\r\nWITHSCORES\r\n`,
      'latin1',
    );
  });
  return {
    encode: prebuiltEncoder(streams, requests),
    replyCounter: () => respReplyCounter(),
  };
}

/** Sum of ZCARD over every keyspace: the keys Redis holds. */
export async function redisKeyCount(server: RedisServer, keys: KeySet): Promise<number> {
  const socket = await connect('127.0.0.1', server.port);
  try {
    let text = '';
    for (let j = 0; j < keys.keyspaces; j++) {
      const ks = keyspaceName(j);
      text += `*2\r\n$5\r\nZCARD\r\n$${ks.length}\r\n${ks}\r\n`;
    }
    const replies = await collectReplies(socket, keys.keyspaces, Buffer.from(text, 'latin1'));
    return replies.reduce<number>((sum, v) => sum + Number(v), 0);
  } finally {
    socket.destroy();
  }
}

// ---------------------------------------------------------------- RESP

export type RespValue = string | number | null | RespValue[] | RespError;

export class RespError extends Error {}

function encodeCommand(args: string[]): Buffer {
  let text = `*${args.length}\r\n`;
  for (const a of args) text += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return Buffer.from(text);
}

async function respCommand(port: number, args: string[]): Promise<RespValue> {
  const socket = await connect('127.0.0.1', port);
  try {
    const [reply] = await collectReplies(socket, 1, encodeCommand(args));
    if (reply instanceof RespError) throw reply;
    return reply!;
  } finally {
    socket.destroy();
  }
}

function collectReplies(socket: net.Socket, count: number, request: Buffer): Promise<RespValue[]> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const out: RespValue[] = [];
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let pos = 0;
      while (out.length < count) {
        const r = parseValue(buf, pos);
        if (r === undefined) break;
        out.push(r.value);
        pos = r.end;
      }
      buf = buf.subarray(pos);
      if (out.length === count) resolve(out);
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('redis closed the connection')));
    socket.write(request);
  });
}

function lineEnd(buf: Buffer, pos: number): number {
  const i = buf.indexOf(13, pos); // '\r'
  return i < 0 || i + 1 >= buf.length ? -1 : i;
}

/** Parse one RESP2 value at buf[pos]; undefined when incomplete. */
function parseValue(buf: Buffer, pos: number): { value: RespValue; end: number } | undefined {
  if (pos >= buf.length) return undefined;
  const type = buf[pos];
  const eol = lineEnd(buf, pos + 1);
  if (eol < 0) return undefined;
  const line = buf.toString('latin1', pos + 1, eol);
  const next = eol + 2;
  switch (type) {
    case 0x2b: // +
      return { value: line, end: next };
    case 0x2d: // -
      return { value: new RespError(line), end: next };
    case 0x3a: // :
      return { value: Number(line), end: next };
    case 0x24: { // $
      const len = Number(line);
      if (len < 0) return { value: null, end: next };
      if (buf.length < next + len + 2) return undefined;
      return { value: buf.toString('utf8', next, next + len), end: next + len + 2 };
    }
    case 0x2a: { // *
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const items: RespValue[] = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = parseValue(buf, p);
        if (r === undefined) return undefined;
        items.push(r.value);
        p = r.end;
      }
      return { value: items, end: p };
    }
    default:
      throw new Error(`bad RESP type byte ${type}`);
  }
}

/**
 * Skip one RESP2 value at buf[pos] without building it; returns its end, or
 * -1 when incomplete. Throws RespError on an error reply (the load stops).
 */
function skipValue(buf: Buffer, pos: number): number {
  if (pos >= buf.length) return -1;
  const type = buf[pos];
  // Read the decimal number (or text) up to CRLF.
  let i = pos + 1;
  let neg = false;
  let n = 0;
  if (buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  while (i < buf.length && buf[i] !== 13) {
    n = n * 10 + (buf[i]! - 48);
    i++;
  }
  if (i + 1 >= buf.length) return -1;
  const next = i + 2;
  switch (type) {
    case 0x2b: // +
    case 0x3a: // :
      return next;
    case 0x2d: // -
      throw new RespError(`redis error: ${buf.toString('latin1', pos + 1, i)}`);
    case 0x24: { // $
      if (neg) return next;
      const end = next + n + 2;
      return end <= buf.length ? end : -1;
    }
    case 0x2a: { // *
      if (neg) return next;
      let p = next;
      for (let k = 0; k < n; k++) {
        p = skipValue(buf, p);
        if (p < 0) return -1;
      }
      return p;
    }
    default:
      throw new Error(`bad RESP type byte ${type}`);
  }
}

/** Counts complete top-level RESP replies across chunks. */
export function respReplyCounter(): ReplyCounter {
  let pending: Buffer | undefined;
  return (chunk) => {
    const buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    let pos = 0;
    let count = 0;
    for (;;) {
      const end = skipValue(buf, pos);
      if (end < 0) break;
      pos = end;
      count++;
    }
    pending = pos < buf.length ? buf.subarray(pos) : undefined;
    return count;
  };
}

// ---------------------------------------------------------------- helpers

/** A port that was free a moment ago (bind 127.0.0.1:0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
