// The last minutes of the daemon, for the console's live charts
// (docs/http-api.md, "GET /api/v1/history"): a ring buffer sampled every
// second from the metrics the roles already export (summed over the
// supervisor's children) and from one stat(2) per commit log. Each sample:
//
//   acked     write frames acknowledged (WIN) in the last second, per second
//   applied   frames the worker applied (made readable) per second
//   failed    frames answered ERR per second
//   backlog   dirty commit logs (handed over, not yet applied)
//   lag       seconds the oldest dirty log has waited since it was handed
//             over (its last write): a lower bound of the write-to-readable
//             lag of the writes in it, which waited up to --handover-ms more
//             before the hand-over. 0 when no log waits.
//   stall     seconds since the worker last applied anything while logs
//             waited; 0 when none waits. A stall that keeps growing means
//             nothing becomes readable.
//   backlogBytes  bytes of the dirty commit logs: what flow control bounds
//             (README "Operations: flow control")
//   flow      the writer's flow-control state: 0 normal, 1 delayed
//             (acknowledgements held), 2 stopped (sockets not read); the
//             worst over the writers

import { scanPool } from './pool-view.js';

export const SAMPLE_MS = 1000;
/** Ten minutes of samples. */
export const HISTORY_SAMPLES = 600;

export const SERIES = ['acked', 'applied', 'failed', 'backlog', 'lag', 'stall', 'backlogBytes', 'flow'] as const;
export type Series = (typeof SERIES)[number];

export interface HistoryColumns {
  /** Sample times, ms since the epoch. */
  t: number[];
  acked: number[];
  applied: number[];
  failed: number[];
  backlog: number[];
  lag: number[];
  stall: number[];
  backlogBytes: number[];
  flow: number[];
}

/** prom-client's getMetricsAsJSON(), as far as it is read here. */
export type Metrics = Array<{ name: string; values: Array<{ value: number; labels?: Partial<Record<string, string | number>> }> }>;

const FLOW_LEVELS: Record<string, number> = { normal: 0, delayed: 1, stopped: 2 };

/** The worst flow-control state any writer reports (0 normal, 1 delayed, 2 stopped); 0 when absent. */
export function flowLevel(metrics: Metrics): number {
  const m = metrics.find((x) => x.name === 'countd_write_flow_state');
  let level = 0;
  for (const v of m?.values ?? []) if (v.value > 0) level = Math.max(level, FLOW_LEVELS[String(v.labels?.state)] ?? 0);
  return level;
}

const COUNTERS = {
  acked: 'countd_write_frames_acked_total',
  applied: 'countd_worker_frames_applied_total',
  failed: 'countd_write_frames_failed_total',
} as const;

/** The value of a metric summed over its label sets; undefined when absent. */
export function metricValue(metrics: Metrics, name: string): number | undefined {
  const m = metrics.find((x) => x.name === name);
  if (m === undefined) return undefined;
  return m.values.reduce((sum, v) => sum + v.value, 0);
}

export class History {
  readonly #capacity: number;
  readonly #cols: HistoryColumns = { t: [], acked: [], applied: [], failed: [], backlog: [], lag: [], stall: [], backlogBytes: [], flow: [] };
  #last: { t: number; counters: Record<keyof typeof COUNTERS, number | undefined> } | undefined;
  #lastProgress = 0;

  constructor(capacity = HISTORY_SAMPLES) {
    this.#capacity = capacity;
  }

  /**
   * Add one sample from the summed metrics and the pool at time `t`. A
   * counter that went down (a child restarted with fresh counters) counts
   * from zero; a counter missing (the child did not answer) gives no rate.
   */
  add(t: number, metrics: Metrics, dirtyLogTimes: number[], dirtyBytes = 0): void {
    const counters = {
      acked: metricValue(metrics, COUNTERS.acked),
      applied: metricValue(metrics, COUNTERS.applied),
      failed: metricValue(metrics, COUNTERS.failed),
    };
    const prev = this.#last;
    const seconds = prev === undefined ? 0 : (t - prev.t) / 1000;
    const rate = (k: keyof typeof COUNTERS): number => {
      const now = counters[k];
      const before = prev?.counters[k];
      if (now === undefined || before === undefined || seconds <= 0) return 0;
      return (now >= before ? now - before : now) / seconds;
    };
    const applied = rate('applied');
    const backlog = dirtyLogTimes.length;
    if (backlog === 0 || applied > 0 || prev === undefined) this.#lastProgress = t;
    const oldest = backlog === 0 ? t : Math.min(...dirtyLogTimes);
    this.#push({
      t,
      acked: rate('acked'),
      applied,
      failed: rate('failed'),
      backlog,
      lag: Math.max(0, (t - oldest) / 1000),
      stall: (t - this.#lastProgress) / 1000,
      backlogBytes: dirtyBytes,
      flow: flowLevel(metrics),
    });
    this.#last = { t, counters };
  }

  #push(sample: { t: number } & Record<Series, number>): void {
    this.#cols.t.push(sample.t);
    for (const s of SERIES) this.#cols[s].push(round3(sample[s]));
    if (this.#cols.t.length > this.#capacity) {
      this.#cols.t.shift();
      for (const s of SERIES) this.#cols[s].shift();
    }
  }

  /** The samples taken after `since` (ms since the epoch), as columns. */
  since(since: number): HistoryColumns {
    let from = 0;
    while (from < this.#cols.t.length && this.#cols.t[from]! <= since) from++;
    const out = { t: this.#cols.t.slice(from) } as HistoryColumns;
    for (const s of SERIES) out[s] = this.#cols[s].slice(from);
    return out;
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * Sample every SAMPLE_MS until stop() is called. A failed sample (a child
 * restarting) is skipped: the chart shows a gap in time rather than a guess.
 */
export function startSampler(history: History, metricsJson: () => Promise<Metrics>, poolDir: string): { stop(): void } {
  let stopped = false;
  let running = false;
  const tick = async (): Promise<void> => {
    if (running || stopped) return;
    running = true;
    try {
      const [metrics, logs] = await Promise.all([metricsJson(), scanPool(poolDir)]);
      const dirty = logs.filter((l) => l.state === 'dirty');
      if (!stopped) history.add(Date.now(), metrics, dirty.map((l) => l.modifiedAt), dirty.reduce((n, l) => n + l.sizeBytes, 0));
    } catch {
      // skipped; the next tick tries again
    } finally {
      running = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), SAMPLE_MS);
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
