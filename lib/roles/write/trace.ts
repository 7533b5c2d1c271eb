// Commit tracing (COUNTD_TRACE_COMMITS=1 in countd-write's environment):
// where a group commit's time goes, phase by phase, so that the write path
// can be compared with the disk's floor (`npm run bench:phases`):
//
//   wait    first frame of the batch read from its socket → commit started
//   write   the pwritev call: with O_DSYNC (the default) the whole durable
//           write; with COUNTD_COMMIT_DURABILITY=fdatasync the copy into the page cache
//   sync    the fdatasync call, as the writer sees it (threadpool hops
//           included unless inline); none with O_DSYNC
//   commit  commit started → durable (write + sync + queueing between them)
//   reply   durable → every WIN of the batch handed to its socket
//
// Every TRACE_INTERVAL_MS the writer logs one line "commit phases" with the
// p50 and p99 of each phase in µs (fields waitP50us, waitP99us, …) since the
// last line, and one line "commit overlaps": the commits again, by what else
// this process had under way at their start or end (a hand-over of a log,
// the claim of the next one, flow control's scan of the pool; "none": none
// of them, so a slow one of those waited for the disk, the CPU or the other
// processes), each with its count, p50 and p99. Off by default: the hot path
// then takes no timestamps.

import type { FileOps } from '../../commitlog/fileops.js';
import { LogHistogram } from '../../util/histogram.js';
import type { Logger } from '../../util/log.js';

const TRACE_INTERVAL_MS = 2000;
/** Background work of countd-write a commit may overlap (bits). */
export const BACKGROUND_HANDOVER = 1;
export const BACKGROUND_CLAIM = 2;
export const BACKGROUND_SCAN = 4;
const BACKGROUND_NAMES: ReadonlyArray<[number, string]> = [
  [BACKGROUND_HANDOVER, 'handover'],
  [BACKGROUND_CLAIM, 'claim'],
  [BACKGROUND_SCAN, 'scan'],
];

/** "handover+scan" for bits 5; "none" for 0. */
export function backgroundName(bits: number): string {
  const names = BACKGROUND_NAMES.filter(([bit]) => (bits & bit) !== 0).map(([, name]) => name);
  return names.length === 0 ? 'none' : names.join('+');
}
export const PHASES = ['wait', 'write', 'sync', 'commit', 'reply'] as const;
export type Phase = (typeof PHASES)[number];

export class CommitTrace {
  // 2% buckets up to 10 s.
  private readonly phases = new Map<Phase, LogHistogram>(PHASES.map((p) => [p, new LogHistogram(1.02, 1e7)]));
  /** Commit times by the background bits they overlapped. */
  private readonly overlaps = new Map<number, LogHistogram>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly logger: Logger) {
    this.timer = setInterval(() => this.flush(), TRACE_INTERVAL_MS);
    this.timer.unref();
  }

  /** Record `phase` as lasting from `from` (performance.now()) until now. */
  since(phase: Phase, from: number): void {
    this.phases.get(phase)!.record((performance.now() - from) * 1000);
  }

  /** A commit that started at `from` (performance.now()) is durable now; `background`: what overlapped it. */
  overlapped(from: number, background: number): void {
    let h = this.overlaps.get(background);
    if (h === undefined) {
      h = new LogHistogram(1.02, 1e7);
      this.overlaps.set(background, h);
    }
    h.record((performance.now() - from) * 1000);
  }

  /** Log the phases seen since the last line, and start over. */
  flush(): void {
    const commits = this.phases.get('commit')!.total;
    if (commits === 0) return;
    const overlaps: Record<string, number> = {};
    for (const [bits, h] of this.overlaps) {
      if (h.total === 0) continue;
      const name = backgroundName(bits);
      overlaps[`${name}Commits`] = h.total;
      overlaps[`${name}P50us`] = Math.round(h.quantile(0.5));
      overlaps[`${name}P99us`] = Math.round(h.quantile(0.99));
      h.reset();
    }
    const fields: Record<string, number> = { commits };
    for (const [name, h] of this.phases) {
      fields[`${name}P50us`] = Math.round(h.quantile(0.5));
      fields[`${name}P99us`] = Math.round(h.quantile(0.99));
      h.reset();
    }
    this.logger.info('commit phases', fields);
    this.logger.info('commit overlaps', overlaps);
  }

  stop(): void {
    clearInterval(this.timer);
    this.flush();
  }

  /** `ops` with its pwritev and fdatasync calls timed into this trace. */
  timed(ops: FileOps): FileOps {
    return {
      ...ops,
      pwritev: async (fd, buffers, position, inline) => {
        const t = performance.now();
        try {
          return await ops.pwritev(fd, buffers, position, inline);
        } finally {
          this.since('write', t);
        }
      },
      fdatasync: async (fd, inline) => {
        const t = performance.now();
        try {
          return await ops.fdatasync(fd, inline);
        } finally {
          this.since('sync', t);
        }
      },
    };
  }
}

/** A trace when COUNTD_TRACE_COMMITS=1, else null. */
export function commitTraceFromEnv(logger: Logger, env: NodeJS.ProcessEnv = process.env): CommitTrace | null {
  return env.COUNTD_TRACE_COMMITS === '1' ? new CommitTrace(logger) : null;
}
