// A cheap closed-loop load generator for any server that answers every
// fixed-size request with a fixed-size reply (countd-write: 520-byte frames,
// 3-byte replies). N connections each keep M requests in flight: whenever
// replies arrive, the connection sends as many new requests, in one write,
// sliced from a pool of requests built before the run. Per request it
// allocates nothing and does no more than look at the first byte of each
// reply, so the server, not the generator, is what gets measured.

import net from 'node:net';
import { FieldSizes, DEFAULT_FIELD_SIZES, writeFrameSize } from '../../lib/protocol/fields.js';
import { encodeFrame } from '../../lib/protocol/write-frame.js';

export interface RequestPool {
  /** Requests back to back, each `requestSize` bytes. */
  data: Buffer;
  requestSize: number;
}

export interface WriteLoadOptions {
  host?: string;
  port: number;
  /** Default 50. */
  connections?: number;
  /** Requests each connection keeps unanswered; default 16. */
  inFlight?: number;
  /** Measuring window; default 10000. */
  durationMs?: number;
  /** Run before the window opens (connections warm, server batches settled); default 1000. */
  warmupMs?: number;
  /** The requests to send; default countd write frames from buildFramePool(). */
  requests?: RequestPool;
  /** Bytes of one reply; default 3. */
  replySize?: number;
  /** First byte of a successful reply; default 'W' (WIN). Other replies are counted as failures. */
  okByte?: number;
}

export interface WriteLoadResult {
  connections: number;
  inFlight: number;
  /** Length of the measuring window. */
  seconds: number;
  /** Successful replies within the window. */
  acked: number;
  /** Successful replies in all (warm-up and drain too). */
  ackedTotal: number;
  /** Successful replies per second within the window. */
  perSecond: number;
  /** Replies other than success (any time), and connections the server closed. */
  failedReplies: number;
  closedByServer: number;
  /** Mean time from request to reply, by Little's law (in flight / throughput), ms. */
  meanLatencyMs: number;
  /** CPU of this (client) process over the window, in cores. */
  clientCpuCores: number;
}

export interface FramePoolOptions {
  sizes?: FieldSizes;
  /** Frames in the pool; default 16384. */
  frames?: number;
  keyspaces?: number;
  keysPerKeyspace?: number;
  seed?: number;
}

/** countd write frames (increment 1) over keyspaces `ks<i>` × keys `key<j>`, drawn with a seeded generator. */
export function buildFramePool(options: FramePoolOptions = {}): RequestPool {
  const sizes = options.sizes ?? DEFAULT_FIELD_SIZES;
  const n = options.frames ?? 16384;
  const keyspaces = options.keyspaces ?? 1000;
  const keys = options.keysPerKeyspace ?? 1000;
  const size = writeFrameSize(sizes);
  const data = Buffer.alloc(n * size);
  let state = (options.seed ?? 1) >>> 0;
  const random = (below: number): number => {
    // xorshift32: deterministic, good enough to spread keys.
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % below;
  };
  for (let i = 0; i < n; i++) encodeFrame(1, `ks${random(keyspaces)}`, `key${random(keys)}`, sizes, data, i * size);
  return { data, requestSize: size };
}

/** Run the load and report what the server sustained. */
export async function runWriteLoad(options: WriteLoadOptions): Promise<WriteLoadResult> {
  const host = options.host ?? '127.0.0.1';
  const connections = options.connections ?? 50;
  const inFlight = options.inFlight ?? 16;
  const durationMs = options.durationMs ?? 10_000;
  const warmupMs = options.warmupMs ?? 1000;
  const pool = options.requests ?? buildFramePool();
  const replySize = options.replySize ?? 3;
  const okByte = options.okByte ?? 0x57; // 'W'
  const size = pool.requestSize;
  const poolCount = Math.floor(pool.data.length / size);
  if (poolCount < 1) throw new RangeError('the request pool holds no request');

  let acked = 0;
  let failedReplies = 0;
  let closedByServer = 0;
  let sending = true;

  const sockets = await Promise.all(Array.from({ length: connections }, () => connect(host, options.port)));
  let resolveDrained!: () => void;
  const drained = new Promise<void>((resolve) => (resolveDrained = resolve));
  let open = connections;
  const onGone = (): void => {
    if (--open === 0) resolveDrained();
  };

  const stoppers: Array<() => void> = [];
  sockets.forEach((socket, c) => {
    // Each connection walks the pool from its own starting point.
    let cursor = Math.floor((c * poolCount) / connections);
    let outstanding = 0;
    /** Bytes seen of the reply in progress, and whether it started with okByte. */
    let replyPos = 0;
    let replyOk = false;
    let ended = false;
    const send = (count: number): void => {
      outstanding += count;
      while (count > 0) {
        const n = Math.min(count, poolCount - cursor);
        socket.write(pool.data.subarray(cursor * size, (cursor + n) * size));
        cursor += n;
        if (cursor === poolCount) cursor = 0;
        count -= n;
      }
    };
    const endIfDone = (): void => {
      if (!sending && outstanding === 0 && !ended) {
        ended = true;
        socket.end();
      }
    };
    stoppers.push(endIfDone);
    socket.on('data', (chunk: Buffer) => {
      let done = 0;
      let good = 0;
      for (let i = 0; i < chunk.length; ) {
        if (replyPos === 0) replyOk = chunk[i] === okByte;
        const take = Math.min(replySize - replyPos, chunk.length - i);
        i += take;
        replyPos += take;
        if (replyPos === replySize) {
          replyPos = 0;
          done++;
          if (replyOk) good++;
        }
      }
      acked += good;
      failedReplies += done - good;
      outstanding -= done;
      if (sending) send(done);
      else endIfDone();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (sending) closedByServer++;
      onGone();
    });
    send(inFlight);
  });

  await sleep(warmupMs);
  const ackedBefore = acked;
  const cpuBefore = process.cpuUsage();
  const t0 = performance.now();
  await sleep(durationMs);
  const ackedInWindow = acked - ackedBefore;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  sending = false;
  // Collect the replies still due, then close; cut after a grace period.
  for (const stop of stoppers) stop();
  const grace = setTimeout(() => sockets.forEach((s) => s.destroy()), 5000);
  await drained;
  clearTimeout(grace);

  const perSecond = ackedInWindow / seconds;
  return {
    connections,
    inFlight,
    seconds,
    acked: ackedInWindow,
    ackedTotal: acked,
    perSecond,
    failedReplies,
    closedByServer,
    meanLatencyMs: perSecond > 0 ? ((connections * inFlight) / perSecond) * 1000 : NaN,
    clientCpuCores: (cpu.user + cpu.system) / 1e6 / seconds,
  };
}

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => {
      socket.off('error', reject);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
