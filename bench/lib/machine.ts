// Facts about the machine a benchmark ran on, printed with the figures and
// written into BENCHMARKS.md, so numbers from different machines are never
// compared blindly.

import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import { redisVersion } from './redis.js';

export interface MachineFacts {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  os: string;
  /** Where the data directories live: mount point, device, file system, rotational or not. */
  disk: string;
  node: string;
  redis: string | undefined;
  /** 1-minute load average when the facts were taken: other work on the machine skews the figures. */
  loadAverage: number;
}

export function machineFacts(dataRoot: string, redisBinary: string | undefined): MachineFacts {
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    disk: describeDisk(dataRoot),
    node: process.version,
    redis: redisBinary ? redisVersion(redisBinary) : undefined,
    loadAverage: os.loadavg()[0] ?? 0,
  };
}

export function formatMachineFacts(f: MachineFacts): string[] {
  return [
    `CPU: ${f.cpuModel}, ${f.cores} cores`,
    `Memory: ${(f.memoryBytes / 2 ** 30).toFixed(1)} GiB`,
    `OS: ${f.os}`,
    `Disk: ${f.disk}`,
    `Node.js: ${f.node}`,
    `Redis: ${f.redis ?? 'not installed (skipped)'}`,
    `Load average (1 min) at start: ${f.loadAverage.toFixed(2)}`,
  ];
}

/** "ext4 on /dev/vda mounted at / (virtio, rotational=1)" for the file system holding `dir`. */
function describeDisk(dir: string): string {
  let mounts: { device: string; point: string; type: string; options: string }[] = [];
  try {
    mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [device = '', point = '', type = '', options = ''] = line.split(' ');
        return { device, point: point.replace(/\\040/g, ' '), type, options };
      });
  } catch {
    return 'unknown';
  }
  // The longest mount point that is a prefix of dir and on the same device.
  let best: (typeof mounts)[number] | undefined;
  let dev: number | undefined;
  try {
    dev = statSync(dir).dev;
  } catch {
    // dir gone: fall back to the path prefix only
  }
  for (const m of mounts) {
    if (!(dir === m.point || dir.startsWith(m.point.endsWith('/') ? m.point : m.point + '/'))) continue;
    if (dev !== undefined) {
      try {
        if (statSync(m.point).dev !== dev) continue;
      } catch {
        continue;
      }
    }
    if (!best || m.point.length > best.point.length) best = m;
  }
  if (!best) return 'unknown';
  let text = `${best.type} on ${best.device} mounted at ${best.point}`;
  const block = /^\/dev\/([a-z]+)/.exec(best.device)?.[1];
  if (block) {
    const rotational = readSys(`/sys/block/${block}/queue/rotational`);
    const model = readSys(`/sys/block/${block}/device/model`);
    const details = [model, block.startsWith('vd') ? 'virtio block device' : undefined, rotational !== undefined ? `rotational=${rotational}` : undefined]
      .filter(Boolean)
      .join(', ');
    if (details) text += ` (${details})`;
  }
  return text;
}

function readSys(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export interface CpuSnapshot {
  /** performance.now(), ms. */
  at: number;
  /** Busy clock ticks of the whole machine (/proc/stat: all but idle and iowait). */
  machineTicks: number;
  /** Ticks of this process plus its reaped children (and theirs): /proc/self/stat utime, stime, cutime, cstime. */
  ownTicks: number;
}

/** For otherCpuCores(): how busy the machine and this process tree have been so far. */
export function cpuSnapshot(): CpuSnapshot {
  let machineTicks = 0;
  let ownTicks = 0;
  try {
    const cpu = readFileSync('/proc/stat', 'latin1').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...
    machineTicks = cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]! + (cpu[7] ?? 0);
    const stat = readFileSync('/proc/self/stat', 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    // f[0] is field 3; utime, stime, cutime, cstime are fields 14 to 17.
    ownTicks = f[11]! + f[12]! + f[13]! + f[14]!;
  } catch {
    // not Linux: report 0
  }
  return { at: performance.now(), machineTicks, ownTicks };
}

/**
 * CPU used by processes the benchmark did not start, between two snapshots,
 * in cores. Take `b` after every server has exited and been reaped, so that
 * their CPU is in this process's cutime/cstime. Clock ticks are 100 per second.
 */
export function otherCpuCores(a: CpuSnapshot, b: CpuSnapshot): number {
  const seconds = (b.at - a.at) / 1000;
  if (seconds <= 0) return 0;
  return Math.max(0, (b.machineTicks - a.machineTicks - (b.ownTicks - a.ownTicks)) / 100 / seconds);
}
