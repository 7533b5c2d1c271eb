// The countd side of the side-by-side benchmark: the real daemon
// (`bin/countd start` in a child process, listening on 127.0.0.1 with
// ephemeral ports read back from <data-dir>/daemon.json), a sampler that
// watches its process tree (peak RSS, CPU) and its dirty-log backlog, and the
// write-frame load.

import { spawn, ChildProcess } from 'node:child_process';
import { createWriteStream, promises as fsp, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataDirPaths } from '../../lib/datadir/layout.js';
import { readLiveDaemonRecord } from '../../lib/datadir/daemon-record.js';
import { parsePoolName } from '../../lib/commitlog/filenames.js';
import { FieldSizes, writeFrameSize } from '../../lib/protocol/fields.js';
import { KeySet, ReadDataSet, keyName, keyspaceName } from './keys.js';
import { Protocol, fixedReplyCounter } from './pipeline.js';
import { REPLY_WIN } from '../../lib/protocol/write-frame.js';
import { processCpuSeconds, processTree, statusBytes } from './proc-stats.js';
import { Tracked, track, untrack } from './cleanup.js';

/**
 * bin/countd of this package (dist/bench/lib → ../../../bin), or
 * COUNTD_BENCH_BIN: another build's, for A/B runs of the same benchmark.
 */
export const COUNTD_BIN = process.env.COUNTD_BENCH_BIN ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/countd');

/**
 * COUNTD_BENCH_PROF_DIR=<dir>: run the daemon under `node --cpu-prof` into
 * that directory; its children inherit the flag (the supervisor passes its
 * Node.js options on), so each process, the store child's summing thread
 * included, writes a profile when it exits.
 */
const PROF_ARGS = process.env.COUNTD_BENCH_PROF_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.COUNTD_BENCH_PROF_DIR}`];

export interface BacklogSample {
  /** performance.now() of the sample, ms. */
  at: number;
  /** Dirty commit logs (mode 0400) waiting for the worker. */
  dirty: number;
}

export interface CountdDaemon {
  root: string;
  dataDir: string;
  writePort: number;
  readPort: number;
  pid: number;
  /** Every PID of the daemon's tree seen so far (supervisor + children, restarted ones too). */
  pids(): number[];
  /** Max VmHWM seen per PID, summed: peak RSS of the daemon. */
  peakRss(): number;
  /** The same per process: "supervisor 60 MiB, writer 80 MiB, store 300 MiB". */
  peakRssByProcess(): { pid: number; role: string; bytes: number }[];
  /** CPU seconds used so far by the live processes of the tree. */
  cpuSeconds(): number;
  /** Dirty logs right now. */
  dirtyLogs(): Promise<number>;
  /** Seconds the writer has spent so far with its acknowledgements delayed, and stopped, by flow control (its flow.<pid>.json). */
  flowSeconds(): { delayed: number; stopped: number };
  /** Sampled backlog since start (every `sampleMs`). */
  backlog: BacklogSample[];
  stop(): Promise<void>;
}

export interface StartCountdOptions {
  /** Extra flags for `countd start` (e.g. settings under test). */
  extraArgs?: string[];
  sampleMs?: number;
  /** Added to the daemon's environment (e.g. COUNTD_COMMIT_DURABILITY for an A/B run). */
  env?: NodeJS.ProcessEnv;
  /** The `countd` program to run (another build, for an A/B run of two builds); default COUNTD_BIN. */
  bin?: string;
}

export async function startCountd(options: StartCountdOptions = {}): Promise<CountdDaemon> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-bench-countd-'));
  const dataDir = path.join(root, 'data');
  const logFile = path.join(root, 'daemon.log');
  const args = [
    ...PROF_ARGS,
    options.bin ?? COUNTD_BIN, 'start',
    '--data-dir', dataDir,
    '--listen', '127.0.0.1',
    '--write-port', '0',
    '--read-port', '0',
    ...(options.extraArgs ?? []),
  ];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  const log = createWriteStream(logFile);
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  const pid = child.pid;
  if (pid === undefined) throw new Error('cannot start countd');
  const entry: Tracked = track({ what: 'countd start', pid, extraPids: [], dir: root });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const tail = async (): Promise<string> => {
    const text = await fsp.readFile(logFile, 'utf8').catch(() => '');
    return text.split('\n').slice(-15).join('\n');
  };

  const paths = dataDirPaths(dataDir);
  const deadline = Date.now() + 30_000;
  let record;
  for (;;) {
    record = await readLiveDaemonRecord(paths).catch(() => undefined);
    if (record && record.writePort > 0 && record.readPort > 0) break;
    if (exited) throw new Error(`countd start exited before listening; its log:\n${await tail()}`);
    if (Date.now() > deadline) throw new Error(`countd start wrote no daemon.json within 30 s; its log:\n${await tail()}`);
    await sleep(50);
  }

  const hwm = new Map<number, number>();
  const sampleTree = (): void => {
    for (const p of processTree(pid)) {
      const peak = statusBytes(p, 'VmHWM');
      if (peak > (hwm.get(p) ?? 0)) hwm.set(p, peak);
      if (p !== pid && !entry.extraPids!.includes(p)) entry.extraPids!.push(p);
    }
  };
  const dirtyLogs = async (): Promise<number> => {
    let names: string[];
    try {
      names = await fsp.readdir(paths.commitlog);
    } catch {
      return 0;
    }
    let dirty = 0;
    for (const name of names) {
      if (parsePoolName(name).kind !== 'log') continue;
      try {
        const st = await fsp.stat(path.join(paths.commitlog, name));
        if ((st.mode & 0o777) === 0o400) dirty++;
      } catch {
        // removed meanwhile
      }
    }
    return dirty;
  };

  const backlog: BacklogSample[] = [];
  sampleTree();
  let sampling = false;
  const timer = setInterval(() => {
    if (sampling) return;
    sampling = true;
    sampleTree();
    void dirtyLogs()
      .then((dirty) => backlog.push({ at: performance.now(), dirty }))
      .finally(() => {
        sampling = false;
      });
  }, options.sampleMs ?? 200);
  timer.unref();

  return {
    root,
    dataDir,
    writePort: record.writePort,
    readPort: record.readPort,
    pid,
    pids: () => [pid, ...entry.extraPids!],
    peakRss: () => {
      sampleTree();
      let sum = 0;
      for (const v of hwm.values()) sum += v;
      return sum;
    },
    peakRssByProcess: () => {
      sampleTree();
      return [...hwm].map(([p, bytes]) => ({ pid: p, role: p === pid ? 'supervisor' : roleOf(p), bytes }));
    },
    cpuSeconds: () => processTree(pid).reduce((s, p) => s + processCpuSeconds(p), 0),
    dirtyLogs,
    flowSeconds: () => flowSeconds(dataDir),
    backlog,
    async stop() {
      clearInterval(timer);
      if (!exited) {
        const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timeout = sleep(15_000).then(() => {
          if (exited) return;
          for (const p of [pid, ...entry.extraPids!]) {
            try {
              process.kill(p, 'SIGKILL');
            } catch {
              // gone
            }
          }
        });
        await Promise.race([gone, timeout]);
        if (!exited) await gone;
      }
      // Children the supervisor failed to reap would keep the data dir busy.
      for (const p of entry.extraPids!) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone, as expected
        }
      }
      log.end();
      await fsp.rm(root, { recursive: true, force: true });
      untrack(entry);
    },
  };
}

/** Delayed and stopped seconds of every writer's flow record in `dataDir` (lib/roles/write/flow-record.ts), the current stretch included. */
export function flowSeconds(dataDir: string, now = Date.now()): { delayed: number; stopped: number } {
  const out = { delayed: 0, stopped: 0 };
  let names: string[];
  try {
    names = readdirSync(dataDir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^flow\.\d+\.json$/.test(name)) continue;
    try {
      const r = JSON.parse(readFileSync(path.join(dataDir, name), 'utf8')) as { state: string; since: number; delayed: { seconds: number }; stopped: { seconds: number } };
      out.delayed += r.delayed.seconds + (r.state === 'delayed' ? (now - r.since) / 1000 : 0);
      out.stopped += r.stopped.seconds + (r.state === 'stopped' ? (now - r.since) / 1000 : 0);
    } catch {
      // being rewritten (rename) or gone
    }
  }
  return out;
}

/**
 * Write frames (increment 1, ks<i % 1000>, key<i>) over the shared client
 * shape; every reply must be WIN. Frames are built on the fly into one
 * buffer per batch: a zero fill and two short ASCII writes each.
 */
export function frameProtocol(keys: KeySet, phase: number, connections: number, sizes: FieldSizes): Protocol {
  const streams = Array.from({ length: connections }, (_, c) => keys.stream(c, phase));
  const frameSize = writeFrameSize(sizes);
  const keyOffset = 8 + sizes.keyspaceSize;
  return {
    encode(conn, count) {
      const next = streams[conn]!;
      const buf = Buffer.alloc(frameSize * count);
      for (let i = 0, off = 0; i < count; i++, off += frameSize) {
        const k = next();
        buf.writeBigInt64LE(1n, off);
        buf.write(keyspaceName(k % keys.keyspaces), off + 8, 'latin1');
        buf.write(keyName(k), off + keyOffset, 'latin1');
      }
      return buf;
    },
    replyCounter: () => fixedReplyCounter(REPLY_WIN),
  };
}

/** Frames that write the read data set once (increment = the entry's count); run with `requests: set.size`. */
export function readSetFrameProtocol(set: ReadDataSet, sizes: FieldSizes): Protocol {
  const frameSize = writeFrameSize(sizes);
  const keyOffset = 8 + sizes.keyspaceSize;
  let next = 0;
  return {
    encode(_conn, count) {
      const buf = Buffer.alloc(frameSize * count);
      for (let i = 0, off = 0; i < count; i++, off += frameSize, next++) {
        buf.writeBigInt64LE(BigInt(set.count(next)), off);
        buf.write(set.keyspace(next), off + 8, 'latin1');
        buf.write(set.key(next), off + keyOffset, 'latin1');
      }
      return buf;
    },
    replyCounter: () => fixedReplyCounter(REPLY_WIN),
  };
}

/** A child's role: the first argument after its script (`fork(childModule, [kind])`), else its PID. */
/** A daemon process's role from its command line: `writer`, `store` (children), else the script's first argument or `pid N`. */
export function roleOf(pid: number): string {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const script = args.findIndex((a) => a.endsWith('.js'));
    return (script >= 0 ? args[script + 1] : undefined) ?? `pid ${pid}`;
  } catch {
    return `pid ${pid}`;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
