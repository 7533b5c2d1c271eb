// Is the original countd still running on a legacy directory? Its `lock-`
// links cannot say: it leaves them behind on every stop (a kill, and a Ctrl-C
// of its worker after a kill of its writer). What can: a process that has a
// file of the directory open (the original's writer and worker keep the log
// they hold open for as long as they run). Found through /proc (Linux), as
// far as this process may see other processes (root sees all of its PID
// namespace).

import { promises as fsp } from 'node:fs';
import path from 'node:path';

export interface LegacyHolder {
  pid: number;
  /** The process's command line, for the message. */
  command: string;
  /** Files of the legacy directory it has open (names relative to it). */
  files: string[];
}

async function readlinkOrUndefined(p: string): Promise<string | undefined> {
  try {
    return await fsp.readlink(p);
  } catch {
    return undefined; // the process or descriptor went away, or may not be looked at
  }
}

async function commandOf(pid: number): Promise<string> {
  try {
    const raw = await fsp.readFile(`/proc/${pid}/cmdline`);
    return raw.toString('utf8').split('\0').filter((s) => s !== '').join(' ') || `pid ${pid}`;
  } catch {
    return `pid ${pid}`;
  }
}

/**
 * Processes other than this one with files under `dir` (resolved) open.
 * Empty where /proc cannot be read.
 */
export async function findLegacyHolders(dir: string): Promise<LegacyHolder[]> {
  // /proc shows the real path of what a descriptor points to.
  const root = await fsp.realpath(dir).catch(() => path.resolve(dir));
  const inside = (target: string): string | undefined => {
    const rel = path.relative(root, target.replace(/ \(deleted\)$/, ''));
    return rel.startsWith('..') || path.isAbsolute(rel) ? undefined : rel === '' ? '.' : rel;
  };
  let pids: string[];
  try {
    pids = (await fsp.readdir('/proc')).filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid);
  } catch {
    return [];
  }
  const out: LegacyHolder[] = [];
  for (const pid of pids) {
    const files = new Set<string>();
    let fds: string[] = [];
    try {
      fds = await fsp.readdir(`/proc/${pid}/fd`);
    } catch {
      // gone, or not ours to look at
    }
    for (const fd of fds) {
      const target = await readlinkOrUndefined(`/proc/${pid}/fd/${fd}`);
      const rel = target === undefined ? undefined : inside(target);
      if (rel !== undefined && rel !== '.') files.add(rel);
    }
    if (files.size > 0) out.push({ pid: Number(pid), command: await commandOf(Number(pid)), files: [...files].sort() });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** Processes whose command line names the original's roles (its scripts countd-write, countd-worker run by Python). */
export async function findOriginalProcesses(): Promise<Array<{ pid: number; command: string }>> {
  let pids: string[];
  try {
    pids = (await fsp.readdir('/proc')).filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid);
  } catch {
    return [];
  }
  const out: Array<{ pid: number; command: string }> = [];
  for (const pid of pids) {
    let argv: string[];
    try {
      argv = (await fsp.readFile(`/proc/${pid}/cmdline`)).toString('utf8').split('\0').filter((s) => s !== '');
    } catch {
      continue;
    }
    if (argv.length < 2 || !/python/.test(path.basename(argv[0]!))) continue;
    if (argv.slice(1).some((a) => /(^|\/)countd-(write|worker)$/.test(a))) out.push({ pid: Number(pid), command: argv.join(' ') });
  }
  return out.sort((a, b) => a.pid - b.pid);
}
