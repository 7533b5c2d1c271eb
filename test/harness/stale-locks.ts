// Stale-lock chaos (issue 6, item 5): N processes (fixtures/lock-contender.ts)
// race for the dirty logs of one pool through the real CommitLogPool; lock
// holders are killed with SIGKILL at random moments, mostly while holding,
// and replaced. Checked: never two live holders of one log, no log lost or
// left in another state, every lock recoverable at the end. Measured: how
// long after the kill of its holder a log is claimed again (the reclaim
// time: grace period + how soon someone runs recovery).

import { ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { lockName, logName, ownerName, parsePoolName } from '../../lib/commitlog/filenames.js';
import { currentBootId } from '../../lib/commitlog/locks.js';
import { CommitLogPool, MODE_DIRTY } from '../../lib/commitlog/pool.js';
import { CommitLogWriter } from '../../lib/commitlog/writer.js';
import { encodeEntry, entrySize } from '../../lib/commitlog/format.js';
import { rng as makeRng } from './rng.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'lock-contender.js');
const SIZES = { keyspaceSize: 16, keySize: 16 };

export interface LockChaosOptions {
  contenders: number;
  /** Kills to perform. */
  rounds: number;
  logs?: number;
  graceMs?: number;
  seed: number;
  /**
   * Before the contenders start, lock log 0 as a dead holder would have:
   * link lock-0 and write owner-0 naming a live PID with another start time
   * (a PID reused by another process). All contenders race to recover it.
   */
  reusedPidLock?: boolean;
}

export interface LockChaosResult {
  /** ms from the start of the contenders to the first claim of log 0 (with reusedPidLock). */
  firstClaimOfLog0Ms?: number;
  contenders: number;
  rounds: number;
  graceMs: number;
  kills: number;
  /** Kills that hit a process while it held at least one log. */
  killsWhileHolding: number;
  claims: number;
  violations: string[];
  /** Per log held by a killed process: ms from the kill to its next claim. */
  reclaimMs: number[];
  medianMs: number;
  maxMs: number;
  doubleHolders: number;
  /** After the run: logs not dirty, locks or owner files left after a final recovery. */
  leftovers: string[];
}

interface Contender {
  proc: ChildProcess;
  pid: number;
}

/** Make `n` dirty logs, one record each. */
async function dirtyLogs(dir: string, n: number): Promise<void> {
  const key = Buffer.from('k');
  const ks = Buffer.from('ks');
  const entries = Buffer.alloc(entrySize(ks.length, key.length));
  encodeEntry(entries, 0, 1n, ks, key);
  for (let i = 0; i < n; i++) {
    const w = await CommitLogWriter.open({ dir, sizes: SIZES, logSize: 8192 });
    await w.append(entries, 1);
    await w.close();
  }
}

export async function runLockChaos(root: string, o: LockChaosOptions): Promise<LockChaosResult> {
  const graceMs = o.graceMs ?? 300;
  const dir = path.join(root, 'commitlog');
  const markers = path.join(root, 'markers');
  fs.mkdirSync(markers, { recursive: true });
  const nLogs = o.logs ?? 6;
  await dirtyLogs(dir, nLogs);
  const rand = makeRng(o.seed);
  const live = new Map<number, Contender>();
  const violations: string[] = [];
  const reclaimMs: number[] = [];
  /** log index -> kill time, while waiting for its next claim. */
  const orphaned = new Map<number, number>();
  let claims = 0;
  let spawned = 0;
  let startedAt = 0;
  let firstClaimOfLog0Ms: number | undefined;
  if (o.reusedPidLock) {
    fs.linkSync(path.join(dir, logName(0)), path.join(dir, lockName(0)));
    // PID 1 is alive, but its start time is not this one: the owner is a process that died, and PID 1 is someone else.
    fs.writeFileSync(path.join(dir, ownerName(0)), JSON.stringify({ pid: 1, start: '999999999999', boot: currentBootId() }));
  }

  const spawn = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const proc = fork(FIXTURE, [dir, markers, String(graceMs), String(o.seed + ++spawned)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      const c: Contender = { proc, pid: proc.pid! };
      live.set(c.pid, c);
      proc.on('message', (m: { ready?: boolean; claimed?: number; at?: number; violation?: string }) => {
        if (m.ready) resolve();
        if (m.violation) violations.push(m.violation);
        if (m.claimed !== undefined) {
          claims++;
          if (m.claimed === 0 && firstClaimOfLog0Ms === undefined) firstClaimOfLog0Ms = m.at! - startedAt;
          const killedAt = orphaned.get(m.claimed);
          if (killedAt !== undefined && m.at! >= killedAt) {
            reclaimMs.push(m.at! - killedAt);
            orphaned.delete(m.claimed);
          }
        }
      });
      proc.once('exit', (code, signal) => {
        live.delete(c.pid);
        // Dead before it was ready (a no-op once ready): fail now rather than wait for the test's timeout.
        reject(new Error(`lock contender ${c.pid} exited (code ${code}, signal ${signal}) before it was ready`));
      });
      proc.once('error', reject);
    });

  const heldBy = (pid: number): number[] => {
    const out: number[] = [];
    for (const name of fs.readdirSync(markers)) {
      try {
        if ((JSON.parse(fs.readFileSync(path.join(markers, name), 'utf8')) as { pid: number }).pid === pid) out.push(Number(name.slice('held-'.length)));
      } catch {
        // released meanwhile
      }
    }
    return out;
  };

  let kills = 0;
  let killsWhileHolding = 0;
  try {
    startedAt = Date.now();
    await Promise.all(Array.from({ length: o.contenders }, () => spawn()));
    if (o.reusedPidLock) {
      const deadline = Date.now() + graceMs + 5000;
      while (firstClaimOfLog0Ms === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    }
    for (let round = 0; round < o.rounds; round++) {
      await new Promise((r) => setTimeout(r, rand.int(20, 120)));
      // Prefer a victim that holds something right now.
      const pids = [...live.keys()];
      let victim = rand.pick(pids);
      for (let tries = 0; tries < 20; tries++) {
        const holders = pids.filter((p) => heldBy(p).length > 0);
        if (holders.length > 0) {
          victim = rand.pick(holders);
          break;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      const c = live.get(victim)!;
      const exited = new Promise((r) => c.proc.once('exit', r));
      c.proc.kill('SIGKILL');
      const killedAt = Date.now();
      await exited;
      kills++;
      // Markers of the victim name the logs it held at death (a marker is
      // dropped before release, so none is missed, and a log released in the
      // last instant is simply claimed again at once).
      const held = heldBy(victim);
      if (held.length > 0) killsWhileHolding++;
      for (const index of held) orphaned.set(index, killedAt);
      await spawn();
    }
    // Give the last orphans the time to be reclaimed.
    const deadline = Date.now() + graceMs + 3000;
    while (orphaned.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  } finally {
    await Promise.all(
      [...live.values()].map(
        (c) =>
          new Promise<void>((resolve) => {
            c.proc.once('exit', () => resolve());
            c.proc.kill('SIGKILL');
          }),
      ),
    );
  }

  // Everything the dead left behind is recoverable, and no log was lost or changed state.
  const pool = await CommitLogPool.open({ dir, sizes: SIZES, staleLockGraceMs: 0 });
  await pool.recoverStaleLocks();
  const leftovers: string[] = [];
  const logs = fs.readdirSync(dir).map((n) => ({ n, p: parsePoolName(n) }));
  for (const { n, p } of logs) {
    if (p.kind === 'log') {
      const mode = fs.statSync(path.join(dir, n)).mode & 0o7777;
      if (mode !== MODE_DIRTY) leftovers.push(`log ${n} has mode ${mode.toString(8)}, not 400`);
    } else leftovers.push(`${n} left after recovery`);
  }
  if (logs.filter((l) => l.p.kind === 'log').length !== nLogs) leftovers.push(`expected ${nLogs} logs, found ${logs.length}`);
  for (const index of orphaned.keys()) leftovers.push(`log ${index} of a killed holder was never claimed again`);

  const sorted = [...reclaimMs].sort((a, b) => a - b);
  return {
    ...(firstClaimOfLog0Ms === undefined ? {} : { firstClaimOfLog0Ms }),
    contenders: o.contenders,
    rounds: o.rounds,
    graceMs,
    kills,
    killsWhileHolding,
    claims,
    violations,
    reclaimMs,
    medianMs: sorted.length ? sorted[Math.floor(sorted.length / 2)]! : NaN,
    maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
    doubleHolders: violations.length,
    leftovers,
  };
}

/** For the soak: run the chaos in `root` and return its figures. */
export async function measureReclaim(root: string, o: { rounds: number; contenders: number; seed: number; graceMs?: number }): Promise<LockChaosResult> {
  fs.mkdirSync(root, { recursive: true });
  return runLockChaos(root, { ...o, graceMs: o.graceMs ?? 2000 });
}
