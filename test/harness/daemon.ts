// Run the real daemon (`bin/countd start`) for the crash tests: start it on
// free ports, find its children (writer, store) in /proc, kill any of them
// with SIGKILL, stop it cleanly. Every process started here is tracked;
// killAllDaemons() (in `after` hooks) kills whatever still runs.

import { ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DaemonRecord } from '../../lib/datadir/daemon-record.js';
import { isAlive, processStartTime } from '../../lib/util/proc.js';

/** The package root (this file is dist/test/harness/daemon.js). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const COUNTD_BIN = path.join(ROOT, 'bin', 'countd');

/** PID -> start time of every process started (or found) here. */
const tracked = new Map<number, string>();

function track(pid: number | undefined): void {
  if (pid !== undefined) tracked.set(pid, processStartTime(pid) ?? '');
}

export type Target = 'daemon' | 'supervisor' | 'writer' | 'store';

export interface Pids {
  supervisor: number;
  writer?: number;
  store?: number;
}

const STDERR_KEEP = 64 * 1024;

export class DaemonRunner {
  readonly dataDir: string;
  readonly args: string[];
  private proc: ChildProcess | undefined;
  private exit: Promise<void> = Promise.resolve();
  /** The last STDERR_KEEP bytes the daemons wrote on stderr (for failure messages). */
  stderr = '';
  /** Warning and error lines of the daemons, by message (fields dropped), with how often each came. */
  readonly warnings = new Map<string, number>();
  private partialLine = '';
  record: DaemonRecord | undefined;

  /** Ports every start binds (default: free ones, new at each start). */
  readonly ports: { write: number; read: number } | undefined;

  constructor(dataDir: string, args: string[] = [], ports?: { write: number; read: number }) {
    this.dataDir = dataDir;
    this.args = args;
    this.ports = ports;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get writePort(): number | undefined {
    return this.running ? this.record?.writePort : undefined;
  }

  get readPort(): number | undefined {
    return this.running ? this.record?.readPort : undefined;
  }

  /** Start `countd start` with free ports; resolves with daemon.json once both children listen. */
  async start(timeoutMs = 20_000): Promise<DaemonRecord> {
    if (this.running) throw new Error('daemon already running');
    const ports = [String(this.ports?.write ?? 0), String(this.ports?.read ?? 0)];
    const proc = spawn(process.execPath, [COUNTD_BIN, 'start', '--data-dir', this.dataDir, '--write-port', ports[0]!, '--read-port', ports[1]!, ...this.args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: envWithout('COUNTD_DATA_DIR'),
    });
    this.proc = proc;
    track(proc.pid);
    // COUNTD_TEST_LOGS=DIR: every daemon's whole stderr also goes to DIR/<data dir name>.log, lines stamped with the time they arrived (a failure's post-mortem).
    const logDir = process.env['COUNTD_TEST_LOGS'];
    const logFile = logDir ? path.join(logDir, `${path.basename(this.dataDir)}.log`) : undefined;
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (logFile !== undefined) appendFileSync(logFile, d.replace(/^(?=.)/gm, `${new Date().toISOString().slice(11, 23)} `));
      this.stderr = (this.stderr + d).slice(-STDERR_KEEP);
      const lines = (this.partialLine + d).split('\n');
      this.partialLine = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^\[(\w+)\] (warn|error): (.*?)(?: \w+=.*)?$/.exec(line);
        if (m) this.warnings.set(`[${m[1]}] ${m[2]}: ${m[3]}`, (this.warnings.get(`[${m[1]}] ${m[2]}: ${m[3]}`) ?? 0) + 1);
      }
    });
    this.exit = new Promise((resolve) =>
      proc.once('exit', () => {
        tracked.delete(proc.pid!);
        resolve();
      }),
    );
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error(`daemon exited at start (${this.proc.exitCode ?? this.proc.signalCode}): ${this.stderr.slice(-2000)}`);
      try {
        const r = JSON.parse(await fsp.readFile(path.join(this.dataDir, 'daemon.json'), 'utf8')) as DaemonRecord;
        if (r.pid === proc.pid) {
          this.record = r;
          break;
        }
      } catch {
        // not there yet
      }
      if (Date.now() > deadline) throw new Error(`daemon did not start within ${timeoutMs} ms: ${this.stderr.slice(-2000)}`);
      await sleep(20);
    }
    for (const pid of Object.values(await this.pids())) track(pid);
    return this.record;
  }

  /** The supervisor and its children, from /proc. */
  async pids(): Promise<Pids> {
    if (!this.proc?.pid) throw new Error('daemon not started');
    const out: Pids = { supervisor: this.proc.pid };
    for (const child of await childrenOf(this.proc.pid)) {
      if (child.args.includes('writer')) out.writer = child.pid;
      else if (child.args.includes('store')) out.store = child.pid;
    }
    return out;
  }

  /**
   * SIGKILL `target`: the whole daemon ('daemon': supervisor and children at
   * once, like a machine without power but with a kernel that flushes), the
   * supervisor alone (its children notice and stop), or one child (the
   * supervisor restarts it). Resolves once the killed processes are gone.
   */
  async kill(target: Target): Promise<void> {
    const pids = await this.pids();
    const victims: number[] =
      target === 'daemon' ? [pids.supervisor, pids.writer, pids.store].filter((p): p is number => p !== undefined)
      : target === 'supervisor' ? [pids.supervisor]
      : [pids[target]].filter((p): p is number => p !== undefined);
    const ids = victims.map((pid) => ({ pid, start: processStartTime(pid) ?? '' }));
    for (const { pid } of ids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await waitUntil(`killed ${target} gone`, () => ids.every((id) => !isAlive(id)), 10_000);
    if (target === 'daemon' || target === 'supervisor') {
      await this.exit;
      // Orphaned children stop by themselves when their channel closes.
      const orphans = [pids.writer, pids.store].filter((p): p is number => p !== undefined).map((pid) => ({ pid, start: processStartTime(pid) ?? '' }));
      await waitUntil('orphaned children gone', () => orphans.every((id) => id.start === '' || !isAlive(id)), 30_000);
    }
  }

  /** After killing a child: wait until the supervisor runs a new one. */
  async waitForChild(kind: 'writer' | 'store', notPid: number | undefined, timeoutMs = 20_000): Promise<number> {
    return waitUntil(`a new ${kind} child`, async () => {
      if (!this.running) throw new Error(`daemon exited: ${this.stderr.slice(-2000)}`);
      const pid = (await this.pids())[kind];
      if (pid !== undefined && pid !== notPid) {
        track(pid);
        return pid;
      }
      return undefined;
    }, timeoutMs);
  }

  /** SIGTERM and wait for the exit (the clean shutdown: acknowledgements in flight finish, logs are handed over). */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (!this.running) return;
    const pids = await this.pids();
    this.proc!.kill('SIGTERM');
    const timer = setTimeout(() => this.proc?.kill('SIGKILL'), timeoutMs);
    await this.exit;
    clearTimeout(timer);
    const ids = [pids.writer, pids.store].filter((p): p is number => p !== undefined).map((pid) => ({ pid, start: processStartTime(pid) ?? '' }));
    await waitUntil('children gone', () => ids.every((id) => id.start === '' || !isAlive(id)), timeoutMs);
    if (this.proc!.exitCode !== 0) throw new Error(`daemon stopped with ${this.proc!.exitCode ?? this.proc!.signalCode}: ${this.stderr.slice(-2000)}`);
  }
}

/** Direct children of `ppid`, with their argv. */
export async function childrenOf(ppid: number): Promise<Array<{ pid: number; args: string[] }>> {
  const out: Array<{ pid: number; args: string[] }> = [];
  for (const name of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await fsp.readFile(`/proc/${name}/stat`, 'latin1');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent !== ppid) continue;
      const args = (await fsp.readFile(`/proc/${name}/cmdline`, 'latin1')).split('\0');
      out.push({ pid: Number(name), args });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** SIGKILL every daemon process started here that may still run (for `after` hooks). */
export async function killAllDaemons(): Promise<void> {
  for (const [pid, start] of tracked) {
    if (!isAlive({ pid, start })) continue; // a PID reused by someone else is not ours to kill
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  tracked.clear();
  await sleep(50);
}

export async function waitUntil<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function envWithout(name: string): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env[name];
  return env;
}
