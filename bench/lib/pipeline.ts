// The client shape every system is driven with: N TCP connections, each
// keeping M requests in flight. When replies come back the connection sends
// as many new requests as replies it got, in one write. After `seconds` it
// stops sending, waits for the replies still due, and closes.
//
// The driver knows nothing of the protocol: a Protocol encodes batches of
// requests and counts the complete replies in the bytes it is given. The
// client's own CPU use over the window is measured, so a run can show that
// the load generator was not the bottleneck.

import net from 'node:net';

export interface ReplyCounter {
  /** Count the complete replies in `chunk` (bytes continue across calls). Throws on an error reply. */
  (chunk: Buffer): number;
}

export interface Protocol {
  /** `count` requests for connection `conn`, back to back in one buffer. */
  encode(conn: number, count: number): Buffer;
  /** A fresh reply counter for one connection. */
  replyCounter(conn: number): ReplyCounter;
}

/**
 * encode() for a protocol whose requests are prebuilt: each connection draws
 * request indexes from its own stream, and a batch is their concatenation.
 */
export function prebuiltEncoder(streams: Array<() => number>, requests: Buffer[]): Protocol['encode'] {
  return (conn, count) => {
    const next = streams[conn]!;
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) parts.push(requests[next()]!);
    return Buffer.concat(parts);
  };
}

export interface PipelineOptions {
  host?: string;
  port: number;
  connections: number;
  inFlight: number;
  /** Length of the measuring window; Infinity with `requests` for a fixed amount of work. */
  seconds: number;
  /** Send at most this many requests in all, then finish once they are answered. */
  requests?: number;
}

export interface PipelineResult {
  /** Replies received within the measuring window. */
  inWindow: number;
  /** Every reply received, including those due when the window closed. */
  total: number;
  /** Length of the measuring window. */
  seconds: number;
  /** inWindow / seconds. */
  perSecond: number;
  /** Client process CPU (user + system) over the window, in cores (1.0 = one core busy). */
  clientCpuCores: number;
}

export async function runPipeline(protocol: Protocol, options: PipelineOptions): Promise<PipelineResult> {
  const host = options.host ?? '127.0.0.1';
  const sockets = await Promise.all(
    Array.from({ length: options.connections }, () => connect(host, options.port)),
  );
  let inWindow = 0;
  let total = 0;
  let sent = 0;
  const limit = options.requests ?? Infinity;
  let stopping = false;
  let failure: Error | undefined;
  const outstanding = new Int32Array(options.connections);

  let finish!: () => void;
  let fail!: (err: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const maybeFinish = (): void => {
    if (stopping && outstanding.every((n) => n === 0)) finish();
  };
  const abort = (err: Error): void => {
    if (failure) return;
    failure = err;
    for (const s of sockets) s.destroy();
    fail(err);
  };

  sockets.forEach((socket, conn) => {
    const count = protocol.replyCounter(conn);
    onReplies(socket, count, abort, (n) => {
      total += n;
      if (!stopping) inWindow += n;
      outstanding[conn]! -= n;
      const more = stopping ? 0 : Math.min(n, limit - sent);
      if (more > 0) {
        outstanding[conn]! += more;
        sent += more;
        socket.write(protocol.encode(conn, more));
      }
      if (!stopping && sent >= limit) stop();
      if (stopping) maybeFinish();
    });
    socket.on('error', (err) => abort(err));
    socket.on('close', () => {
      if (!stopping || outstanding[conn]! > 0) abort(new Error(`connection ${conn} closed by the server with ${outstanding[conn]} replies due`));
    });
  });

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let t1 = t0;
  let cpu1 = cpu0;
  const stop = (): void => {
    if (stopping) return;
    t1 = performance.now();
    cpu1 = process.cpuUsage(cpu0);
    stopping = true;
  };
  sockets.forEach((socket, conn) => {
    const first = Math.min(options.inFlight, limit - sent);
    if (first <= 0) return;
    outstanding[conn] = first;
    sent += first;
    socket.write(protocol.encode(conn, first));
  });
  if (sent >= limit) stop();
  const timer = Number.isFinite(options.seconds)
    ? setTimeout(() => {
        stop();
        maybeFinish();
      }, options.seconds * 1000)
    : undefined;
  maybeFinish();
  try {
    await done;
  } finally {
    clearTimeout(timer);
    for (const s of sockets) s.destroy();
  }
  const seconds = (t1 - t0) / 1000;
  return {
    inWindow,
    total,
    seconds,
    perSecond: inWindow / seconds,
    clientCpuCores: (cpu1.user + cpu1.system) / 1e6 / seconds,
  };
}

/** Call `handle(n)` for each chunk of `socket` that completes n ≥ 1 replies; an error reply goes to `abort`. */
export function onReplies(socket: net.Socket, count: ReplyCounter, abort: (err: Error) => void, handle: (n: number) => void): void {
  socket.on('data', (chunk: Buffer) => {
    let n: number;
    try {
      n = count(chunk);
    } catch (err) {
      abort(err as Error);
      return;
    }
    if (n > 0) handle(n);
  });
}

export function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Counts fixed-size replies that must all equal `expected` (e.g. the 3-byte WIN). */
export function fixedReplyCounter(expected: Buffer): ReplyCounter {
  const size = expected.length;
  let partial = 0; // bytes of an incomplete reply seen so far
  return (chunk) => {
    // Replies are checked byte by byte against `expected` at their position.
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== expected[(partial + i) % size]) {
        throw new Error(`unexpected reply byte ${chunk[i]} (wanted ${expected.toString('latin1')})`);
      }
    }
    const bytes = partial + chunk.length;
    partial = bytes % size;
    return Math.floor(bytes / size);
  };
}
