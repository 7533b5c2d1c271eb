// The role binaries: countd-write, countd-worker, countd-read. Each runs one
// role alone on a data directory until SIGTERM or SIGINT, then closes it and
// exits 0. `countd start` runs them all under a supervisor instead.

import yargs from 'yargs';
import type { Argv } from 'yargs';
import { openDataDir } from '../datadir/meta.js';
import { LogFormat, createLogger } from '../util/log.js';
import { reportError, UsageError } from './errors.js';
import {
  DEFAULT_READ_PORT,
  DEFAULT_WRITE_PORT,
  Flags,
  checkFlags,
  commonOptions,
  dataDirOf,
  intParser,
  logFormatOption,
  pageLimitOption,
  rolePortOption,
  serverTuningOptions,
  sizeOptions,
  storeMemoryOption,
  withOptions,
  DEFAULT_LISTEN,
} from './options.js';
import { hasHeapCap, onParentStop, runWithHeapCap } from './heap-cap.js';
import { RunningRole, runReader, runStore, runWriter } from './roles.js';
import { onStopSignal } from './signals.js';
import { packageVersion } from './version.js';
import { writerTuningOptions } from './options.js';

export type RoleName = 'write' | 'worker' | 'read';

const DESCRIPTIONS: Record<RoleName, string> = {
  write: 'accept increments on the write port and make them durable in the commit logs',
  worker: 'apply dirty commit logs to the database (with --read-port: also serve reads, since one process holds the database)',
  read: 'serve ranked pages from the database (which no worker may hold: see countd start)',
};

function parser(role: RoleName, argv: string[]): Argv {
  let y = yargs(argv)
    .scriptName(`countd-${role}`)
    .usage(`$0 [options]\n\n${DESCRIPTIONS[role]}`)
    .version(packageVersion())
    .help()
    .alias('h', 'help')
    .strict()
    .exitProcess(false)
    .check(checkFlags)
    .fail((message: string | null, err: Error | undefined) => {
      throw err ?? new UsageError(message ?? 'invalid command line');
    })
    .wrap(Math.min(100, process.stdout.columns || 100));
  y = withOptions(y, commonOptions, logFormatOption, sizeOptions);
  if (role === 'write') y = withOptions(y, rolePortOption(DEFAULT_WRITE_PORT), writerTuningOptions, serverTuningOptions);
  if (role === 'read') y = withOptions(y, rolePortOption(DEFAULT_READ_PORT), pageLimitOption, serverTuningOptions);
  if (role === 'worker') {
    y = withOptions(
      y,
      {
        listen: { type: 'string', default: DEFAULT_LISTEN, describe: 'address the read port listens on (with --read-port)' },
        'read-port': { type: 'string', describe: 'also serve reads on this port (0: any free port)', coerce: intParser('--read-port', 0, 65535) },
      },
      pageLimitOption,
      serverTuningOptions,
      storeMemoryOption,
    );
  }
  return y;
}

export async function roleMain(role: RoleName, argv: string[]): Promise<void> {
  const program = `countd-${role}`;
  const debug = argv.includes('--debug');
  try {
    const flags = (await parser(role, argv).parseAsync()) as Flags;
    if (flags.help || flags.version) return;
    const memory = flags['store-memory'] as number | undefined;
    if (memory !== undefined && !hasHeapCap(memory)) {
      process.exitCode = await runWithHeapCap(memory, argv, program);
      return;
    }
    await run(role, flags);
  } catch (err) {
    process.exitCode = reportError(err, program, debug);
  }
}

async function run(role: RoleName, flags: Flags): Promise<void> {
  const sizes: { keyspaceSize?: number; keySize?: number } = {};
  if (flags['keyspace-size'] !== undefined) sizes.keyspaceSize = flags['keyspace-size'] as number;
  if (flags['key-size'] !== undefined) sizes.keySize = flags['key-size'] as number;
  // A reader never creates a data directory: it would only serve an empty one.
  const dataDir = await openDataDir(dataDirOf(flags), { create: role !== 'read', sizes });
  const logger = createLogger({ role, format: flags['log-format'] as LogFormat, debug: flags.debug === true });
  // Stop requests are taken from the start: one that comes while the role starts stops it once it has.
  let stopRequested: string | undefined;
  let stopRunning: ((why: string) => void) | undefined;
  const requestStop = (why: string): void => (stopRunning ? stopRunning(why) : void (stopRequested ??= why));
  const removeSignals = onStopSignal((signal) => requestStop(`${signal} received`));
  // countd-worker runs in a child of its own when it caps its heap (heap-cap.ts).
  onParentStop(requestStop);
  const tuning = {
    maxConnections: flags['max-connections'] as number | undefined,
    idleTimeoutMs: flags['idle-timeout'] as number | undefined,
  };
  let running: RunningRole;
  if (role === 'write') {
    running = await runWriter(
      dataDir,
      {
        listen: flags.listen as string,
        port: flags.port as number,
        logSize: flags['log-size'] as number | undefined,
        handoverMs: flags['handover-ms'] as number | undefined,
        backlogSoft: flags['backlog-soft'] as number | undefined,
        backlogHard: flags['backlog-hard'] as number | undefined,
        ...tuning,
      },
      logger,
    );
  } else if (role === 'read') {
    running = await runReader(
      dataDir,
      { listen: flags.listen as string, port: flags.port as number, pageLimit: flags['page-limit'] as number | undefined, ...tuning },
      logger,
    );
  } else {
    const readPort = flags['read-port'] as number | undefined;
    running = await runStore(
      dataDir,
      readPort === undefined
        ? undefined
        : { listen: flags.listen as string, port: readPort, pageLimit: flags['page-limit'] as number | undefined, ...tuning },
      logger,
      {
        lockedHint: `the database ${dataDir.paths.db} is held by another process (a running countd start or countd-worker)`,
        memory: flags['store-memory'] as number,
      },
    );
  }
  const ports = Object.entries(running.ports).map(([k, v]) => `${k} port ${v}`);
  logger.info(`${`countd-${role}`} running${ports.length ? ': ' + ports.join(', ') : ''}`, { dataDir: dataDir.paths.root, pid: process.pid });
  await new Promise<void>((resolve) => {
    let stopping = false;
    stopRunning = (why: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info(`${why}; stopping`);
      running.close().then(
        () => {
          removeSignals();
          resolve();
        },
        (err: unknown) => {
          logger.error('error while stopping', { error: (err as Error).message });
          process.exitCode = 1;
          removeSignals();
          resolve();
        },
      );
    };
    if (stopRequested !== undefined) stopRunning(stopRequested);
  });
}
