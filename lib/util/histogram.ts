// A log-scale histogram of positive values (latencies in µs): bucket b holds
// [growth^b, growth^(b+1)), so recording costs a logarithm and an array
// increment, memory is fixed, and a quantile is exact to the bucket width.
// Used by countd-write's commit tracing and by the benchmarks.

export class LogHistogram {
  private readonly counts: Float64Array;
  private readonly growth: number;
  private readonly logGrowth: number;
  total = 0;

  /** Buckets `growth` wide (1.01: 1%) up to `max`; larger values count in the last bucket. */
  constructor(growth: number, max: number) {
    this.growth = growth;
    this.logGrowth = Math.log(growth);
    this.counts = new Float64Array(Math.ceil(Math.log(max) / this.logGrowth) + 1);
  }

  record(value: number): void {
    const last = this.counts.length - 1;
    const b = value <= 1 ? 0 : Math.min(last, Math.floor(Math.log(value) / this.logGrowth));
    this.counts[b]!++;
    this.total++;
  }

  /** The q-quantile (0 < q < 1): the middle of its bucket; NaN with no value recorded. */
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    const rank = q * this.total;
    let seen = 0;
    for (let b = 0; b < this.counts.length; b++) {
      seen += this.counts[b]!;
      if (seen >= rank) return this.growth ** (b + 0.5);
    }
    return this.growth ** this.counts.length;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }
}
