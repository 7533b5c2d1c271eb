// Commit-log states are permission bits (docs/commit-log-format.md section 2):
// clean 0200, dirty 0400, quarantined 0000. Every process of a pool must open
// logs whatever their bits say (a writer reads and writes a 0200 log, stale-lock
// recovery reads a dead writer's log, release fsyncs a log it just made 0200),
// which only a process that may override file permissions can do: root, or a
// service user granted CAP_DAC_OVERRIDE (systemd `AmbientCapabilities=`).
// Without it the first claim would fail half-way with EACCES, so a pool refuses
// to open instead, with a message that says what to do.

import * as fs from 'node:fs';
import { CountdError, ErrorCodes } from '../errors.js';

/** Bit of CAP_DAC_OVERRIDE in the capability sets of /proc/<pid>/status (linux/capability.h). */
const CAP_DAC_OVERRIDE_BIT = 1n;

/**
 * Whether this process may open files whatever their mode: its effective
 * capability set (the `CapEff:` line of `status`, the text of
 * /proc/self/status) holds CAP_DAC_OVERRIDE. Without /proc, only root may.
 */
export function mayOverrideModes(status?: string): boolean {
  let text = status;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/status', 'latin1');
    } catch {
      return typeof process.getuid === 'function' && process.getuid() === 0;
    }
  }
  const line = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(text);
  if (line === null) return typeof process.getuid === 'function' && process.getuid() === 0;
  return ((BigInt(`0x${line[1]!}`) >> CAP_DAC_OVERRIDE_BIT) & 1n) === 1n;
}

/** Throw COUNTD_PERMISSION unless this process may open commit logs whatever their mode. */
export function requireModeOverride(dir: string, status?: string): void {
  if (mayOverrideModes(status)) return;
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  throw new CountdError(
    ErrorCodes.PERMISSION,
    `commit-log pool ${dir}: commit-log states are permission bits (0200, 0400, 0000), so countd must run as root ` +
      `or with CAP_DAC_OVERRIDE (uid ${uid} has neither; under systemd: AmbientCapabilities=CAP_DAC_OVERRIDE)`,
  );
}
