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
// last line. Off by default: the
// hot path then takes no timestamps.

import type { FileOps } from '../../commitlog/fileops.js';
import { LogHistogram } from '../../util/histogram.js';
import type { Logger } from '../../util/log.js';

const TRACE_INTERVAL_MS = 2000;
export const PHASES = ['wait', 'write', 'sync', 'commit', 'reply'] as const;
export type Phase = (typeof PHASES)[number];

export class CommitTrace {
  // 2% buckets up to 10 s.
  private readonly phases = new Map<Phase, LogHistogram>(PHASES.map((p) => [p, new LogHistogram(1.02, 1e7)]));
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly logger: Logger) {
    this.timer = setInterval(() => this.flush(), TRACE_INTERVAL_MS);
    this.timer.unref();
  }

  /** Record `phase` as lasting from `from` (performance.now()) until now. */
  since(phase: Phase, from: number): void {
    this.phases.get(phase)!.record((performance.now() - from) * 1000);
  }

  /** Log the phases seen since the last line, and start over. */
  flush(): void {
    const commits = this.phases.get('commit')!.total;
    if (commits === 0) return;
    const fields: Record<string, number> = { commits };
    for (const [name, h] of this.phases) {
      fields[`${name}P50us`] = Math.round(h.quantile(0.5));
      fields[`${name}P99us`] = Math.round(h.quantile(0.99));
      h.reset();
    }
    this.logger.info('commit phases', fields);
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
