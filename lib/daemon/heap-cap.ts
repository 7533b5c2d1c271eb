// countd-worker holds the database as countd start's store child does, so
// its --store-memory must cap V8's heap as the supervisor does for that
// child (lib/roles/memory-budget.ts). Node.js reads --max-old-space-size only
// at start-up and Node.js 20 has no exec(): when the cap is not in place, the
// role runs again in a child process that has it, and this process only
// relays stop requests to it and exits with its status.
//
// The child is told to stop over its IPC channel, not by a signal, so that a
// Ctrl-C (which reaches both processes) stops it once; and it stops when the
// channel closes, so that it never outlives this process (kill -9 included)
// holding the database.

import { spawn } from 'node:child_process';
import { heapLimitOption, isHeapLimitOption, withStoreMallocArenas } from '../roles/memory-budget.js';

/** The message this process sends its capped child to stop it. */
export const STOP_MESSAGE = 'countd:stop';

/** Whether this process already runs with the heap cap of `memory`. */
export function hasHeapCap(memory: number): boolean {
  return process.execArgv.includes(heapLimitOption(memory));
}

/**
 * Run this program again with `argv` under the heap cap of `memory`; resolve
 * with the exit code to use: the child's, or 1 if it was killed by a signal
 * (said on stderr as `program: ...`).
 */
export function runWithHeapCap(memory: number, argv: string[], program: string): Promise<number> {
  const execArgv = [...process.execArgv.filter((arg) => !isHeapLimitOption(arg)), heapLimitOption(memory)];
  const child = spawn(process.execPath, [...execArgv, process.argv[1]!, ...argv], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: withStoreMallocArenas(process.env),
  });
  const relay = (): void => {
    if (child.connected) child.send(STOP_MESSAGE);
  };
  process.on('SIGTERM', relay);
  process.on('SIGINT', relay);
  return new Promise((resolve) => {
    const done = (code: number): void => {
      process.off('SIGTERM', relay);
      process.off('SIGINT', relay);
      resolve(code);
    };
    child.on('error', (err) => {
      process.stderr.write(`${program}: cannot start ${process.execPath}: ${err.message}\n`);
      done(1);
    });
    child.on('exit', (code, signal) => {
      if (signal) process.stderr.write(`${program}: the worker process was killed by ${signal}\n`);
      done(code ?? 1);
    });
  });
}

/**
 * In the capped child: call `stop` when the parent asks, or when it is gone.
 * No-op in a process started without an IPC channel.
 */
export function onParentStop(stop: (why: string) => void): void {
  if (process.send === undefined) return;
  // The channel must not keep the process alive once the role has closed.
  process.channel?.unref();
  if (!process.connected) {
    stop('parent process gone');
    return;
  }
  process.on('message', (msg: unknown) => {
    if (msg === STOP_MESSAGE) stop('asked by the parent process');
  });
  process.on('disconnect', () => stop('parent process gone'));
}
