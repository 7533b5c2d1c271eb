// The import's writes (docs/legacy-format.md, "How countd migrate imports",
// step 4): every Store.apply of the migration, across all keyspaces, goes
// through one pipeline with two IncrementBatches. The importer fills one
// while the Store applies the other, so reading and parsing the next batch,
// or the next keyspace, overlaps the Store's write and fsync of the last.
//
// At most ONE apply is in flight, and applies are submitted in order: a
// batch's marks are built only once the batch before it has committed, so a
// mark never claims records of a batch that may still fail. The failure of
// any apply stops the pipeline: the next submit (or drain) throws it, and
// nothing is submitted after it.

import { IncrementBatch, type ApplyResult, type Mark, type Store } from '../store/store.js';

export class ApplyPipeline {
  readonly #store: Store | undefined;
  readonly #batches = [new IncrementBatch(), new IncrementBatch()] as const;
  #filling: 0 | 1 = 0;
  #inflight: Promise<void> | undefined;

  /** `store` undefined: a dry run; batches are cleared instead of applied. */
  constructor(store: Store | undefined) {
    this.#store = store;
  }

  /** The batch to add increments to. */
  get batch(): IncrementBatch {
    return this.#batches[this.#filling];
  }

  /**
   * Apply the batch being filled together with the marks `marks()` returns,
   * and switch to the other batch. Resolves once the apply is submitted
   * (after the previous one committed: `marks` runs then, so it sees that
   * apply's results); `onCommitted` runs when this one commits. Throws the
   * failure of the previous apply (or of its onCommitted) instead.
   */
  async submit(marks: () => Mark[], onCommitted: (result: ApplyResult) => void): Promise<void> {
    const full = this.batch;
    this.#filling = this.#filling === 0 ? 1 : 0;
    await this.drain(); // frees the other batch for the caller
    const store = this.#store;
    if (store === undefined) {
      full.clear();
      return;
    }
    this.#start(
      store.apply(full, marks()).then((result) => {
        full.clear();
        onCommitted(result);
      }),
    );
  }

  /**
   * Run another write in the same order (Store.createKeyspace): `write` starts
   * once the write before has committed. Resolves once it is started.
   */
  async submitWrite(write: () => Promise<void>): Promise<void> {
    await this.drain();
    if (this.#store === undefined) return;
    this.#start(write());
  }

  #start(inflight: Promise<void>): void {
    // Its failure is thrown by the next submit or drain; until then it is not "unhandled".
    inflight.catch(() => {});
    this.#inflight = inflight;
  }

  /** Wait for the apply in flight; throws its failure. */
  async drain(): Promise<void> {
    const inflight = this.#inflight;
    this.#inflight = undefined;
    await inflight;
  }

  /** Wait for the apply in flight, ignoring its failure (error paths: an earlier error is being thrown). */
  async settle(): Promise<void> {
    await this.drain().catch(() => {});
  }
}
