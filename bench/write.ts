// npm run bench:write — durable write throughput of countd-write.
//
// Starts a writer in a child process (so the load generator does not share
// its event loop) on a temp data directory, drives it with N connections each
// keeping M frames in flight (bench/lib/write-load.ts), and prints the rate of
// frames acknowledged WIN (each durable: written and fdatasynced), next to a
// baseline: one write + fdatasync per 520-byte frame, what a server without
// group commit could do at best on this disk.
//
// Flags: --dir <parent dir> (default os.tmpdir()), --connections 50,
// --in-flight 16, --seconds 10, --warmup 1, --keyspaces 1000, --keys 1000,
// --baseline-seconds 2, --profile (the child writes a .cpuprofile to --dir or cwd),
// --no-fdatasync (diagnostic only: fdatasync becomes a no-op, which shows the
// CPU ceiling of the server when the disk costs nothing; NOT a durable figure).

import { spawn, ChildProcess } from 'node:child_process';
import fs, { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileOps, realFileOps } from '../lib/commitlog/fileops.js';
import { openDataDir } from '../lib/datadir/meta.js';
import { metrics } from '../lib/metrics.js';
import { DEFAULT_FIELD_SIZES, writeFrameSize } from '../lib/protocol/fields.js';
import { startWriter } from '../lib/roles/writer.js';
import { buildFramePool, runWriteLoad } from './lib/write-load.js';

const SELF = fileURLToPath(import.meta.url);

interface Flags {
  dir: string | undefined;
  connections: number;
  inFlight: number;
  seconds: number;
  warmup: number;
  keyspaces: number;
  keys: number;
  baselineSeconds: number;
  profile: boolean;
  noFdatasync: boolean;
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = {
    dir: undefined,
    connections: 50,
    inFlight: 16,
    seconds: 10,
    warmup: 1,
    keyspaces: 1000,
    keys: 1000,
    baselineSeconds: 2,
    profile: false,
    noFdatasync: false,
  };
  const numeric: Record<string, keyof Flags> = {
    '--connections': 'connections',
    '--in-flight': 'inFlight',
    '--seconds': 'seconds',
    '--warmup': 'warmup',
    '--keyspaces': 'keyspaces',
    '--keys': 'keys',
    '--baseline-seconds': 'baselineSeconds',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--dir') flags.dir = argv[++i];
    else if (arg === '--profile') flags.profile = true;
    else if (arg === '--no-fdatasync') flags.noFdatasync = true;
    else if (arg in numeric) {
      const value = Number(argv[++i]);
      if (!Number.isFinite(value) || value < 0) throw new Error(`${arg} needs a non-negative number`);
      (flags as unknown as Record<string, number>)[numeric[arg]!] = value;
    } else throw new Error(`unknown flag ${arg}`);
  }
  return flags;
}

/** Child mode: run a writer on `root` until SIGTERM, then report its group-commit metrics on stdout. */
async function child(root: string, noFdatasync: boolean): Promise<void> {
  const dataDir = await openDataDir(root);
  const fileOps: FileOps = noFdatasync ? { ...realFileOps, fdatasync: async () => {} } : realFileOps;
  const handle = await startWriter({ dataDir, port: 0, fileOps });
  process.stdout.write(JSON.stringify({ port: handle.port }) + '\n');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  process.once('SIGTERM', () => {
    const cpu = process.cpuUsage(cpu0);
    const seconds = (performance.now() - t0) / 1000;
    void (async () => {
      await handle.close();
      const frames = (await metrics.groupCommitFrames.get()).values;
      const fsync = (await metrics.fsyncSeconds.get()).values;
      const pick = (values: typeof frames, name: string): number => values.find((v) => v.metricName === name)?.value ?? 0;
      process.stdout.write(
        JSON.stringify({
          commits: pick(frames, 'countd_write_group_commit_frames_count'),
          frames: pick(frames, 'countd_write_group_commit_frames_sum'),
          fsyncs: pick(fsync, 'countd_write_fsync_seconds_count'),
          fsyncSeconds: pick(fsync, 'countd_write_fsync_seconds_sum'),
          cpuCores: (cpu.user + cpu.system) / 1e6 / seconds,
          systemCores: cpu.system / 1e6 / seconds,
        }) + '\n',
      );
      process.exit(0);
    })();
  });
}

interface ChildStats {
  commits: number;
  frames: number;
  fsyncs: number;
  fsyncSeconds: number;
  cpuCores: number;
  systemCores: number;
}

function startChild(root: string, profileDir: string | undefined, noFdatasync: boolean): Promise<{ proc: ChildProcess; port: number; stats: Promise<ChildStats> }> {
  const nodeArgs = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const proc = spawn(process.execPath, [...nodeArgs, SELF, '--child', root, ...(noFdatasync ? ['--no-fdatasync'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let port: number | undefined;
    let resolveStats!: (s: ChildStats) => void;
    const stats = new Promise<ChildStats>((r) => (resolveStats = r));
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const msg = JSON.parse(out.slice(0, nl)) as { port?: number } & ChildStats;
        out = out.slice(nl + 1);
        if (port === undefined && msg.port !== undefined) {
          port = msg.port;
          resolve({ proc, port, stats });
        } else resolveStats(msg);
      }
    });
    proc.once('error', reject);
    proc.once('exit', (code) => {
      if (port === undefined) reject(new Error(`writer child exited with ${String(code)} before listening`));
    });
  });
}

/** One pwrite + fdatasync per frame-sized write, for `seconds`: the rate without group commit. */
function baseline(dir: string, seconds: number, frameSize: number): number {
  const file = path.join(dir, 'baseline');
  const fd = fs.openSync(file, 'w');
  try {
    const logSize = 2 * 1024 * 1024;
    fs.writeSync(fd, Buffer.alloc(logSize));
    fs.fdatasyncSync(fd);
    const frame = Buffer.alloc(frameSize, 1);
    let n = 0;
    let pos = 0;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    let now = t0;
    while (now < end) {
      fs.writeSync(fd, frame, 0, frameSize, pos);
      fs.fdatasyncSync(fd);
      pos += frameSize;
      if (pos + frameSize > logSize) pos = 0;
      n++;
      now = performance.now();
    }
    return n / ((now - t0) / 1000);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') return child(argv[1]!, argv[2] === '--no-fdatasync');
  const flags = parseFlags(argv);
  const parent = flags.dir ?? os.tmpdir();
  const root = await fsp.mkdtemp(path.join(parent, 'countd-bench-write-'));
  let proc: ChildProcess | undefined;
  const cleanup = (): void => {
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

  const frameSize = writeFrameSize(DEFAULT_FIELD_SIZES);
  console.log(`countd write benchmark: ${flags.connections} connections × ${flags.inFlight} frames in flight, ${flags.seconds} s,`);
  console.log(`  ${flags.keyspaces} keyspaces × ${flags.keys} keys, ${frameSize}-byte frames, data dir under ${parent}, ${os.cpus().length} CPUs`);

  const started = await startChild(path.join(root, 'data'), flags.profile ? (flags.dir ?? process.cwd()) : undefined, flags.noFdatasync);
  proc = started.proc;
  const requests = buildFramePool({ frames: 16384, keyspaces: flags.keyspaces, keysPerKeyspace: flags.keys });
  const result = await runWriteLoad({
    port: started.port,
    connections: flags.connections,
    inFlight: flags.inFlight,
    durationMs: flags.seconds * 1000,
    warmupMs: flags.warmup * 1000,
    requests,
  });
  const exited = new Promise<void>((resolve) => proc!.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const stats = await Promise.race([started.stats, exited.then(() => null)]);
  await exited;

  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  console.log('');
  if (flags.noFdatasync) console.log('DIAGNOSTIC RUN WITH fdatasync DISABLED: the figures below are not durable writes');
  console.log(`durable acked frames/s:     ${fmt(result.perSecond)}   (${fmt(result.acked)} WIN in ${result.seconds.toFixed(2)} s)`);
  console.log(`  mean latency (Little):    ${result.meanLatencyMs.toFixed(2)} ms`);
  if (result.failedReplies || result.closedByServer) {
    console.log(`  FAILURES: ${result.failedReplies} non-WIN replies, ${result.closedByServer} connections closed by the server`);
  }
  if (stats) {
    console.log(`  group commits:            ${fmt(stats.commits)}, ${(stats.frames / Math.max(1, stats.commits)).toFixed(1)} frames each on average`);
    console.log(`  write+fdatasync:          ${((stats.fsyncSeconds / Math.max(1, stats.fsyncs)) * 1000).toFixed(3)} ms on average`);
    console.log(`  writer CPU:               ${stats.cpuCores.toFixed(2)} cores (${stats.systemCores.toFixed(2)} in the kernel; whole run incl. warm-up)`);
  }
  console.log(`  load generator CPU:       ${result.clientCpuCores.toFixed(2)} cores`);

  if (flags.baselineSeconds > 0) {
    const rate = baseline(root, flags.baselineSeconds, frameSize);
    console.log(`baseline, one write+fdatasync per ${frameSize}-byte frame: ${fmt(rate)} frames/s  (group commit: ×${(result.perSecond / rate).toFixed(1)})`);
  }
}

main().catch((err: unknown) => {
  console.error(`bench:write failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
