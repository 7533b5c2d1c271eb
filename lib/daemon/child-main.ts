// Entry point of a child of `countd start` (forked by lib/daemon/supervisor.ts
// with an IPC channel). Runs the writer, or the store (worker + reader),
// reports its ports when it listens, answers metric requests, and stops in
// order when told to or when its channel closes (the supervisor died).
// SIGINT and SIGTERM are ignored: sent to the whole process group they would
// stop both children at once, and the supervisor stops them in order itself.

import { readdirSync } from 'node:fs';
import os from 'node:os';
import { openDataDir } from '../datadir/meta.js';
import { CountdError, ErrorCodes } from '../errors.js';
import { registry } from '../metrics.js';
import { CHILD_SPEC_ENV, ChildMessage, ChildSpec, SupervisorMessage } from './supervisor.js';
import { createLogger, type Logger } from '../util/log.js';
import { RunningRole, runStore, runWriter } from './roles.js';

/**
 * The store child yields the CPU to the writer: on two cores shared by both,
 * acknowledgements come first and applying catches up after. On Linux a nice
 * value belongs to a thread, and threads inherit their creator's: so every
 * thread that exists now (the main one, V8's, libuv's pool, which Node's
 * module loader has already started) is lowered, before the store opens the
 * database (LevelDB's thread is created from the pool) or the worker starts
 * its summing thread (from the main one).
 */
function lowerPriority(nice: number, logger: Logger): void {
  let tids: number[] = [0];
  try {
    tids = readdirSync('/proc/self/task').map(Number);
  } catch {
    // No /proc: the calling thread only (elsewhere the nice value is per process).
  }
  try {
    for (const tid of tids) os.setPriority(tid, nice);
  } catch (err) {
    logger.warn("cannot lower the store child's priority", { nice, error: (err as Error).message });
  }
}

function send(msg: ChildMessage): void {
  if (process.connected) process.send?.(msg);
}

export async function childMain(): Promise<void> {
  const spec = JSON.parse(process.env[CHILD_SPEC_ENV] ?? 'null') as ChildSpec | null;
  if (!spec || !process.send) {
    process.stderr.write('countd: child-main.js is started by `countd start`, not by hand\n');
    process.exitCode = 2;
    return;
  }
  const settings = spec.settings;
  const logger = createLogger({ role: spec.kind, format: settings.logFormat, debug: settings.debug });
  if (spec.kind === 'store' && settings.storeNice) lowerPriority(settings.storeNice, logger);
  let role: RunningRole | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      logger.debug('stopping', { why });
      let code = 0;
      try {
        await role?.close();
      } catch (err) {
        logger.error('error while stopping', { error: (err as Error).message });
        code = 1;
      }
      process.exit(code);
    })();
    return stopping;
  };
  // Signals sent to the whole process group (Ctrl-C, `timeout`, a service manager's
  // control-group kill) must not stop the children out of order: the supervisor
  // receives them too and stops the writer first, then the store.
  const ignore = (signal: NodeJS.Signals): void => logger.debug(`${signal} ignored: the supervisor stops this child`);
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);
  process.on('disconnect', () => void stop('supervisor gone'));
  // 'disconnect' fires once: a supervisor that died while this module loaded is not heard of again.
  if (!process.connected) void stop('supervisor gone before this child started');
  process.on('message', (msg: SupervisorMessage) => {
    if (msg.type === 'stop') void stop('asked by the supervisor');
    else if (msg.type === 'metrics') {
      registry.getMetricsAsJSON().then(
        (metrics) => send({ type: 'metrics', id: msg.id, metrics: metrics as object[] }),
        () => send({ type: 'metrics', id: msg.id, metrics: [] }),
      );
    }
  });

  try {
    const dataDir = await openDataDir(settings.dataDir, { create: false });
    role = spec.kind === 'writer' ? await runWriter(dataDir, settings, logger) : await runStore(dataDir, settings, logger);
  } catch (err) {
    const e = err instanceof CountdError ? err : new CountdError(ErrorCodes.IO_ERROR, (err as Error).message, { cause: err });
    if (settings.debug) process.stderr.write(`${(err as Error).stack}\n`);
    process.removeAllListeners('disconnect');
    process.send({ type: 'fatal', code: e.code, message: e.message } satisfies ChildMessage, () => process.exit(1));
    return;
  }
  if (stopping) return; // told to stop while starting: stop() closes the role just set
  send({ type: 'ready', ports: role.ports });
}

void childMain();
