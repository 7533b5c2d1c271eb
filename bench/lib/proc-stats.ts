// Process and disk figures read from /proc and the file system (Linux).

import { readFileSync, readdirSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** A kB field of /proc/<pid>/status (e.g. VmHWM, VmRSS) in bytes; 0 if the process is gone. */
export function statusBytes(pid: number, field: string): number {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'latin1');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Sum of peak RSS (VmHWM) over the processes. */
export function peakRss(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + statusBytes(pid, 'VmHWM'), 0);
}

/** The PIDs of `root` and all its descendants (scans /proc for parent links). */
export function processTree(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parentOf.set(Number(name), Number(fields[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    for (const [pid, ppid] of parentOf) if (ppid === out[i] && !out.includes(pid)) out.push(pid);
  }
  return out;
}

/** CPU time (user + system) of a process so far, in seconds; 0 if gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3; utime and stime are fields 14 and 15. Clock ticks are 100/s on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * Bytes under `dir`: 'allocated' counts blocks on disk (what `du` shows, so
 * preallocated files count in full), 'apparent' counts file lengths.
 */
export async function dirBytes(dir: string, kind: 'allocated' | 'apparent', seen = new Set<string>()): Promise<number> {
  let total = 0;
  let entries: string[];
  try {
    entries = await fsp.readdir(dir);
  } catch {
    return 0;
  }
  for (const name of entries) {
    const p = path.join(dir, name);
    let st;
    try {
      st = await fsp.lstat(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) {
      total += await dirBytes(p, kind, seen);
    } else if (st.isFile()) {
      // Hard links (countd's lock-<index>) are one file: count each inode once, as du does.
      const inode = `${st.dev}:${st.ino}`;
      if (seen.has(inode)) continue;
      seen.add(inode);
      total += kind === 'allocated' ? st.blocks * 512 : st.size;
    }
  }
  return total;
}
