// countd-write: the TCP server of the write protocol (docs/protocol.md section 1).
// Frames from every connection are made durable together by group commit
// (write/group-commit.ts) into the commit-log pool (commitlog/writer.ts);
// each connection parses and answers its own frames (write/connection.ts).
//
// Shutdown (close()): stop accepting, stop reading, make durable and answer
// every frame already received, end the connections, then close the commit
// log writer (which hands the current log over dirty and releases its locks).

import net from 'node:net';
import { CountdError, ErrorCodes, errnoCode, invalidArgument } from '../errors.js';
import { type AppendFailure, CommitLogWriter, type Durability } from '../commitlog/writer.js';
import { type FileOps, realFileOps } from '../commitlog/fileops.js';
import type { DataDir } from '../datadir/meta.js';
import { metrics } from '../metrics.js';
import { writeFrameSize } from '../protocol/fields.js';
import { DEFAULT_HOST, DEFAULT_WRITE_PORT } from '../protocol/ports.js';
import { type Logger, silentLogger } from '../util/log.js';
import { WriteConnection, type ConnectionContext } from './write/connection.js';
import { GroupCommit, MAX_IN_FLIGHT, type CommitLogSink } from './write/group-commit.js';
import { ReplyWriter } from './write/replies.js';
import { type CommitTrace, commitTraceFromEnv } from './write/trace.js';
import { commitTuningFromEnv } from './write/tuning.js';
import { FlowControl, checkBacklogSeconds, checkFlowBounds } from './write/flow.js';
import { DEFAULT_LOG_SIZE, RECORD_BATCH } from '../commitlog/format.js';
import { DEFAULT_MAX_PRODUCERS, DEFAULT_PRODUCER_EXPIRY_MS } from '../protocol/write-ops.js';
import { FlowRecordWriter, removeStaleFlowRecords } from './write/flow-record.js';
import { ProducerTable } from './write/producers.js';
import { ResultLookup } from './write/result-lookup.js';
import { firstSequence, loadFromDatabase, scanPool } from './write/producer-load.js';

export const DEFAULT_MAX_CONNECTIONS = 10000;
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
export const DEFAULT_MAX_PENDING_FRAMES = 4096;
/** How long an ending connection may stay open for the client to read its last replies. */
const LINGER_MS = 2000;
const REFUSAL_LOG_INTERVAL_MS = 10_000;
const IDLE_SWEEPS = 4;

export interface WriterOptions {
  /** The data directory, from openDataDir(). */
  dataDir: DataDir;
  /** Address to listen on; default 127.0.0.1. */
  listen?: string;
  /** TCP port; default 48879; 0 picks a free port. */
  port?: number;
  /** Passed to CommitLogWriter: log file size and handover interval. */
  logSize?: number;
  handoverMs?: number;
  /** Flow control (write/flow.ts): backlog bytes at which WINs slow down, and at which reading stops. */
  backlogSoft?: number;
  backlogHard?: number;
  /** Flow control's time bound (write/flow-bounds.ts timedBounds): ms of applying at the measured drain rate; 0: bytes only. Default 1,000. */
  backlogMs?: number;
  /** Open connections allowed; beyond it new sockets are closed at once. Default 10000. */
  maxConnections?: number;
  /** A connection with no traffic and nothing pending is closed after this long; 0 = never. Default 300000. */
  idleTimeoutMs?: number;
  /** Unanswered frames per connection before it stops reading. Default 4096. */
  maxPendingFrames?: number;
  logger?: Logger;
  fileOps?: FileOps;
  /** How an append becomes durable (CommitLogWriterOptions.durability); default COUNTD_COMMIT_DURABILITY, else dsync. */
  durability?: Durability;
  /**
   * Cluster mode (lib/cluster/): called with the entries of each group commit
   * together with their commit-log write; the WINs wait for both, and either
   * failing leaves the frames unanswered and their connections closed (outcome
   * unknown: a stored message is applied), never ERR (docs/cluster.md).
   */
  replicate?: (entries: Buffer, count: number, type: number) => Promise<void>;
  /**
   * Idempotent producers and tokens (version 2 of the extended write
   * protocol): the read port of the process that holds this pool's database,
   * from which the producers' state is rebuilt at start (write/producer-load.ts).
   * Without it the writer speaks version 1 at most. Not with `replicate`.
   */
  producers?: { readHost: string; readPort: number; maxProducers?: number; expiryMs?: number };
}

export interface WriterHandle {
  readonly port: number;
  readonly address: string;
  /** Stop accepting, answer every frame received, close connections, close the commit log. */
  close(): Promise<void>;
}

/** Start countd-write on an open data directory. */
export async function startWriter(options: WriterOptions): Promise<WriterHandle> {
  const settings = checkOptions(options);
  const logger = options.logger ?? silentLogger;
  const trace = commitTraceFromEnv(logger);
  const tuning = commitTuningFromEnv();
  const fileOps = trace !== null ? trace.timed(options.fileOps ?? realFileOps) : options.fileOps;
  const bounds = checkFlowBounds(options.backlogSoft, options.backlogHard, options.logSize ?? DEFAULT_LOG_SIZE);
  await removeStaleFlowRecords(options.dataDir.paths.root);
  // Before the log writer claims anything: the logs not yet applied, for the producers and the first token.
  const idem = options.producers !== undefined && options.replicate === undefined ? options.producers : undefined;
  const scan = idem === undefined ? undefined : await scanPool(options.dataDir.paths.commitlog, options.dataDir.sizes);
  const record = new FlowRecordWriter(options.dataDir.paths.root);
  const flow = new FlowControl({
    dir: options.dataDir.paths.commitlog,
    bounds,
    seconds: checkBacklogSeconds(options.backlogMs === undefined ? undefined : options.backlogMs / 1000),
    logSize: options.logSize ?? DEFAULT_LOG_SIZE,
    ...(options.fileOps !== undefined ? { ops: options.fileOps } : {}),
    logger,
    ...(tuning.flowPollMs !== undefined ? { pollMs: tuning.flowPollMs } : {}),
    changed: (r) => record.publish(r),
  });
  const log = await CommitLogWriter.open({
    gate: flow,
    dir: options.dataDir.paths.commitlog,
    sizes: options.dataDir.sizes,
    ...(options.logSize !== undefined ? { logSize: options.logSize } : {}),
    ...(options.handoverMs !== undefined ? { handoverMs: options.handoverMs } : {}),
    ...(fileOps !== undefined ? { fileOps } : {}),
    ...(scan !== undefined ? { firstSeq: firstSequence(scan.maxToken) } : {}),
    durability: options.durability ?? tuning.durability ?? 'dsync',
    logger,
  });
  try {
    const sink = options.replicate ? replicated(log, options.replicate) : log;
    let producers: ProducerTable | null = null;
    if (idem !== undefined) {
      producers = new ProducerTable(integer(idem.maxProducers, DEFAULT_MAX_PRODUCERS, 1, 100_000_000, 'maxProducers'), integer(idem.expiryMs, DEFAULT_PRODUCER_EXPIRY_MS, 1, Number.MAX_SAFE_INTEGER, 'producer expiryMs'));
      for (const r of scan!.producers) producers.merge(r);
    }
    const results = idem === undefined ? null : new ResultLookup({ host: idem.readHost, port: idem.readPort }, options.dataDir.sizes, logger);
    const handle = await serve(sink, options.dataDir, settings, logger, trace, flow, record, producers, results);
    if (producers !== null) {
      let stopped = false;
      const table = producers;
      const sweeper = setInterval(() => table.sweep(Date.now()), Math.min(60_000, table.expiryMs));
      sweeper.unref();
      void loadFromDatabase(table, idem!.readHost, idem!.readPort, options.dataDir.sizes, logger, () => stopped);
      return {
        ...handle,
        port: handle.port,
        address: handle.address,
        close: () => {
          stopped = true;
          clearInterval(sweeper);
          return handle.close();
        },
      };
    }
    return handle;
  } catch (err) {
    trace?.stop();
    flow.close();
    await record.close();
    await log.close().catch(() => {});
    throw err;
  }
}

/** A failure of a replicated append: the frames may be applied (GroupCommit leaves them unanswered). */
function outcomeUnknown(err: unknown): AppendFailure {
  const failure: AppendFailure = err instanceof CountdError ? err : new CountdError(ErrorCodes.CLUSTER, err instanceof Error ? err.message : String(err), { cause: err });
  failure.outcomeUnknown = true;
  return failure;
}

/** Group commits in flight at once in cluster mode (docs/cluster.md, "Write path"); COUNTD_REPLICATED_IN_FLIGHT=1 for an A/B run against one. */
function replicatedInFlight(): number {
  const raw = process.env.COUNTD_REPLICATED_IN_FLIGHT;
  if (raw === undefined || raw === '') return MAX_IN_FLIGHT;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_IN_FLIGHT) throw invalidArgument(`COUNTD_REPLICATED_IN_FLIGHT must be a whole number from 1 to ${MAX_IN_FLIGHT}, got ${raw}`);
  return n;
}

/** The commit log and `replicate`, together (the group commit sees one append). */
function replicated(log: CommitLogWriter, replicate: NonNullable<WriterOptions['replicate']>): CommitLogSink & { close(): Promise<void>; handingOverBytes(seen?: ReadonlyMap<number, number>): number; readonly handedOverBytes: number } {
  const maxInFlight = replicatedInFlight();
  return {
    get maxBatchBytes() {
      return log.maxBatchBytes;
    },
    handingOverBytes: (seen) => log.handingOverBytes(seen),
    get handedOverBytes() {
      return log.handedOverBytes;
    },
    // Group commits overlap: the publisher coalesces a partition's entries while its last publish is in flight.
    maxInFlight,
    append: async (entries, count, _inline, type) => {
      // The publish goes out first and the durable commit-log write runs meanwhile: a WIN waits for both,
      // so the group commit costs the slower of the two, not their sum. Either failing
      // leaves the other's outcome standing (a stored message is applied), so the frames'
      // outcome is unknown: they are not answered (docs/cluster.md, "Write path").
      // Never inline: a blocked event loop would hold the publish back until the write returned.
      const replicated = replicate(entries, count, type ?? RECORD_BATCH);
      const durable = log.append(entries, count, false, type);
      const [a, b] = await Promise.allSettled([durable, replicated]);
      const failed = a.status === 'rejected' ? a : b.status === 'rejected' ? b : undefined;
      if (failed !== undefined) throw outcomeUnknown(failed.reason);
      return (a as PromiseFulfilledResult<bigint | void>).value;
    },
    close: () => log.close(),
  };
}

interface Settings {
  listen: string;
  port: number;
  maxConnections: number;
  idleTimeoutMs: number;
  maxPendingFrames: number;
}

function checkOptions(options: WriterOptions): Settings {
  if (options === null || typeof options !== 'object') throw invalidArgument('writer options must be an object');
  const dataDir = options.dataDir;
  if (options.replicate !== undefined && typeof options.replicate !== 'function') throw invalidArgument('replicate must be a function');
  if (!dataDir || typeof dataDir.paths?.commitlog !== 'string' || !dataDir.sizes) {
    throw invalidArgument('writer options.dataDir must be an open data directory (openDataDir)');
  }
  const listen = options.listen ?? DEFAULT_HOST;
  if (typeof listen !== 'string' || listen === '') throw invalidArgument('listen address must be a non-empty string');
  return {
    listen,
    port: integer(options.port, DEFAULT_WRITE_PORT, 0, 65535, 'port'),
    maxConnections: integer(options.maxConnections, DEFAULT_MAX_CONNECTIONS, 1, 1_000_000, 'maxConnections'),
    idleTimeoutMs: integer(options.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS, 0, 2 ** 31 - 1, 'idleTimeoutMs'),
    maxPendingFrames: integer(options.maxPendingFrames, DEFAULT_MAX_PENDING_FRAMES, 1, 1 << 20, 'maxPendingFrames'),
  };
}

function integer(value: number | undefined, fallback: number, min: number, max: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(`${what} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** Serve the write protocol into `log`; the handle's close() closes the log. */
async function serve(
  log: CommitLogSink & { close(): Promise<void>; handingOverBytes(seen?: ReadonlyMap<number, number>): number; readonly handedOverBytes: number },
  dataDir: DataDir,
  settings: Settings,
  logger: Logger,
  trace: CommitTrace | null,
  flow: FlowControl,
  record: FlowRecordWriter,
  producers: ProducerTable | null,
  results: ResultLookup | null,
): Promise<WriterHandle> {
  const { inlineMax, rejoinUs } = commitTuningFromEnv(), groupCommit = new GroupCommit(log, dataDir.sizes, logger, trace, flow, inlineMax, rejoinUs);
  flow.attach((seen) => log.handingOverBytes(seen), () => groupCommit.resume(), () => log.handedOverBytes);
  record.publish(flow.report());
  flow.start();
  const connections = new Set<WriteConnection>();
  /** Connections closed to admit new ones, until their sockets close. */
  const evicting = new Set<WriteConnection>();
  let closedAll: (() => void) | null = null;
  const ctx: ConnectionContext = {
    sizes: dataDir.sizes,
    frameSize: writeFrameSize(dataDir.sizes),
    maxPendingFrames: settings.maxPendingFrames,
    groupCommit,
    replies: new ReplyWriter(settings.maxPendingFrames),
    logger,
    lengths: new Int32Array(2),
    lingerMs: LINGER_MS,
    // Cluster mode answers a hello with version 1 at most (no producers): its
    // replicated log carries version-1 op entries only (docs/cluster.md).
    extensions: true,
    producers,
    results,
    closed(conn) {
      evicting.delete(conn);
      connections.delete(conn);
      metrics.writeConnections.dec();
      if (closedAll !== null && connections.size === 0) closedAll();
    },
  };

  const server = net.createServer({ allowHalfOpen: true, noDelay: true });
  acceptConnections(server, connections, evicting, ctx, settings.maxConnections, logger);
  const sweeper = settings.idleTimeoutMs > 0 ? sweepIdle(connections, settings.idleTimeoutMs) : null;
  server.on('error', (err) => logger.error('write server error', { error: err.message }));

  await listen(server, settings.listen, settings.port);
  const bound = server.address() as net.AddressInfo;
  logger.info('countd-write listening', { address: bound.address, port: bound.port });

  let closing: Promise<void> | null = null;
  const close = async (): Promise<void> => {
    server.close();
    if (sweeper !== null) clearInterval(sweeper);
    // Read nothing more; every frame already received is made durable and answered.
    for (const conn of connections) conn.drain();
    await groupCommit.whenIdle();
    results?.close(); // replies waiting for a count and rank say "unknown" now
    // Each connection has ended itself once answered; give clients a moment to read, then cut.
    if (connections.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        closedAll = resolve;
        timer = setTimeout(resolve, LINGER_MS);
      });
      clearTimeout(timer);
      for (const conn of connections) conn.destroy();
    }
    await log.close();
    flow.close();
    await record.close();
    trace?.stop();
    logger.info('countd-write closed');
  };
  return {
    port: bound.port,
    address: bound.address,
    close: () => (closing ??= close()),
  };
}

/**
 * Take each new connection into `connections`. At `maxConnections`, an idle
 * connection is closed to make room (evictIdle), else the new one is closed
 * at once.
 */
function acceptConnections(
  server: net.Server,
  connections: Set<WriteConnection>,
  evicting: Set<WriteConnection>,
  ctx: ConnectionContext,
  maxConnections: number,
  logger: Logger,
): void {
  let refused = 0;
  let lastRefusalLog = -Infinity;
  server.on('connection', (socket) => {
    if (connections.size - evicting.size >= maxConnections && !evictIdle(connections, evicting)) {
      socket.destroy();
      refused++;
      const now = Date.now();
      if (now - lastRefusalLog >= REFUSAL_LOG_INTERVAL_MS) {
        // At most one line per interval: a flood of connections must not flood the log.
        logger.warn('too many write connections; closing new ones', { limit: maxConnections, refused });
        lastRefusalLog = now;
        refused = 0;
      }
      return;
    }
    socket.setNoDelay(true);
    const conn = new WriteConnection(socket, ctx);
    connections.add(conn);
    metrics.writeConnections.inc();
  });
}

/**
 * Close connections idle for `idleTimeoutMs`. They are found by a sweep
 * rather than by socket.setTimeout, which re-arms a timer on every read and
 * write (a few percent of the CPU at full load). A connection inactive for
 * IDLE_SWEEPS sweeps in a row, one every idleTimeoutMs / IDLE_SWEEPS, has
 * been idle for at least idleTimeoutMs (and is closed within 1.25 ×
 * idleTimeoutMs).
 */
function sweepIdle(connections: Set<WriteConnection>, idleTimeoutMs: number): NodeJS.Timeout {
  const sweeper = setInterval(() => {
    for (const conn of connections) {
      if (conn.active) {
        conn.active = false;
        conn.idleSweeps = 0;
      } else if (++conn.idleSweeps >= IDLE_SWEEPS) {
        conn.idleSweeps = 0;
        conn.idle();
      }
    }
  }, Math.max(1, Math.floor(idleTimeoutMs / IDLE_SWEEPS)));
  sweeper.unref();
  return sweeper;
}

function listen(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      const code = errnoCode(err);
      const why = code === 'EADDRINUSE' ? 'address in use' : code === 'EACCES' ? 'permission denied' : err.message;
      reject(new CountdError(ErrorCodes.INVALID_ARGUMENT, `cannot listen on ${host}:${port}: ${why}`, { cause: err }));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host, port });
  });
}

/**
 * At the connection limit, make room for a new connection: close the one
 * idle the longest among those with no frame in flight (nothing received
 * waits for its WIN, and every WIN is handed to the kernel; a partial frame
 * is never acknowledged, so it may go). Idle clients, or clients holding
 * half a frame, so never lock writers out. False when every connection has
 * frames in flight or replies not yet sent.
 */
function evictIdle(connections: Set<WriteConnection>, evicting: Set<WriteConnection>): boolean {
  let best: WriteConnection | undefined;
  for (const c of connections) {
    if (evicting.has(c) || !c.quiet || c.socket.writableLength > 0) continue;
    // Set order is arrival order: among equally idle ones, the oldest goes.
    if (best === undefined || (best.active && !c.active) || (best.active === c.active && c.idleSweeps > best.idleSweeps)) best = c;
  }
  if (best === undefined) return false;
  evicting.add(best);
  best.destroy();
  return true;
}
