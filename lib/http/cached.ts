// A value fetched at most once per `ttlMs`, shared by the requests that
// arrive meanwhile (the console polls; the daemon should not do the work
// once per poll and per open page). Past `ttlMs` and up to `staleMs`, the
// value is still answered at once while a fresh one is fetched behind it,
// so that no request waits for a refetch (10,000 keyspaces take a few
// hundred ms to list); past `staleMs`, requests wait for the fresh value.

export class Cached<T> {
  readonly #ttlMs: number;
  readonly #staleMs: number;
  readonly #fetch: () => Promise<T>;
  #value: { at: number; value: T } | undefined;
  #inflight: Promise<T> | undefined;

  constructor(ttlMs: number, fetch: () => Promise<T>, staleMs = ttlMs) {
    this.#ttlMs = ttlMs;
    this.#staleMs = Math.max(ttlMs, staleMs);
    this.#fetch = fetch;
  }

  get(): Promise<T> {
    const age = this.#value === undefined ? Infinity : Date.now() - this.#value.at;
    if (age < this.#ttlMs) return Promise.resolve(this.#value!.value);
    if (age < this.#staleMs) {
      this.refresh().catch(() => {}); // a failure shows on the next request that must wait
      return Promise.resolve(this.#value!.value);
    }
    return this.refresh();
  }

  /** Fetch now (joining a fetch in flight). */
  refresh(): Promise<T> {
    this.#inflight ??= this.#fetch().then(
      (value) => {
        this.#value = { at: Date.now(), value };
        this.#inflight = undefined;
        return value;
      },
      (err: unknown) => {
        this.#inflight = undefined;
        throw err;
      },
    );
    return this.#inflight;
  }
}
