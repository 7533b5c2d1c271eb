// countd start: run the daemon (writer + worker + reader) under a supervisor
// (lib/daemon/supervisor.ts) until SIGTERM or SIGINT. Its flags are the
// daemon's settings (lib/daemon/settings.ts).

import type { Argv } from 'yargs';
import { fileURLToPath } from 'node:url';
import { openDataDir } from '../../datadir/meta.js';
import { creationSizes, settingOptions, settingsOf } from '../../daemon/settings.js';
import { onStopSignal } from '../../daemon/signals.js';
import { createLogger } from '../../util/log.js';
import { Flags, withOptions } from '../options.js';
import type { HttpHook } from '../../daemon/supervisor.js';

export const command = 'start';
export const describe = 'run the daemon: write port, worker and read port, until SIGTERM or SIGINT';

export function builder(y: Argv): Argv {
  return withOptions(y, settingOptions('start'));
}

export async function handler(argv: Flags): Promise<void> {
  const settings = settingsOf('start', argv);
  const dataDir = await openDataDir(settings.dataDir, { create: true, sizes: creationSizes(settings) });
  const logger = createLogger({ role: 'countd', format: settings.logFormat, debug: settings.debug });
  // A signal while starting stops the daemon as soon as it is up (it cannot be half-stopped).
  let stopRequested: NodeJS.Signals | undefined;
  let requestStop = (signal: NodeJS.Signals): void => void (stopRequested = signal);
  const removeSignals = onStopSignal((signal) => requestStop(signal));
  // Loaded here, not at startup of every command: it brings prom-client and child_process.
  const { startSupervisor } = await import('../../daemon/supervisor.js');
  let sup: Awaited<ReturnType<typeof startSupervisor>>;
  try {
    sup = await startSupervisor({
      dataDir,
      childModule: fileURLToPath(new URL('../../daemon/child-main.js', import.meta.url)),
      settings,
      ...(settings.httpPort === undefined ? {} : { http: await httpHook(settings.httpPort) }),
      logger,
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
