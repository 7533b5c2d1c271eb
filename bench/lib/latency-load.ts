// The client shape of the concurrency sweep: N TCP connections, each keeping
// M requests in flight (M = 1: a synchronous client that sends, waits for the
// reply, sends again), and the time of every request from its send to its
// reply. Replies of one connection come back in order, so each connection
// keeps the send times of its requests in flight in a small ring.
//
// Latencies go into a log-scale histogram (1 µs to ~1 s, 1% wide buckets),
// so recording one costs an array increment and percentiles are exact to 1%.

import { LogHistogram } from '../../lib/util/histogram.js';
import { connect, onReplies, type Protocol } from './pipeline.js';

export interface LatencyLoadOptions {
  host?: string;
  port: number;
  connections: number;
  inFlight: number;
  /** Measuring window, seconds. */
  seconds: number;
  /** Load before the window opens (connections warm, caches settled), seconds; default 1. */
  warmupSeconds?: number;
  /** CPU seconds used so far by the server's processes: read at both ends of the window for serverCpuUs. */
  serverCpu?: () => number;
  /** Figures of the server read at both ends of the window (e.g. seconds of flow control): their differences are the result's `window`. */
  windowProbe?: () => Record<string, number>;
}

export interface LatencyLoadResult {
  connections: number;
  inFlight: number;
  seconds: number;
  /** Replies within the window. */
  replies: number;
  perSecond: number;
  /** Request-to-reply time of the requests answered within the window, µs. */
  p50Us: number;
  p99Us: number;
  /** Client process CPU over the window, in cores. */
  clientCpuCores: number;
  /** Server CPU per reply over the window, µs (NaN without options.serverCpu). */
  serverCpuUs: number;
  /** windowProbe's figures at the end of the window minus those at its start. */
  window?: Record<string, number>;
}

/** Latencies in µs, 1% buckets up to 1 s. */
export class LatencyHistogram extends LogHistogram {
  constructor() {
    super(1.01, 1e6);
  }
}

export async function runLatencyLoad(protocol: Protocol, options: LatencyLoadOptions): Promise<LatencyLoadResult> {
  const host = options.host ?? '127.0.0.1';
  const m = options.inFlight;
  const sockets = await Promise.all(Array.from({ length: options.connections }, () => connect(host, options.port)));
  const histogram = new LatencyHistogram();
  let measuring = false;
  let stopping = false;
  let replies = 0;
  let failure: Error | undefined;
  let open = sockets.length;
  let finish!: () => void;
  let fail!: (err: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const abort = (err: Error): void => {
    if (failure) return;
    failure = err;
    for (const s of sockets) s.destroy();
    fail(err);
  };
  const outstanding = new Int32Array(sockets.length);
  const maybeFinish = (): void => {
    if (stopping && outstanding.every((n) => n === 0)) finish();
  };

  sockets.forEach((socket, conn) => {
    const count = protocol.replyCounter(conn);
    // Send times of the requests in flight, oldest at `head`.
    const sentAt = new Float64Array(m);
    let head = 0;
    let tail = 0;
    const send = (n: number): void => {
      const now = performance.now();
      for (let i = 0; i < n; i++) {
        sentAt[tail] = now;
        tail = (tail + 1) % m;
      }
      outstanding[conn]! += n;
      socket.write(protocol.encode(conn, n));
    };
    onReplies(socket, count, abort, (n) => {
      const now = performance.now();
      for (let i = 0; i < n; i++) {
        if (measuring) histogram.record((now - sentAt[head]!) * 1000);
        head = (head + 1) % m;
      }
      if (measuring) replies += n;
      outstanding[conn]! -= n;
      if (!stopping) send(n);
      else maybeFinish();
    });
    socket.on('error', (err) => abort(err));
    socket.on('close', () => {
      open--;
      if (!stopping || outstanding[conn]! > 0) abort(new Error(`connection ${conn} closed by the server with ${outstanding[conn]} replies due`));
      if (open === 0) maybeFinish();
    });
    send(m);
  });

  await sleep((options.warmupSeconds ?? 1) * 1000);
  measuring = true;
  const cpu0 = process.cpuUsage();
  const server0 = options.serverCpu?.() ?? NaN;
  const probe0 = options.windowProbe?.();
  const t0 = performance.now();
  await sleep(options.seconds * 1000);
  measuring = false;
  const server1 = options.serverCpu?.() ?? NaN;
  const probe1 = options.windowProbe?.();
  const window = probe0 && probe1 ? Object.fromEntries(Object.keys(probe1).map((k) => [k, probe1[k]! - (probe0[k] ?? 0)])) : undefined;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  stopping = true;
  maybeFinish();
  try {
    await done;
  } finally {
    for (const s of sockets) s.destroy();
  }
  return {
    connections: options.connections,
    inFlight: m,
    seconds,
    replies,
    perSecond: replies / seconds,
    p50Us: histogram.quantile(0.5),
    p99Us: histogram.quantile(0.99),
    clientCpuCores: (cpu.user + cpu.system) / 1e6 / seconds,
    serverCpuUs: ((server1 - server0) * 1e6) / replies,
    ...(window ? { window } : {}),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
