// How fast the workers drain the commit-log pool, as flow control sees it
// (flow.ts): the bytes of the logs that stopped being dirty between two
// scans of the pool, over the time the pool held a backlog. With it, the
// backlog bounds can be set in seconds of applying (--backlog-seconds)
// rather than only in bytes: a write waits behind the backlog ahead of it,
// so a backlog of at most S seconds of applying keeps the write-to-readable
// lag near S plus one apply, whatever the workload's keys cost to apply
// (BENCHMARKS.md, "The engine keeps up").
//
// Only intervals that began with a backlog count: a pool with nothing dirty
// says how fast writes came, not how fast they could be applied. Logs leave
// the dirty state a batch at a time (several at once), so the rate is taken
// over windows of at least WINDOW_MS of such time, the last two averaged.

/** Busy time (ms) of one measurement window. */
export const WINDOW_MS = 2000;

export class DrainMeter {
  #previous: Map<number, number> | undefined;
  #previousAt = 0;
  #windowBytes = 0;
  #windowMs = 0;
  /** Rates (bytes/s) of the last two complete windows, newest last. */
  #rates: number[] = [];

  /** A scan at `nowMs` found these dirty logs (index -> bytes). */
  observe(nowMs: number, dirty: Map<number, number>): void {
    const previous = this.#previous;
    if (previous !== undefined && previous.size > 0 && nowMs > this.#previousAt) {
      let drained = 0;
      for (const [index, bytes] of previous) if (!dirty.has(index)) drained += bytes;
      this.#windowBytes += drained;
      this.#windowMs += nowMs - this.#previousAt;
      if (this.#windowMs >= WINDOW_MS) {
        this.#rates.push((this.#windowBytes * 1000) / this.#windowMs);
        if (this.#rates.length > 2) this.#rates.shift();
        this.#windowBytes = 0;
        this.#windowMs = 0;
      }
    }
    this.#previous = dirty;
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
