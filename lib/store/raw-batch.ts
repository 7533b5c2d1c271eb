// The per-key operations of an apply, put straight into classic-level's
// native batch.
//
// abstract-level's ChainedBatch#put validates its arguments, spreads its
// options into a new operation object, looks up both encodings and
// prefixes the key, for every operation: ~1 us and two objects per call,
// 2-3 calls per key of an apply (profile in BENCHMARKS.md, issue 14 0.7.0).
// The store's database has Buffer keys and values, no sublevels, no hooks
// and no write events, so all that is the identity, and the store calls
// the batch's private `_put`/`_del` (abstract-level's interface for
// implementations, which classic-level's ChainedBatch implements with one
// native call) instead. The first operation goes through the public method,
// so the batch's length is not 0 and its write() is not skipped; every
// operation after it is written with it just the same.

import type { Chained } from './state.js';

interface PrivateBatch {
  _put(key: Buffer, value: Buffer): void;
  _del(key: Buffer): void;
}

export class RawOps {
  readonly #chained: Chained;
  readonly #raw: PrivateBatch;
  #public = true;

  constructor(chained: Chained) {
    this.#chained = chained;
    this.#raw = chained as unknown as PrivateBatch;
  }

  put(key: Buffer, value: Buffer): void {
    if (this.#public) {
      this.#chained.put(key, value);
      this.#public = this.#chained.length === 0;
    } else this.#raw._put(key, value);
  }

  del(key: Buffer): void {
    if (this.#public) {
      this.#chained.del(key);
      this.#public = this.#chained.length === 0;
    } else this.#raw._del(key);
  }
}
