// What `npm run bench:e2e` and `npm run bench:bigboard` share: the
// write-to-readable probe, the wait until every acknowledged increment is
// readable, a peak-RSS sampler of a process tree, and the report lines.
//
// End to end is the figure of merit (a user feels the time until an
// acknowledged increment is readable, not the acknowledgement alone):
// acknowledged increments / (time from the load's start until every one of
// them is readable). Redis answers from memory, so its end to end is its
// acknowledged rate.

import { Client } from '../../lib/index.js';
import type { CountdDaemon } from './countd.js';
import { processTree, statusBytes } from './proc-stats.js';

export const PROBE_KEYSPACE = 'bench-probe';
export const PROBE_KEY = 'lag';

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface LagStats {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

export function lagStats(lags: number[]): LagStats {
  const sorted = [...lags].sort((a, b) => a - b);
  const at = (q: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
  return { samples: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.length === 0 ? NaN : sorted[sorted.length - 1]! };
}

export function formatLag(s: LagStats): string {
  return `p50 ${(s.p50 / 1000).toFixed(2)} s, p99 ${(s.p99 / 1000).toFixed(2)} s, max ${(s.max / 1000).toFixed(2)} s (${s.samples} probes)`;
}

/**
 * The write-to-readable probe: every `everyMs` one increment of the probe key
 * (its own connection), and a poller that reads the probe key's count on the
 * read port until it reaches that increment's number. A probe's lag runs from
 * sending its write to the first read that shows it. stop() waits until every
 * probe written is visible.
 */
export class Probe {
  readonly #client: Client;
  readonly #everyMs: number;
  readonly #sentAt: number[] = [];
  readonly #lags: number[] = [];
  #visible = 0;
  #stopping = false;
  #writer: Promise<void> | undefined;
  #poller: Promise<void> | undefined;

  constructor(client: Client, everyMs = 250) {
    this.#client = client;
    this.#everyMs = everyMs;
  }

  start(): void {
    this.#writer = this.#write();
    this.#poller = this.#poll();
  }

  async #write(): Promise<void> {
    let next = performance.now();
    while (!this.#stopping) {
      this.#sentAt.push(performance.now());
      await this.#client.increment(PROBE_KEYSPACE, PROBE_KEY, 1);
      next += this.#everyMs;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
    }
  }

  async #poll(): Promise<void> {
    for (;;) {
      const count = Number((await this.#client.get(PROBE_KEYSPACE, PROBE_KEY)) ?? 0n);
      const now = performance.now();
      while (this.#visible < count && this.#visible < this.#sentAt.length) this.#lags.push(now - this.#sentAt[this.#visible++]!);
      if (this.#stopping && this.#visible >= this.#sentAt.length) return;
      await sleep(10);
    }
  }

  /** Lags so far (ms), in probe order. */
  lags(): number[] {
    return [...this.#lags];
  }

  async stop(): Promise<LagStats> {
    this.#stopping = true;
    await this.#writer;
    await this.#poller;
    return lagStats(this.#lags);
  }
}

/** Peak summed RSS of a process tree, sampled from /proc every `everyMs` (VmRSS summed at each sample, and VmHWM per process). */
export class TreeRss {
  readonly #root: number;
  readonly #hwm = new Map<number, number>();
  #peakSum = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(root: number, everyMs = 100) {
    this.#root = root;
    this.sample();
    this.#timer = setInterval(() => this.sample(), everyMs);
    this.#timer.unref();
  }

  sample(): void {
    let sum = 0;
    for (const p of processTree(this.#root)) {
      sum += statusBytes(p, 'VmRSS');
      const hwm = statusBytes(p, 'VmHWM');
      if (hwm > (this.#hwm.get(p) ?? 0)) this.#hwm.set(p, hwm);
    }
    if (sum > this.#peakSum) this.#peakSum = sum;
  }

  /** Largest sum of the processes' RSS at one sample (what the machine had to hold at once). */
  peakSum(): number {
    this.sample();
    return this.#peakSum;
  }

  /** Sum of each process's own peak (VmHWM): an upper bound of peakSum. */
  sumOfPeaks(): number {
    this.sample();
    let sum = 0;
    for (const v of this.#hwm.values()) sum += v;
    return sum;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/**
 * Wait until every acknowledged increment is readable: a sentinel increment
 * written after the load's last acknowledgement, then no dirty commit log and
 * the sentinel visible. Returns performance.now() at that moment, or
 * undefined past the deadline.
 */
export async function waitReadable(daemon: CountdDaemon, client: Client, sentinel: { keyspace: string; key: string }, deadline: number): Promise<number | undefined> {
  const before = (await client.get(sentinel.keyspace, sentinel.key)) ?? 0n;
  await client.increment(sentinel.keyspace, sentinel.key, 1);
  for (;;) {
    if ((await daemon.dirtyLogs()) === 0 && (await client.get(sentinel.keyspace, sentinel.key)) === before + 1n) return performance.now();
    if (performance.now() > deadline) return undefined;
    await sleep(20);
  }
}

export function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(0);
}

export function rate(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
