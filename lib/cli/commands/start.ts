// countd start: run the daemon (writer + worker + reader) under a supervisor
// (lib/roles/supervisor.ts) until SIGTERM or SIGINT.

import type { Argv } from 'yargs';
import { fileURLToPath } from 'node:url';
import { openDataDir } from '../../datadir/meta.js';
import { LogFormat, createLogger } from '../../util/log.js';
import {
  Flags,
  commonOptions,
  dataDirOf,
  logFormatOption,
  pageLimitOption,
  serverTuningOptions,
  sizeOptions,
  startListenOptions,
  storeMemoryOption,
  storeNiceOption,
  withOptions,
  writerTuningOptions,
} from '../options.js';
import { onStopSignal } from '../signals.js';
import type { HttpHook } from '../../roles/supervisor.js';

export const command = 'start';
export const describe = 'run the daemon: write port, worker and read port, until SIGTERM or SIGINT';

export function builder(y: Argv): Argv {
  return withOptions(
    y,
    commonOptions,
    startListenOptions,
    writerTuningOptions,
    pageLimitOption,
    serverTuningOptions,
    storeNiceOption,
    storeMemoryOption,
    logFormatOption,
    sizeOptions,
  );
}

export async function handler(argv: Flags): Promise<void> {
  const sizes: { keyspaceSize?: number; keySize?: number } = {};
  if (argv['keyspace-size'] !== undefined) sizes.keyspaceSize = argv['keyspace-size'] as number;
  if (argv['key-size'] !== undefined) sizes.keySize = argv['key-size'] as number;
  const dataDir = await openDataDir(dataDirOf(argv), { create: true, sizes });
  const logFormat = argv['log-format'] as LogFormat;
  const debug = argv.debug === true;
  const logger = createLogger({ role: 'countd', format: logFormat, debug });
  const maxConnections = argv['max-connections'] as number | undefined;
  const idleTimeoutMs = argv['idle-timeout'] as number | undefined;
  // A signal while starting stops the daemon as soon as it is up (it cannot be half-stopped).
  let stopRequested: NodeJS.Signals | undefined;
  let requestStop = (signal: NodeJS.Signals): void => void (stopRequested = signal);
  const removeSignals = onStopSignal((signal) => requestStop(signal));
  // Loaded here, not at startup of every command: it brings prom-client and child_process.
  const { startSupervisor } = await import('../../roles/supervisor.js');
  let sup: Awaited<ReturnType<typeof startSupervisor>>;
  try {
    sup = await startSupervisor({
      dataDir,
      childModule: fileURLToPath(new URL('../child-main.js', import.meta.url)),
      listen: argv.listen as string,
      writePort: argv['write-port'] as number,
      readPort: argv['read-port'] as number,
      ...(argv['metrics-port'] === undefined ? {} : { metricsPort: argv['metrics-port'] as number }),
      ...(argv['http-port'] === undefined ? {} : { http: await httpHook(argv['http-port'] as number) }),
      logFormat,
      debug,
      logger,
      writer: {
        logSize: argv['log-size'] as number | undefined,
        handoverMs: argv['handover-ms'] as number | undefined,
        backlogSoft: argv['backlog-soft'] as number | undefined,
        backlogHard: argv['backlog-hard'] as number | undefined,
        maxConnections,
        idleTimeoutMs,
      },
      reader: { pageLimit: argv['page-limit'] as number | undefined, maxConnections, idleTimeoutMs },
      store: { nice: argv['store-nice'] as number, memory: argv['store-memory'] as number },
    });
  } catch (err) {
    removeSignals();
    throw err;
  }
  const started = sup;
  requestStop = (signal) => {
    logger.child('supervisor').info(`${signal} received`);
    void started.stop();
  };
  if (stopRequested) requestStop(stopRequested);
  await sup.stopped;
  removeSignals();
}

/** The HTTP server of --http-port (lib/http/), loaded only when asked for. */
async function httpHook(port: number): Promise<HttpHook> {
  const { startHttpServer } = await import('../../http/server.js');
  return { port, start: startHttpServer };
}
