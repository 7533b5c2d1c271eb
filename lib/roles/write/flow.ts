// Flow control of countd-write (README "Operations: flow control";
// docs/architecture.md "Flow control"), as LSM engines do it (LevelDB's
// level-0 slowdown and stop triggers, RocksDB's delayed write rate):
//
//   backlog < soft            normal: acknowledgements as fast as the disk
//   soft <= backlog           delayed: each batch's WINs are held (and the
//                             next commit waits) for batchBytes / rate, the
//                             rate falling from (hard - soft) bytes/s at the
//                             soft bound by half every sixth of the way to
//                             1/64 of that at the hard bound (delayedRate)
//   a new log would pass hard stopped: no frame is taken from any socket
//                             (reading pauses; what was read waits, whole)
//                             and no log is started or claimed ahead until
//                             the workers bring the backlog down
//
// The backlog is the dirty logs of the pool (commitlog/backlog.ts, a scan
// every FLOW_POLL_MS and before every new log) plus this writer's logs being
// handed over dirty that the scan did not see dirty (each log counts once,
// before and after its chmod). A new log is admitted only when backlog + its size <=
// hard, so with one writer per pool the backlog never passes the hard bound
// and the pool's disk is at most hard + the log being filled + the log
// claimed ahead. Nothing is ever refused for slowness: frames wait.

import { type Backlog, scanBacklog } from '../../commitlog/backlog.js';
import type { FileOps } from '../../commitlog/fileops.js';
import { type FlowBounds, FLOW_POLL_MS, ackDelayMs, timedBounds } from './flow-bounds.js';
import { DrainMeter } from './flow-drain.js';
import { metrics } from '../../metrics.js';
import type { Logger } from '../../util/log.js';

export type { FlowBounds } from './flow-bounds.js';
export { checkBacklogSeconds, checkFlowBounds } from './flow-bounds.js';
export type FlowState = 'normal' | 'delayed' | 'stopped';

export interface StallTotals {
  /** Times the state was entered. */
  count: number;
  /** Seconds spent in it, the current stretch included. */
  seconds: number;
}

export interface FlowReport {
  state: FlowState;
  /** Unix ms at which the state began. */
  since: number;
  backlogBytes: number;
  /** The byte bounds (the settings). */
  soft: number;
  hard: number;
  /** The bounds in force (--backlog-ms: in time of the drain rate measured), when they differ from soft and hard. */
  inForce?: FlowBounds;
  /** Bytes per second the pool drains while it holds a backlog, once measured. */
  drainRate?: number;
  delayed: StallTotals;
  stopped: StallTotals;
}

export interface FlowControlOptions {
  dir: string;
  bounds: FlowBounds;
  /** --backlog-seconds (flow-bounds.ts timedBounds); 0 or absent: the byte bounds alone. */
  seconds?: number;
  /** Bytes of one commit log (the least the timed bounds go down to). */
  logSize?: number;
  ops?: FileOps;
  logger: Logger;
  pollMs?: number;
  /** Called after each state change (to publish it). */
  changed?: (report: FlowReport) => void;
}

export class FlowControl {
  /** The byte bounds (the settings); `current` is what is in force. */
  readonly bounds: FlowBounds;
  private readonly seconds: number;
  private readonly logSize: number;
  private readonly drain: DrainMeter;
  private readonly dir: string;
  private readonly ops: FileOps | undefined;
  private readonly logger: Logger;
  private readonly pollMs: number;
  private readonly changed: ((report: FlowReport) => void) | undefined;
  private stateNow: FlowState = 'normal';
  private sinceMs = Date.now();
  private readonly totals: Record<'delayed' | 'stopped', StallTotals> = { delayed: { count: 0, seconds: 0 }, stopped: { count: 0, seconds: 0 } };
  private scanned = 0;
  /** performance.now() at the end of the last scan that succeeded (0: none yet), and `added` when it began. */
  private scannedAt = 0;
  private addedAtScan = 0;
  private admitting = 0;
  private scanningNow: Promise<Backlog | null> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Bytes of this writer's logs being handed over dirty, but for those the scan saw dirty (set by attach). */
  private pending: (seen: ReadonlyMap<number, number>) => number = () => 0;
  /** The dirty logs of the last scan (index -> bytes). */
  private seen: ReadonlyMap<number, number> = new Map();
  /** Bytes this writer has made dirty so far (set by attach). */
  private added: () => number = () => 0;
  private resumed: () => void = () => {};

  constructor(o: FlowControlOptions) {
    this.bounds = o.bounds;
    this.seconds = o.seconds ?? 0;
    this.logSize = o.logSize ?? 0;
    this.drain = new DrainMeter(this.logSize);
    this.dir = o.dir;
    this.ops = o.ops;
    this.logger = o.logger;
    this.pollMs = o.pollMs ?? FLOW_POLL_MS;
    this.changed = o.changed;
    metrics.flowState.set({ state: 'normal' }, 1);
  }

  /**
   * Wire in the commit-log writer's pending hand-overs, what to do when
   * taking frames may go on, and the bytes it has made dirty so far (for
   * the drain rate).
   */
  attach(pending: (seen: ReadonlyMap<number, number>) => number, resumed: () => void, added?: () => number): void {
    this.pending = pending;
    this.resumed = resumed;
    if (added !== undefined) this.added = added;
  }

  /** Start polling the backlog. */
  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => void this.refresh(), this.pollMs);
    this.timer.unref();
    void this.refresh();
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** A scan of the pool is under way (commit tracing). */
  get scanning(): boolean {
    return this.scanningNow !== null;
  }

  get state(): FlowState {
    return this.stateNow;
  }

  /** No frame may be taken from a socket. */
  get stopped(): boolean {
    return this.stateNow === 'stopped';
  }

  /** The bounds in force: in seconds of the measured drain rate when set, within the byte bounds. */
  get current(): FlowBounds {
    return timedBounds(this.bounds, this.seconds, this.drain.rate, this.logSize);
  }

  /** Bytes per second the pool drained while it held a backlog (undefined until measured). */
  get drainRate(): number | undefined {
    return this.drain.rate;
  }

  /** The backlog as last seen: dirty logs of the pool plus this writer's hand-overs. */
  get backlog(): number {
    return this.scanned + this.pending(this.seen);
  }

  /** How long to hold the WINs of a batch of `bytes` just made durable. */
  delayMs(bytes: number): number {
    const ms = ackDelayMs(bytes, this.backlog, this.current);
    if (ms > 0) metrics.flowDelaySeconds.inc(ms / 1000);
    return ms;
  }

  /** Whether a log may be claimed ahead now (never while stopped: no new log then). */
  mayClaimAhead(): boolean {
    return this.stateNow !== 'stopped';
  }

  /**
   * Resolves once a new log of `size` bytes fits under the hard bound:
   * backlog + size <= hard, scanning afresh every poll meanwhile (stopped).
   */
  async admit(size: number): Promise<void> {
    if (this.admitsFromLastScan(size)) {
      this.settle();
      return;
    }
    this.admitting++;
    try {
      for (;;) {
        const fresh = await this.scan();
        if (fresh !== null && this.backlog + size <= this.current.hard) break;
        if (this.stateNow !== 'stopped') {
          this.setState('stopped');
          this.logger.warn('backlog at the hard bound: writes stop until the worker catches up', { backlogBytes: this.backlog, hard: this.current.hard });
        }
        await new Promise((resolve) => setTimeout(resolve, this.pollMs));
      }
    } finally {
      this.admitting--;
    }
    this.settle();
  }

  report(now = Date.now()): FlowReport {
    const current = (s: 'delayed' | 'stopped'): StallTotals => ({
      count: this.totals[s].count,
      seconds: this.totals[s].seconds + (this.stateNow === s ? (now - this.sinceMs) / 1000 : 0),
    });
    const inForce = this.current;
    const differs = inForce.soft !== this.bounds.soft || inForce.hard !== this.bounds.hard;
    const rate = this.drain.rate;
    return {
      state: this.stateNow,
      since: this.sinceMs,
      backlogBytes: this.backlog,
      ...this.bounds,
      ...(differs ? { inForce } : {}),
      ...(rate !== undefined ? { drainRate: Math.round(rate) } : {}),
      delayed: current('delayed'),
      stopped: current('stopped'),
    };
  }

  // ---- internals ----------------------------------------------------------------

  /**
   * A new log fits by the last scan if it is at most two polls old (one
   * poll plus the time a scan takes): the
   * backlog since can only have grown by this writer's own hand-overs
   * (workers only shrink it), counted here from `added` on top of those
   * still under way (a log in both counts twice: an overestimate). So the
   * first append of a new log need not wait for a scan of the pool (a
   * readdir and a stat per log through the threadpool, up to a few ms on a
   * loaded machine); other writers of a shared pool are seen by the next scan.
   */
  private admitsFromLastScan(size: number): boolean {
    if (this.stateNow === 'stopped' || this.scannedAt === 0 || performance.now() - this.scannedAt > 2 * this.pollMs) return false;
    const since = this.added() - this.addedAtScan;
    return this.scanned + since + this.pending(this.seen) + size <= this.current.hard;
  }

  private async refresh(): Promise<void> {
    await this.scan();
    if (this.admitting === 0) this.settle();
  }

  /** One scan at a time; null when it failed (the last figure stands). */
  private scan(): Promise<Backlog | null> {
    if (this.scanningNow !== null) return this.scanningNow;
    // What this writer had made dirty when the scan began: later hand-overs may be missing from it.
    const started = this.added();
    this.scanningNow = scanBacklog(this.dir, this.ops)
      .then(
        (b) => {
          this.scanned = b.bytes;
          this.seen = b.dirty;
          this.scannedAt = performance.now();
          this.addedAtScan = started;
          this.drain.observe(performance.now(), b.uses, this.added());
          metrics.backlogBytes.set(this.backlog);
          return b;
        },
        (err: unknown) => {
          this.logger.warn('could not scan the commit-log pool for its backlog', { error: (err as Error).message });
          return null;
        },
      )
      .finally(() => (this.scanningNow = null));
    return this.scanningNow;
  }

  /** The state the backlog calls for, outside an admission. */
  private settle(): void {
    this.setState(this.backlog >= this.current.soft ? 'delayed' : 'normal');
  }

  private setState(next: FlowState): void {
    const was = this.stateNow;
    if (next === was) return;
    const now = Date.now();
    if (was !== 'normal') {
      const seconds = (now - this.sinceMs) / 1000;
      this.totals[was].seconds += seconds;
      metrics.flowStallSeconds.inc({ state: was }, seconds);
    }
    if (next !== 'normal') {
      this.totals[next].count++;
      metrics.flowStalls.inc({ state: next });
    }
    metrics.flowState.set({ state: was }, 0);
    metrics.flowState.set({ state: next }, 1);
    this.stateNow = next;
    this.sinceMs = now;
    if (was === 'stopped') {
      this.logger.info('backlog below the hard bound: writes go on', { backlogBytes: this.backlog });
      this.resumed();
    }
    this.changed?.(this.report(now));
  }
}
