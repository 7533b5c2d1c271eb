// Process identity on Linux: a PID alone is reused, so a process is named by
// its PID plus its start time (field 22 of /proc/<pid>/stat, in clock ticks
// since boot). Used to tell a live lock owner or daemon from a dead one.

import { readFileSync } from 'node:fs';

export interface ProcessIdentity {
  pid: number;
  /** Start time in clock ticks since boot, as a decimal string; '' if unknown. */
  start: string;
}

export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); start time is field 22.
  return fields[19];
}

let self: ProcessIdentity | undefined;

export function selfIdentity(): ProcessIdentity {
  self ??= { pid: process.pid, start: processStartTime(process.pid) ?? '' };
  return self;
}

/** True when the process named by `id` still runs (same PID and same start time). */
export function isAlive(id: ProcessIdentity): boolean {
  if (!Number.isInteger(id.pid) || id.pid <= 0) return false;
  const start = processStartTime(id.pid);
  if (start === undefined) return false;
  // A zombie has exited; it only waits for its parent to reap it.
  try {
    const state = readFileSync(`/proc/${id.pid}/stat`, 'latin1');
    if (state.slice(state.lastIndexOf(')') + 2, state.lastIndexOf(')') + 3) === 'Z') return false;
  } catch {
    return false;
  }
  return id.start === '' || id.start === start;
}
