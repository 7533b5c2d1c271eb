// Test helpers for the CLI and the client: run the real bin/countd (and the
// role binaries) as child processes on temp data directories, start and stop
// a daemon, wait for conditions. Every process started here is tracked and
// killed by killAll() (call it in an `after` hook).

import { ChildProcess, spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DaemonRecord } from '../../lib/datadir/daemon-record.js';
import { isAlive } from '../../lib/util/proc.js';

/** The package root: dist/test/cli/ is three levels below it. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = (name = 'countd'): string => path.join(ROOT, 'bin', name);

const started = new Set<ChildProcess>();

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Environment for the binaries: no inherited COUNTD_DATA_DIR, a HOME of our own. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, ...extra };
  if (!('COUNTD_DATA_DIR' in extra)) delete e.COUNTD_DATA_DIR;
  return e;
}

/** Run a binary to completion. */
export function run(args: string[], options: { bin?: string; env?: Record<string, string>; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN(options.bin), ...args], { env: env(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
    started.add(proc);
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      started.delete(proc);
      resolve({ code, signal, stdout, stderr });
    });
    // A command that exits without reading stdin closes the pipe first (EPIPE):
    // its exit code and output are what the test asserts.
    proc.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') reject(err);
    });
    proc.stdin.end(options.input ?? '');
  });
}

/** Run `countd args...` with --data-dir appended. */
export function countd(dataDir: string, ...args: string[]): Promise<RunResult> {
  return run([...args, '--data-dir', dataDir]);
}

export async function tempDir(prefix = 'cli'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), `countd-test-${prefix}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export class Daemon {
  readonly proc: ChildProcess;
  readonly dataDir: string;
  stderr = '';
  #exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(proc: ChildProcess, dataDir: string) {
    this.proc = proc;
    this.dataDir = dataDir;
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.#exit = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** The daemon.json of this daemon, once it is written. */
  async record(): Promise<DaemonRecord> {
    return waitFor('daemon.json', async () => {
      if (this.proc.exitCode !== null) throw new Error(`daemon exited with ${this.proc.exitCode}: ${this.stderr}`);
      try {
        const r = JSON.parse(await fsp.readFile(path.join(this.dataDir, 'daemon.json'), 'utf8')) as DaemonRecord;
        return r.pid === this.pid ? r : undefined;
      } catch {
        return undefined;
      }
      // A daemon's start spawns three Node.js processes: on two cores shared
      // with the other test file of `--jobs 2` that can take well over 10 s.
    }, 25_000);
  }

  /** PIDs of the supervisor's children, by kind (from /proc). */
  async children(): Promise<{ writer?: number; store?: number }> {
    const out: { writer?: number; store?: number } = {};
    for (const name of await fsp.readdir('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = await fsp.readFile(`/proc/${name}/stat`, 'latin1');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid !== this.pid) continue;
        const cmd = (await fsp.readFile(`/proc/${name}/cmdline`, 'latin1')).split('\0');
        if (cmd.includes('writer')) out.writer = Number(name);
        if (cmd.includes('store')) out.store = Number(name);
      } catch {
        // gone meanwhile
      }
    }
    return out;
  }

  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.#exit;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.#exit;
  }
}

/** Start `countd start` on `dataDir` with free ports and a short handover; resolves once daemon.json is there. */
export async function startDaemon(dataDir: string, extra: string[] = []): Promise<{ daemon: Daemon; record: DaemonRecord }> {
  const proc = spawn(
    process.execPath,
    [BIN(), 'start', '--data-dir', dataDir, '--write-port', '0', '--read-port', '0', '--handover-ms', '50', ...extra],
    { env: env(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  started.add(proc);
  proc.on('exit', () => started.delete(proc));
  const daemon = new Daemon(proc, dataDir);
  proc.stdout!.resume();
  const record = await daemon.record();
  return { daemon, record };
}

/** A role binary (countd-write, countd-worker, countd-read) running in the background; its stderr is collected. */
export interface RoleProcess {
  proc: ChildProcess;
  out: { stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start a role binary; killAll() stops it if a test fails before it does. */
export function startRole(bin: string, args: string[]): RoleProcess {
  const proc = spawn(process.execPath, [BIN(bin), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  started.add(proc);
  const out = { stderr: '' };
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      started.delete(proc);
      resolve({ code, signal });
    }),
  );
  return { proc, out, exited };
}

/** Kill every process these helpers started and that still runs (after hooks). */
export async function killAll(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const proc of started) {
    if (proc.exitCode !== null || proc.signalCode !== null) continue;
    waits.push(new Promise((resolve) => proc.once('exit', resolve)));
    proc.kill('SIGKILL');
  }
  await Promise.all(waits);
  started.clear();
}

/** Poll a CLI command until its stdout satisfies `ok` (writes become readable once the worker applied them). */
export async function pollOutput(args: () => Promise<RunResult>, ok: (stdout: string) => boolean, timeoutMs = 10_000): Promise<RunResult> {
  let last: RunResult | undefined;
  try {
    return await waitFor(
      'command output',
      async () => {
        last = await args();
        return last.code === 0 && ok(last.stdout) ? last : undefined;
      },
      timeoutMs,
      100,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last output: ${JSON.stringify(last)}`);
  }
}

/** One clean error line: `countd: ...`, no stack trace. */
export function isOneCleanLine(stderr: string, program = 'countd'): boolean {
  return new RegExp(`^${program}: [^\\n]+\\n$`).test(stderr) && !/\n\s+at /.test(stderr);
}

export { isAlive };

/** Flip every bit of the byte at `at` in `file` (damage a commit log as a disk could); the file must be writable. */
export async function flipByte(file: string, at: number): Promise<void> {
  const fh = await fsp.open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}
