// How fast the workers drain the commit-log pool, as flow control sees it
// (flow.ts). With it, the backlog bounds can be set in seconds of applying
// (--backlog-ms) rather than only in bytes: a write waits behind the backlog
// ahead of it, so a backlog of at most S seconds of applying keeps the
// write-to-readable lag near S plus one apply, whatever the workload's keys
// cost to apply (BENCHMARKS.md, "The engine keeps up").
//
// Two lower bounds of what left the dirty state between two scans, summed
// over a window, the larger one taken:
//
//   balance   backlog before + bytes this writer made dirty since - backlog
//             now: exact with one writer per pool, whatever the timing,
//             including logs made dirty and applied between two scans
//             (at full load most are: the pool recycles a few logs
//             several times a second)
//   uses      the dirty uses seen at one scan and gone at the next, a use
//             being a log index and the time of its last write (so an
//             index applied and dirty again between two scans counts):
//             sees other writers' logs too, but misses the short-lived
//
// Only intervals in which the pool held a backlog, or this writer added
// to it, count: a pool with nothing dirty says how fast writes came, not
// how fast they could be applied. Logs leave the dirty state a batch at a
// time, so the rate is taken over windows of WINDOW_MS of such time (or of
// FAST_WINDOW_MS once FAST_WINDOW_LOGS logs drained: a load that rises
// meets a rate of its own within a second, not the one measured under the
// light load before it), the last two averaged.

/** Busy time (ms) of one measurement window. */
export const WINDOW_MS = 2000;
/** A window closes after this much busy time (ms) once it drained FAST_WINDOW_LOGS logs. */
export const FAST_WINDOW_MS = 500;
export const FAST_WINDOW_LOGS = 8;

export class DrainMeter {
  readonly #logSize: number;
  #previous: Map<unknown, number> | undefined;
  #previousBytes = 0;
  #previousAdded = 0;
  #previousAt = 0;
  #windowBalance = 0;
  #windowUses = 0;
  #windowMs = 0;
  /** Rates (bytes/s) of the last two complete windows, newest last. */
  #rates: number[] = [];

  /** `logSize`: bytes of one commit log (for FAST_WINDOW_LOGS); 0 turns fast windows off. */
  constructor(logSize = 0) {
    this.#logSize = logSize;
  }

  /**
   * A scan at `nowMs` found these dirty uses (an identity of the use, such
   * as `index@mtime` -> bytes); `added`: bytes this writer has made dirty
   * so far (cumulative; read after the scan).
   */
  observe(nowMs: number, dirty: Map<unknown, number>, added = 0): void {
    let bytes = 0;
    for (const b of dirty.values()) bytes += b;
    const previous = this.#previous;
    const addedNow = added - this.#previousAdded;
    if (previous !== undefined && (this.#previousBytes > 0 || addedNow > 0) && nowMs > this.#previousAt) {
      let left = 0;
      for (const [use, b] of previous) if (!dirty.has(use)) left += b;
      this.#windowUses += left;
      // Signed: a log made dirty just after the scan read its mode is
      // "drained" in one interval and back in the next; the two cancel.
      this.#windowBalance += this.#previousBytes + addedNow - bytes;
      this.#windowMs += nowMs - this.#previousAt;
      const drained = Math.max(0, this.#windowUses, this.#windowBalance);
      const fast = this.#logSize > 0 && this.#windowMs >= FAST_WINDOW_MS && drained >= FAST_WINDOW_LOGS * this.#logSize;
      if (this.#windowMs >= WINDOW_MS || fast) {
        this.#rates.push((drained * 1000) / this.#windowMs);
        if (this.#rates.length > 2) this.#rates.shift();
        this.#windowBalance = 0;
        this.#windowUses = 0;
        this.#windowMs = 0;
      }
    }
    this.#previous = dirty;
    this.#previousBytes = bytes;
    this.#previousAdded = added;
    this.#previousAt = nowMs;
  }

  /**
   * Bytes per second the pool drains while it holds a backlog; undefined
   * until a window was measured, and while the last window drained nothing:
   * a stalled worker (a full database disk, a restart) is not a rate to
   * bound writes by (flow control falls back to its byte bounds, and writes
   * are still acknowledged, durable in the pool, until it applies again).
   */
  get rate(): number | undefined {
    if (this.#rates.length === 0 || this.#rates[this.#rates.length - 1] === 0) return undefined;
    return this.#rates.reduce((a, b) => a + b, 0) / this.#rates.length;
  }
}
