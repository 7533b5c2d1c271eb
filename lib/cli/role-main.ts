// The role binaries: countd-write, countd-worker, countd-read. Each runs one
// role alone on a data directory until SIGTERM or SIGINT, then closes it and
// exits 0. `countd start` runs them all under a supervisor instead.

import type { Argv } from 'yargs';
import { openDataDir } from '../datadir/meta.js';
import { hasHeapCap, onParentStop, runWithHeapCap } from '../daemon/heap-cap.js';
import { RunningRole, runReader, runStore, runWriter } from '../daemon/roles.js';
import { creationSizes, settingOptions, settingsOf, type DaemonSettings } from '../daemon/settings.js';
import { onStopSignal } from '../daemon/signals.js';
import { createLogger } from '../util/log.js';
import { reportError } from './errors.js';
import { withOptions } from './options.js';
import { programParser } from './parser.js';

export type RoleName = 'write' | 'worker' | 'read';

const DESCRIPTIONS: Record<RoleName, string> = {
  write: 'accept increments on the write port and make them durable in the commit logs',
  worker: 'apply dirty commit logs to the database (with --read-port: also serve reads, since one process holds the database)',
  read: 'serve ranked pages from the database (which no worker may hold: see countd start)',
};

function parser(role: RoleName, argv: string[]): Argv {
  return withOptions(programParser(argv, `countd-${role}`, `$0 [options]\n\n${DESCRIPTIONS[role]}`), settingOptions(role));
}

export async function roleMain(role: RoleName, argv: string[]): Promise<void> {
  const program = `countd-${role}`;
  const debug = argv.includes('--debug');
  try {
    const parsed = await parser(role, argv).parseAsync();
    if (parsed.help || parsed.version) return;
    const settings = settingsOf(role, parsed);
    const memory = settings.storeMemory;
    if (memory !== undefined && !hasHeapCap(memory)) {
      process.exitCode = await runWithHeapCap(memory, argv, program);
      return;
    }
    await run(role, settings);
  } catch (err) {
    process.exitCode = reportError(err, program, debug);
  }
}

async function run(role: RoleName, settings: DaemonSettings): Promise<void> {
  // A reader never creates a data directory: it would only serve an empty one.
  const dataDir = await openDataDir(settings.dataDir, { create: role !== 'read', sizes: creationSizes(settings) });
  const logger = createLogger({ role, format: settings.logFormat, debug: settings.debug });
  // Stop requests are taken from the start: one that comes while the role starts stops it once it has.
  let stopRequested: string | undefined;
  let stopRunning: ((why: string) => void) | undefined;
  const requestStop = (why: string): void => (stopRunning ? stopRunning(why) : void (stopRequested ??= why));
  const removeSignals = onStopSignal((signal) => requestStop(`${signal} received`));
  // countd-worker runs in a child of its own when it caps its heap (heap-cap.ts).
  onParentStop(requestStop);
  let running: RunningRole;
  if (role === 'write') running = await runWriter(dataDir, settings, logger);
  else if (role === 'read') running = await runReader(dataDir, settings, logger);
  else running = await runStore(dataDir, settings, logger, { lockedHint: `the database ${dataDir.paths.db} is held by another process (a running countd start or countd-worker)` });
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
