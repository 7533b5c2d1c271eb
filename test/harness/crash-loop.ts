// The crash loop: the real daemon (`bin/countd start`) under concurrent
// ledger-keeping writers (ledger-client.ts), killed with SIGKILL at random
// moments (the whole daemon, the supervisor alone, the writer child or the
// store child), restarted, again and again. Small commit logs and a short
// hand-over interval keep rotation, hand-over and worker applies happening
// all the time, so kills land in group commits, rotations, applies and
// between a database batch and the release of its log.
//
// At the end: writers stop (each waits for the answers to what it sent), the
// daemon is stopped cleanly, restarted and left to drain, stopped again,
// and the final counts are checked against the ledger (verify.ts).
// Used by test/crash/crash-loop.test.ts (a few cycles) and
// test/soak/crash-soak.ts (`npm run soak`, 1,000 cycles).

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { DaemonRunner, Target, waitUntil } from './daemon.js';
import { Ledger, LedgerFigures, Violation } from './ledger.js';
import { LedgerClient, sleep } from './ledger-client.js';
import { rng as makeRng } from './rng.js';
import { drainAndCheck } from './verify.js';

export interface CrashLoopOptions {
  /** Data directory (created by the daemon if missing). */
  dataDir: string;
  cycles: number;
  seed: number;
  /** Concurrent writer connections. Default 4. */
  writers?: number;
  /** How long the daemon runs between two kills: uniform in [minRunMs, maxRunMs]. Default 100 … 400. */
  minRunMs?: number;
  maxRunMs?: number;
  /** --log-size of the daemon. Default 16384. */
  logSize?: number;
  /** --handover-ms of the daemon. Default 20. */
  handoverMs?: number;
  /** Probability of each kill target. Default: daemon 0.5, supervisor 0.1, writer 0.2, store 0.2. */
  targets?: Partial<Record<Target, number>>;
  /** Progress lines (soak); default none. */
  progress?: (line: string) => void;
}

export interface CrashLoopResult extends LedgerFigures {
  cycles: number;
  seed: number;
  kills: Record<Target, number>;
  sessions: number;
  protocolErrors: string[];
  violations: Violation[];
  seconds: number;
  /** Warning and error lines the daemon logged, by message. */
  warnings: Record<string, number>;
  /** Keyspaces whose rank index disagreed with their counts at the end. */
  rankIndexBroken: string[];
}

const SIZES = { keyspaceSize: 32, keySize: 32 };
const KEYSPACES = ['alpha', 'beta', 'gamma'];
const TIES_FIRST = 'gamma';

export async function runCrashLoop(o: CrashLoopOptions): Promise<CrashLoopResult> {
  const started = Date.now();
  const rand = makeRng(o.seed);
  const ledger = new Ledger();
  await fsp.mkdir(path.dirname(o.dataDir), { recursive: true });
  const daemon = new DaemonRunner(o.dataDir, [
    '--handover-ms', String(o.handoverMs ?? 20),
    '--log-size', String(o.logSize ?? 16384),
    '--keyspace-size', String(SIZES.keyspaceSize),
    '--key-size', String(SIZES.keySize),
  ]);
  const weights: Record<Target, number> = { daemon: 0.5, supervisor: 0.1, writer: 0.2, store: 0.2, ...o.targets };
  const kills: Record<Target, number> = { daemon: 0, supervisor: 0, writer: 0, store: 0 };
  const clients = Array.from({ length: o.writers ?? 4 }, (_, i) =>
    new LedgerClient({
      ledger,
      rng: makeRng(o.seed + 1 + i),
      sizes: SIZES,
      port: () => daemon.writePort,
      name: `w${i}`,
      keyspaces: KEYSPACES,
      window: 16 + i * 16,
    }),
  );
  try {
    await daemon.start();
    // One keyspace declared --ties first: its count values and index entries carry the apply order.
    const admin = new Client({ writePort: daemon.writePort!, ...SIZES });
    await admin.createKeyspace(TIES_FIRST, { ties: 'first' });
    await admin.close();
    for (const c of clients) c.start();
    for (let cycle = 1; cycle <= o.cycles; cycle++) {
      if (!daemon.running) await daemon.start();
      await sleep(rand.int(o.minRunMs ?? 100, o.maxRunMs ?? 400));
      const target = pickTarget(rand.next(), weights);
      const before = await daemon.pids();
      await daemon.kill(target);
      kills[target]++;
      if (target === 'writer' || target === 'store') await daemon.waitForChild(target, before[target]);
      if (o.progress && (cycle % 50 === 0 || cycle === o.cycles)) {
        const acked = clients.reduce((n, c) => n + c.stats.wins, 0);
        o.progress(`cycle ${cycle}/${o.cycles}: ${acked} acknowledged so far, ${Math.round((Date.now() - started) / 1000)} s`);
      }
    }
    if (!daemon.running) await daemon.start();
    // Let the writers see a live daemon once more, then stop them: each waits for its answers.
    await sleep(100);
    await Promise.all(clients.map((c) => c.stop()));
    // Clean shutdown, restart, drain, clean shutdown.
    await daemon.stop();
    await daemon.start();
    await waitUntil('the restarted daemon to apply every dirty log', () => noDirtyLog(path.join(o.dataDir, 'commitlog')), 20_000, 50);
    await daemon.stop();
    const { figures, violations, rankIndexBroken } = await drainAndCheck(o.dataDir, ledger, async (store) => {
      const declared = store.declaredKeyspaces().find((d) => d.name.toString() === TIES_FIRST);
      if (declared?.ties !== 1) throw new Error(`${TIES_FIRST} is not declared --ties first at the end: ${JSON.stringify(declared)}`);
    });
    return {
      ...figures,
      cycles: o.cycles,
      seed: o.seed,
      kills,
      sessions: clients.reduce((n, c) => n + c.stats.sessions, 0),
      protocolErrors: clients.flatMap((c) => c.stats.protocolErrors),
      violations,
      seconds: (Date.now() - started) / 1000,
      warnings: Object.fromEntries(daemon.warnings),
      rankIndexBroken,
    };
  } catch (err) {
    (err as Error).message += `\n(seed ${o.seed}; daemon stderr tail:)\n${daemon.stderr.slice(-3000)}`;
    throw err;
  } finally {
    await Promise.all(clients.map((c) => c.stop(0)));
    if (daemon.running) await daemon.kill('daemon').catch(() => {});
  }
}

function pickTarget(x: number, weights: Record<Target, number>): Target {
  const entries = Object.entries(weights) as Array<[Target, number]>;
  const total = entries.reduce((s, [, w]) => s + w, 0);
  let at = x * total;
  for (const [t, w] of entries) {
    if (at < w) return t;
    at -= w;
  }
  return entries[entries.length - 1]![0];
}

/** True when no log of the pool is in mode 0400 (dirty). */
async function noDirtyLog(dir: string): Promise<boolean> {
  for (const name of await fsp.readdir(dir)) {
    if (!/^\d{10}$/.test(name)) continue;
    try {
      if (((await fsp.stat(path.join(dir, name))).mode & 0o777) === 0o400) return false;
    } catch {
      // gone
    }
  }
  return true;
}

/** The figures as the soak prints them. */
export function formatFigures(r: CrashLoopResult): string {
  return [
    `cycles            ${r.cycles} (seed ${r.seed})`,
    `kills             daemon ${r.kills.daemon}, supervisor ${r.kills.supervisor}, writer child ${r.kills.writer}, store child ${r.kills.store}`,
    `connections       ${r.sessions}`,
    `keys              ${r.keys}`,
    `frames sent       ${r.framesSent}`,
    `acked increments  ${r.framesAcked}`,
    `answered ERR      ${r.framesErr}`,
    `unacked, applied  ${r.unackedApplied}`,
    `lost              ${r.lost}`,
    `double-applied    ${r.doubleApplied}`,
    `protocol errors   ${r.protocolErrors.length}`,
    `rank index broken ${r.rankIndexBroken.length === 0 ? 'none' : r.rankIndexBroken.join(', ')}`,
    `elapsed           ${r.seconds.toFixed(1)} s`,
    `daemon warnings:`,
    ...Object.entries(r.warnings).map(([w, n]) => `  ${String(n).padStart(6)}  ${w}`),
  ].join('\n');
}
