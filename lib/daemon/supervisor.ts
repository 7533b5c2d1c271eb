// The supervisor of `countd start` (docs/architecture.md, "Roles"): one
// process that runs two children over an IPC channel, so that both cores do
// useful work and the database stays in one process:
//
//   writer child   countd-write                    (port: write)
//   store child    countd-worker + countd-read     (port: read; holds LevelDB)
//
// It owns the data directory for the daemon's lifetime (<data-dir>/daemon.lock:
// daemon-lock.ts), writes daemon.json once both children listen, serves
// the children's metrics merged with its own on --metrics-port (and starts
// the HTTP server of --http-port, lib/http/, through the `http` hook), restarts a
// child that dies (with backoff; the dead child's commit-log locks are freed
// by the pool's stale-lock recovery), and stops in order on SIGTERM/SIGINT:
// writer first (acknowledgements in flight finish, the log is handed over),
// then the store child (the worker finishes its apply), then daemon.json and
// the lock file go.
//
// IPC messages (JSON over the fork channel):
//   child -> supervisor  {type:'ready', ports:{write?|read?}}   listening
//                        {type:'fatal', code, message}           could not start; exits 1
//                        {type:'metrics', id, metrics}           reply: registry.getMetricsAsJSON()
//   supervisor -> child  {type:'metrics', id}                    ask for metrics
//                        {type:'stop'}                           close in order, exit 0
// A child also stops when the channel closes (the supervisor died).

import { ChildProcess, fork } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { AggregatorRegistry, MetricObjectWithValues, MetricValue, Registry, prometheusContentType } from 'prom-client';
import { CommitLogPool } from '../commitlog/pool.js';
import { DaemonRecord, removeDaemonRecord, writeDaemonRecord } from '../datadir/daemon-record.js';
import { DataDir } from '../datadir/meta.js';
import { CountdError, ErrorCode, ErrorCodes, isCountdError } from '../errors.js';
import { metrics, registry } from '../metrics.js';
import { heapLimitOption, isHeapLimitOption, isSemiSpaceOption, semiSpaceOption, withStoreMallocArenas } from '../roles/memory-budget.js';
import { Logger } from '../util/log.js';
import type { DaemonSettings } from './settings.js';
import { selfIdentity } from '../util/proc.js';
import { acquireDaemonLock, releaseDaemonLock } from './daemon-lock.js';

export type ChildKind = 'writer' | 'store';

/**
 * What a child is told to run (passed in the COUNTD_CHILD_SPEC environment
 * variable, as JSON): its kind and the daemon's settings, whole. The writer
 * child listens on settings.writePort, the store child on settings.readPort;
 * the store child lowers its priority to settings.storeNice before it opens
 * anything (child-main.ts).
 */
export interface ChildSpec {
  kind: ChildKind;
  settings: DaemonSettings;
}

export const CHILD_SPEC_ENV = 'COUNTD_CHILD_SPEC';

/**
 * The environment of a child: the supervisor's, its spec, and for the store
 * child two malloc arenas (memory-budget.ts, withStoreMallocArenas).
 */
export function childEnv(spec: ChildSpec): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_SPEC_ENV]: JSON.stringify(spec) };
  return spec.kind === 'store' ? withStoreMallocArenas(env) : env;
}

/**
 * Node.js options of a child: the supervisor's own, and for a store child
 * with a memory setting, V8's old-space limit derived from it
 * (memory-budget.ts: without it V8 lets garbage grow with an overload).
 */
export function childExecArgv(spec: ChildSpec): string[] {
  // Under --memory (the whole daemon), both children keep a small young generation.
  const young = spec.settings.memory === undefined ? [] : [semiSpaceOption()];
  const base = spec.settings.memory === undefined ? process.execArgv : process.execArgv.filter((arg) => !isSemiSpaceOption(arg));
  const memory = spec.settings.storeMemory;
  if (spec.kind !== 'store' || memory === undefined) return [...base, ...young];
  return [...base.filter((arg) => !isHeapLimitOption(arg)), heapLimitOption(memory), ...young];
}

export type ChildMessage =
  | { type: 'ready'; ports: { write?: number; read?: number } }
  | { type: 'fatal'; code: ErrorCode; message: string }
  | { type: 'metrics'; id: number; metrics: object[] };

export type SupervisorMessage = { type: 'metrics'; id: number } | { type: 'stop' };

/** What the supervisor hands the HTTP server of --http-port (lib/http/). */
export interface HttpHookContext {
  listen: string;
  port: number;
  dataDir: DataDir;
  /** The daemon as daemon.json will record it (httpPort aside). */
  daemon: Omit<DaemonRecord, 'httpPort'>;
  logger: Logger;
  /** Every process's metrics summed, as Prometheus text and as prom-client JSON. */
  metricsText(): Promise<string>;
  metricsJson(): Promise<MetricObjectWithValues<MetricValue<string>>[]>;
}

/**
 * The HTTP server of `countd start --http-port`, injected by the start
 * command so that the roles do not depend on lib/http/. Started once both
 * children listen, closed after both stopped.
 */
export interface HttpHook {
  port: number;
  start(ctx: HttpHookContext): Promise<{ port: number; close(): Promise<void> }>;
}

export interface SupervisorOptions {
  dataDir: DataDir;
  /** The module forked for each child (dist/lib/daemon/child-main.js). */
  childModule: string;
  /** The daemon's settings (settings.ts), handed to both children whole. */
  settings: DaemonSettings;
  /** Console, JSON API and /metrics on settings.httpPort (lib/http/), when set. */
  http?: HttpHook;
  logger: Logger;
  /** First restart delay; doubles per quick failure up to maxRestartDelayMs. Default 250. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** How long a child may take to stop before it is killed. Default 30,000. */
  stopTimeoutMs?: number;
}

export interface SupervisorHandle {
  readonly record: DaemonRecord;
  /** Stop in order (writer, then store), remove daemon.json and the lock. Idempotent. */
  stop(): Promise<void>;
  /** Resolves when the daemon has stopped. */
  readonly stopped: Promise<void>;
}


/** A child that ran at least this long before dying is restarted after the first delay again. */
const HEALTHY_AFTER_MS = 10_000;
const METRICS_TIMEOUT_MS = 2000;

/**
 * Start the daemon: take the data directory's lock, fork both children, wait
 * until both listen, write daemon.json, serve metrics. Rejects (with
 * everything it started stopped) when the daemon cannot start.
 */
export async function startSupervisor(options: SupervisorOptions): Promise<SupervisorHandle> {
  const sup = new Supervisor(options);
  await sup.start();
  return sup;
}

class Supervisor implements SupervisorHandle {
  readonly #o: SupervisorOptions;
  readonly #log: Logger;
  readonly #children: Record<ChildKind, ChildSlot>;
  #record: DaemonRecord | undefined;
  #metricsServer: http.Server | undefined;
  #httpServer: { close(): Promise<void> } | undefined;
  #lockHeld = false;
  #stopping: Promise<void> | undefined;
  #resolveStopped!: () => void;
  readonly stopped: Promise<void>;

  constructor(options: SupervisorOptions) {
    this.#o = options;
    this.#log = options.logger.child('supervisor');
    // The data directory as opened (and created) by the caller, so the children need not resolve it again.
    const settings = { ...options.settings, dataDir: options.dataDir.paths.root };
    this.#children = {
      writer: new ChildSlot({ kind: 'writer', settings: { ...settings } }, this),
      store: new ChildSlot({ kind: 'store', settings: { ...settings } }, this),
    };
    this.stopped = new Promise((resolve) => (this.#resolveStopped = resolve));
  }

  get options(): SupervisorOptions {
    return this.#o;
  }

  get logger(): Logger {
    return this.#log;
  }

  get isStopping(): boolean {
    return this.#stopping !== undefined;
  }

  get record(): DaemonRecord {
    if (!this.#record) throw new CountdError(ErrorCodes.NOT_RUNNING, 'the daemon has not started');
    return this.#record;
  }

  async start(): Promise<void> {
    const paths = this.#o.dataDir.paths;
    await this.#acquireLock();
    try {
      // The store child first: it holds LevelDB, the backstop against a second daemon.
      const storePorts = await this.#children.store.startFirst().catch((err: unknown) => {
        if (isCountdError(err, ErrorCodes.LOCKED)) {
          throw new CountdError(
            ErrorCodes.ALREADY_RUNNING,
            `the database of ${paths.root} is held by another process (another countd daemon, or countd-worker)`,
            { cause: err },
          );
        }
        throw err;
      });
      const writerPorts = await this.#children.writer.startFirst();
      let metricsPort: number | undefined;
      if (this.#o.settings.metricsPort !== undefined) metricsPort = await this.#serveMetrics(this.#o.settings.metricsPort);
      const self = selfIdentity();
      const daemon: Omit<DaemonRecord, 'httpPort'> = {
        pid: self.pid,
        start: self.start,
        listen: this.#o.settings.listen,
        writePort: writerPorts.write!,
        readPort: storePorts.read!,
        ...(metricsPort === undefined ? {} : { metricsPort }),
        ...(this.#o.settings.nats === undefined ? {} : { nats: this.#o.settings.nats }),
        startedAt: new Date().toISOString(),
      };
      const httpPort = await this.#startHttp(daemon);
      this.#record = { ...daemon, ...(httpPort === undefined ? {} : { httpPort }) };
      await writeDaemonRecord(paths, this.#record);
      this.#log.info('daemon started', {
        pid: self.pid,
        listen: this.#o.settings.listen,
        writePort: this.#record.writePort,
        readPort: this.#record.readPort,
        metricsPort,
        httpPort,
        dataDir: paths.root,
      });
    } catch (err) {
      await this.#shutdown().catch(() => {});
      throw err;
    }
  }

  stop(): Promise<void> {
    return this.#shutdown();
  }

  #shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info('stopping: writer first, then worker and reader');
      const timeout = this.#o.stopTimeoutMs ?? 30_000;
      try {
        await this.#children.writer.stop(timeout);
        await this.#children.store.stop(timeout);
        await this.#recoverLocksOfDeadChildren();
        await this.#httpServer?.close().catch(() => {});
        await new Promise<void>((resolve) => (this.#metricsServer ? this.#metricsServer.close(() => resolve()) : resolve()));
        this.#metricsServer?.closeAllConnections();
        await removeDaemonRecord(this.#o.dataDir.paths);
      } finally {
        await this.#releaseLock();
        this.#log.info('stopped');
        this.#resolveStopped();
      }
    })();
    return this.#stopping;
  }

  /**
   * A child killed while it owned a commit log (kill -9, OOM) leaves its lock;
   * the worker frees such locks periodically, but a clean stop should leave a
   * clean pool. Locks still within the pool's grace period, or of other live
   * processes sharing the pool, stay (the next worker recovers them).
   */
  async #recoverLocksOfDeadChildren(): Promise<void> {
    if (!this.#children.writer.restarted && !this.#children.store.restarted) return;
    try {
      const pool = await CommitLogPool.open({ dir: this.#o.dataDir.paths.commitlog, sizes: this.#o.dataDir.sizes, logger: this.#log });
      const n = await pool.recoverStaleLocks();
      if (n > 0) this.#log.info('freed commit-log locks of children that died', { locks: n });
    } catch (err) {
      this.#log.warn('could not free commit-log locks of children that died', { error: (err as Error).message });
    }
  }

  // ---- the data directory's lock (daemon-lock.ts) ----------------------------------

  async #acquireLock(): Promise<void> {
    await acquireDaemonLock(this.#o.dataDir.paths, this.#log);
    this.#lockHeld = true;
  }

  async #releaseLock(): Promise<void> {
    if (!this.#lockHeld) return;
    this.#lockHeld = false;
    await releaseDaemonLock(this.#o.dataDir.paths);
  }

  // ---- metrics and the HTTP server -------------------------------------------------

  async #startHttp(daemon: Omit<DaemonRecord, 'httpPort'>): Promise<number | undefined> {
    const hook = this.#o.http;
    if (hook === undefined) return undefined;
    const server = await hook.start({
      listen: this.#o.settings.listen,
      port: hook.port,
      dataDir: this.#o.dataDir,
      daemon,
      logger: this.#o.logger.child('http'),
      metricsText: async () => (await this.#aggregateMetrics()).metrics(),
      metricsJson: async () => (await this.#aggregateMetrics()).getMetricsAsJSON(),
    });
    this.#httpServer = server;
    return server.port;
  }

  async #serveMetrics(port: number): Promise<number> {
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
        return;
      }
      this.#aggregateMetrics().then(async (reg) => reg.metrics()).then(
        (text) => res.writeHead(200, { 'content-type': prometheusContentType }).end(text),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`),
      );
    });
    this.#metricsServer = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void =>
        reject(new CountdError(ErrorCodes.IO_ERROR, `metrics server cannot listen on ${this.#o.settings.listen}:${port}: ${err.message}`, { cause: err }));
      server.once('error', onError);
      server.listen(port, this.#o.settings.listen, () => {
        server.off('error', onError);
        resolve();
      });
    });
    // Errors after listening (e.g. EMFILE on accept) are logged; without a handler one would end the supervisor.
    server.on('error', (err) => this.#log.error('metrics server error', { error: err.message }));
    return (server.address() as net.AddressInfo).port;
  }

  /**
   * Every process records into its own copy of the metrics of lib/metrics.ts
   * (each role's metrics are non-zero in one process only), so summing the
   * copies gives the daemon's figures, in one valid exposition (plain
   * concatenation would repeat every metric family).
   */
  async #aggregateMetrics(): Promise<Registry> {
    const parts = await Promise.all([
      registry.getMetricsAsJSON(),
      this.#children.writer.metrics(METRICS_TIMEOUT_MS),
      this.#children.store.metrics(METRICS_TIMEOUT_MS),
    ]);
    return AggregatorRegistry.aggregate(parts.filter((p): p is object[] => p !== undefined));
  }
}

/** One child (writer or store) across its restarts. */
class ChildSlot {
  readonly #spec: ChildSpec;
  readonly #sup: Supervisor;
  readonly #log: Logger;
  #proc: ChildProcess | undefined;
  #startedAt = 0;
  #delay: number;
  #restartTimer: NodeJS.Timeout | undefined;
  #nextMetricsId = 1;
  #restarts = 0;
  readonly #metricsWaiters = new Map<number, (m: object[] | undefined) => void>();

  constructor(spec: ChildSpec, sup: Supervisor) {
    this.#spec = spec;
    this.#sup = sup;
    this.#log = sup.logger;
    this.#delay = sup.options.restartDelayMs ?? 250;
  }

  get name(): string {
    return this.#spec.kind;
  }

  /** True once this child died and was restarted at least once. */
  get restarted(): boolean {
    return this.#restarts > 0;
  }

  /** Fork for the first time; rejects with the child's own error when it cannot start. */
  async startFirst(): Promise<{ write?: number; read?: number }> {
    const ports = await this.#fork();
    // Restarts bind the same port, even when port 0 picked it: clients and daemon.json keep it.
    const settings = this.#spec.settings;
    if (this.#spec.kind === 'writer') settings.writePort = ports.write ?? settings.writePort;
    else settings.readPort = ports.read ?? settings.readPort;
    return ports;
  }

  #fork(): Promise<{ write?: number; read?: number }> {
    return new Promise((resolve, reject) => {
      const proc = fork(this.#sup.options.childModule, [this.#spec.kind], {
        env: childEnv(this.#spec),
        execArgv: childExecArgv(this.#spec),
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'json',
      });
      this.#proc = proc;
      this.#startedAt = Date.now();
      let settled = false;
      let fatal: CountdError | undefined;
      proc.on('message', (msg: ChildMessage) => {
        if (msg.type === 'ready') {
          this.#log.info(`${this.name} child ready`, { pid: proc.pid, ...msg.ports });
          if (!settled) {
            settled = true;
            resolve(msg.ports);
          }
        } else if (msg.type === 'fatal') {
          fatal = new CountdError(msg.code, msg.message);
        } else if (msg.type === 'metrics') {
          this.#metricsWaiters.get(msg.id)?.(msg.metrics);
        }
      });
      proc.on('error', (err) => {
        if (!settled) {
          settled = true;
          reject(new CountdError(ErrorCodes.IO_ERROR, `cannot start the ${this.name} child: ${err.message}`, { cause: err }));
        }
      });
      proc.on('exit', (code, signal) => {
        if (this.#proc === proc) this.#proc = undefined;
        for (const done of this.#metricsWaiters.values()) done(undefined);
        this.#metricsWaiters.clear();
        if (!settled) {
          settled = true;
          reject(fatal ?? new CountdError(ErrorCodes.IO_ERROR, `the ${this.name} child exited while starting (${signal ?? `code ${code}`})`));
          return;
        }
        if (this.#sup.isStopping) return;
        this.#onDeath(code, signal, fatal);
      });
    });
  }

  #onDeath(code: number | null, signal: NodeJS.Signals | null, fatal: CountdError | undefined): void {
    const ranMs = Date.now() - this.#startedAt;
    const initial = this.#sup.options.restartDelayMs ?? 250;
    if (ranMs >= HEALTHY_AFTER_MS) this.#delay = initial;
    const delay = this.#delay;
    this.#delay = Math.min(this.#delay * 2, this.#sup.options.maxRestartDelayMs ?? 5000);
    this.#log.warn(`${this.name} child died; restarting`, {
      exit: signal ?? code ?? undefined,
      error: fatal?.message,
      restartInMs: delay,
    });
    metrics.childRestarts.inc({ child: this.name });
    this.#restarts++;
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#sup.isStopping) return;
      this.#fork().catch((err: unknown) => {
        // The failed attempt's exit was handled above as "exited while starting": schedule the next.
        this.#log.error(`${this.name} child failed to restart`, { error: (err as Error).message });
        if (!this.#sup.isStopping) this.#onDeath(null, null, undefined);
      });
    }, delay);
  }

  /** Ask the child to stop (it closes its roles in order and exits 0); kill it after `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    const proc = this.#proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    if (proc.connected) proc.send({ type: 'stop' } satisfies SupervisorMessage);
    else proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.#log.error(`${this.name} child did not stop in time; killing it`, { pid: proc.pid, timeoutMs });
      proc.kill('SIGKILL');
    }, timeoutMs);
    await exited;
    clearTimeout(timer);
    if (proc.exitCode !== 0) this.#log.warn(`${this.name} child stopped`, { exit: proc.signalCode ?? proc.exitCode ?? undefined });
  }

  /** The child's metrics, or undefined when it is down or does not answer in time. */
  metrics(timeoutMs: number): Promise<object[] | undefined> {
    const proc = this.#proc;
    if (!proc || !proc.connected) return Promise.resolve(undefined);
    const id = this.#nextMetricsId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), timeoutMs);
      const done = (m: object[] | undefined): void => {
        clearTimeout(timer);
        this.#metricsWaiters.delete(id);
        resolve(m);
      };
      this.#metricsWaiters.set(id, done);
      proc.send({ type: 'metrics', id } satisfies SupervisorMessage, (err) => {
        if (err) done(undefined);
      });
    });
  }
}
