// Everything the benchmark starts (servers, temp dirs) is registered here and
// torn down on exit, also on SIGINT / SIGTERM and uncaught errors: a benchmark
// must never leave a redis-server or a countd daemon running behind it.
// Processes are ended by their own PID (plus, for countd, the children we saw
// it start), never by name.

import { rmSync } from 'node:fs';

export interface Tracked {
  what: string;
  pid?: number;
  /** More PIDs found later (e.g. a supervisor's children). */
  extraPids?: number[];
  dir?: string;
}

const tracked = new Set<Tracked>();
let installed = false;

export function track(entry: Tracked): Tracked {
  install();
  tracked.add(entry);
  return entry;
}

export function untrack(entry: Tracked): void {
  tracked.delete(entry);
}

/** Kill (SIGKILL) everything still tracked and remove its temp dirs. Synchronous: runs in 'exit'. */
export function killAll(): void {
  for (const entry of tracked) {
    for (const pid of [entry.pid, ...(entry.extraPids ?? [])]) {
      if (pid === undefined) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (entry.dir) {
      try {
        rmSync(entry.dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  }
  tracked.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping every server it started\n`);
      killAll();
      process.exit(130);
    });
  }
}
