// A cache of encoded page responses for countd-read. Leaderboard traffic asks
// for the same top pages over and over; between two worker applies the answer
// cannot change, so the encoded bytes are served from memory instead of
// opening a snapshot and an iterator (four thread-pool round trips) per request.
//
// Exactness: an entry is tagged with the store's `version` read BEFORE the
// page was computed, and served only while the version is unchanged. A page
// computed across a commit carries the older version and is never served.
// Memory: bounded by `maxBytes` (least recently used entries go first).

export interface VersionedStore {
  readonly version?: number;
}

interface CachedPage {
  version: number;
  response: Buffer;
}

export class PageCache {
  readonly #maxBytes: number;
  readonly #entries = new Map<string, CachedPage>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** `period`: the start of the period read, for a windowed keyspace (its current period changes with the clock, not with a write). */
  static key(keyspace: Buffer, offset: bigint, length: bigint, period?: number): string {
    return `${offset}:${length}:${period ?? ''}:${keyspace.toString('latin1')}`;
  }

  /** The cached response if it is still exact at `version`. */
  get(key: string, version: number): Buffer | undefined {
    const hit = this.#entries.get(key);
    if (hit === undefined) return undefined;
    this.#entries.delete(key);
    if (hit.version !== version) {
      this.#bytes -= hit.response.length;
      return undefined;
    }
    this.#entries.set(key, hit); // most recently used goes last
    return hit.response;
  }

  set(key: string, version: number, response: Buffer): void {
    if (response.length > this.#maxBytes) return;
    const old = this.#entries.get(key);
    if (old !== undefined) {
      this.#entries.delete(key);
      this.#bytes -= old.response.length;
    }
    this.#entries.set(key, { version, response });
    this.#bytes += response.length;
    for (const [k, v] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(k);
      this.#bytes -= v.response.length;
    }
  }

  get bytes(): number {
    return this.#bytes;
  }
}
