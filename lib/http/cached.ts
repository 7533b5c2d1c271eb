// A value fetched at most once per `ttlMs`, shared by the requests that
// arrive meanwhile (the console polls; the daemon should not do the work
// once per poll and per open page).

export class Cached<T> {
  readonly #ttlMs: number;
  readonly #fetch: () => Promise<T>;
  #value: { at: number; value: T } | undefined;
  #inflight: Promise<T> | undefined;

  constructor(ttlMs: number, fetch: () => Promise<T>) {
    this.#ttlMs = ttlMs;
    this.#fetch = fetch;
  }

  get(): Promise<T> {
    if (this.#value && Date.now() - this.#value.at < this.#ttlMs) return Promise.resolve(this.#value.value);
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
