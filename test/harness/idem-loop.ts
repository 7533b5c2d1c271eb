// The crash loop of idempotent producers (issue 16): the real daemon killed
// with SIGKILL at random moments (the whole daemon, the supervisor, the
// writer child, the store child) while clients of the client library write
// as idempotent producers and RETRY EVERY UNACKNOWLEDGED INCREMENT by
// themselves (lib/client/producer-session.ts) until it is answered, through
// restarts. Unlike the plain crash loop (crash-loop.ts), where an increment
// whose connection died is unknown, here every increment must end up
// acknowledged (WIN or duplicate) and applied exactly once: the ledger must
// match exactly, 0 lost, 0 double, nothing unacknowledged.
//
// The daemon binds the same two ports at every start (chosen free at the
// beginning), so the clients' retries reach its next incarnation.
// Used by test/crash/idem-loop.test.ts (a few cycles) and
// test/soak/idem-soak.ts (part of `npm run soak`, at least 100 cycles).

import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { noDirtyLog, pickTarget, type CrashLoopOptions, type CrashLoopResult } from './crash-loop.js';
import { DaemonRunner, Target, waitUntil } from './daemon.js';
import { Ledger, MAX_FRAMES_PER_KEY, type KeyEntry, type LedgerFigures } from './ledger.js';
import { sleep } from './ledger-client.js';
import { rng as makeRng, type Rng } from './rng.js';
import { drainAndCheck } from './verify.js';

/** As the plain crash loop's (run time between kills default 150 … 400 ms), with producers instead of writers. */
export interface IdemLoopOptions extends Pick<CrashLoopOptions, 'dataDir' | 'cycles' | 'seed' | 'minRunMs' | 'maxRunMs' | 'targets' | 'progress'> {
  /** Producers (one client each). Default 4. */
  producers?: number;
  /** Increments in flight per producer. Default 32. */
  window?: number;
}

export interface IdemLoopResult extends LedgerFigures, Pick<CrashLoopResult, 'cycles' | 'seed' | 'kills' | 'violations' | 'rankIndexBroken' | 'seconds'> {
  /** Increments answered "duplicate": retries of increments made durable before the connection died. */
  duplicates: number;
  /** Increments that failed for good (must be 0: every one is retried until answered). */
  failures: string[];
}

const SIZES = { keyspaceSize: 32, keySize: 32 };
const KEYSPACES = ['alpha', 'beta', 'gamma'];

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One producer: keeps `window` increments in flight, each on the ledger; a key takes MAX_FRAMES_PER_KEY of them. */
class Producer {
  readonly client: Client;
  duplicates = 0;
  failures: string[] = [];
  #stopping = false;
  #inflight = new Set<Promise<void>>();
  #key: KeyEntry | undefined;
  #keys = 0;
  readonly #name: string;
  readonly #ledger: Ledger;
  readonly #rand: Rng;
  readonly #window: number;
  #loop: Promise<void> | undefined;

  constructor(name: string, id: number, ports: { write: number; read: number }, ledger: Ledger, rand: Rng, window: number) {
    this.#name = name;
    this.#ledger = ledger;
    this.#rand = rand;
    this.#window = window;
    this.client = new Client({ writePort: ports.write, readPort: ports.read, ...SIZES, producer: { id, epoch: 1, retries: 1_000_000, retryDelayMs: 20 } });
  }

  start(): void {
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      while (this.#inflight.size < this.#window && !this.#stopping) this.#send();
      await Promise.race(this.#inflight);
    }
  }

  #send(): void {
    if (this.#key === undefined || this.#key.sent >= MAX_FRAMES_PER_KEY) {
      const ks = KEYSPACES[this.#rand.int(0, KEYSPACES.length - 1)]!;
      this.#key = this.#ledger.newKey(ks, `${this.#name}-${this.#keys++}`);
    }
    const e = this.#key;
    const { index, increment } = this.#ledger.nextFrame(e);
    const call = this.client.incrementAck(e.keyspace, e.key, increment).then(
      (ack) => {
        if (ack.duplicate) this.duplicates++;
        this.#ledger.win(e, index);
      },
      (err: unknown) => {
        this.failures.push(`${e.keyspace}/${e.key} frame ${index}: ${(err as Error).message}`);
        this.#ledger.err(e, index);
      },
    );
    const tracked = call.finally(() => this.#inflight.delete(tracked));
    this.#inflight.add(tracked);
  }

  /** Stop sending; wait until every increment in flight is answered. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#loop;
    await Promise.all(this.#inflight);
    await this.client.close();
  }
}

export async function runIdemLoop(o: IdemLoopOptions): Promise<IdemLoopResult> {
  const started = Date.now();
  const rand = makeRng(o.seed);
  const ledger = new Ledger();
  await fsp.mkdir(path.dirname(o.dataDir), { recursive: true });
  const ports = { write: await freePort(), read: await freePort() };
  const daemon = new DaemonRunner(o.dataDir, ['--handover-ms', '20', '--log-size', '16384', '--keyspace-size', String(SIZES.keyspaceSize), '--key-size', String(SIZES.keySize)], ports);
  const weights: Record<Target, number> = { daemon: 0.3, supervisor: 0.1, writer: 0.4, store: 0.2, ...o.targets };
  const kills: Record<Target, number> = { daemon: 0, supervisor: 0, writer: 0, store: 0 };
  const producers = Array.from({ length: o.producers ?? 4 }, (_, i) => new Producer(`p${i}`, 1000 + i, ports, ledger, makeRng(o.seed + 1 + i), o.window ?? 32));
  try {
    await daemon.start();
    for (const p of producers) p.start();
    for (let cycle = 1; cycle <= o.cycles; cycle++) {
      if (!daemon.running) await daemon.start();
      await sleep(rand.int(o.minRunMs ?? 150, o.maxRunMs ?? 400));
      const target = pickTarget(rand.next(), weights);
      const before = await daemon.pids();
      await daemon.kill(target);
      kills[target]++;
      if (target === 'writer' || target === 'store') await daemon.waitForChild(target, before[target]);
      if (o.progress && (cycle % 25 === 0 || cycle === o.cycles)) {
        o.progress(`cycle ${cycle}/${o.cycles}: ${ledger.acked()} acknowledged so far, ${Math.round((Date.now() - started) / 1000)} s`);
      }
    }
    if (!daemon.running) await daemon.start();
    // Every increment in flight is retried until answered: stop sending, wait for them all.
    await Promise.all(producers.map((p) => p.stop()));
    await daemon.stop();
    await daemon.start();
    await waitUntil('the restarted daemon to apply every dirty log', () => noDirtyLog(path.join(o.dataDir, 'commitlog')), 20_000, 50);
    await daemon.stop();
    const { figures, violations, rankIndexBroken } = await drainAndCheck(o.dataDir, ledger);
    return {
      ...figures,
      cycles: o.cycles,
      seed: o.seed,
      kills,
      duplicates: producers.reduce((n, p) => n + p.duplicates, 0),
      failures: producers.flatMap((p) => p.failures),
      violations,
      rankIndexBroken,
      seconds: (Date.now() - started) / 1000,
    };
  } catch (err) {
    (err as Error).message += `\n(seed ${o.seed}; daemon stderr tail:)\n${daemon.stderr.slice(-3000)}`;
    throw err;
  } finally {
    if (daemon.running) await daemon.kill('daemon').catch(() => {});
  }
}

export function formatIdemFigures(r: IdemLoopResult): string {
  return [
    `cycles              ${r.cycles} (seed ${r.seed})`,
    `kills               daemon ${r.kills.daemon}, supervisor ${r.kills.supervisor}, writer child ${r.kills.writer}, store child ${r.kills.store}`,
    `keys                ${r.keys}`,
    `increments sent     ${r.framesSent}`,
    `acknowledged        ${r.framesAcked} (of which answered duplicate after a retry: ${r.duplicates})`,
    `failed for good     ${r.failures.length}`,
    `lost                ${r.lost}`,
    `double-applied      ${r.doubleApplied}`,
    `unacked, applied    ${r.unackedApplied}`,
    `rank index broken   ${r.rankIndexBroken.length === 0 ? 'none' : r.rankIndexBroken.join(', ')}`,
    `elapsed             ${r.seconds.toFixed(1)} s`,
  ].join('\n');
}
