// countd-worker: applies dirty commit logs to the store, exactly once.
//
// Loop: claim up to maxLogsPerApply dirty logs (mode 0400, lock-<index>
// linked by us); read and verify each and sum their entries into one
// IncrementBatch (on the summing thread, lib/roles/work/, which reports per
// log what it did: this loop decides and marks); write the sums AND one mark `applied/<index>` = generation
// per log in ONE atomic store.apply(); then release each log clean (mode
// 0200, lock removed) so the writer may reuse it.
//
// Why every frame counts exactly once, whatever is killed when
// ------------------------------------------------------------
// A log's contents are fixed once it is dirty: the writer sealed it before
// the chmod to 0400, and nobody writes a dirty log. Each use of a log file
// has a fresh random 64-bit generation in its header, so (index, generation)
// names one use of one file. The database holds, atomically with the counts,
// the generation of the last use of each index that was applied.
//
//  1. Killed before claiming, or after claiming but before store.apply()
//     commits: the database has none of the log's frames and no mark. The log
//     is still 0400; its lock-<index> names a dead owner, so recoverStaleLocks()
//     (at start and every recoverEveryMs) removes the lock, and a worker claims
//     and applies it later. Counted once.
//  2. Killed during store.apply(): a LevelDB write batch is atomic (one record
//     of its write-ahead log, replayed whole or not at all), and the marks
//     are in the same batch as the counts. Either case 1 or case 3.
//  3. Killed after store.apply() commits, before release() finishes (chmod
//     0200, unlink lock): the log is still dirty and is claimed again, but
//     its mark applied/<index> equals its generation, so this worker skips
//     its entries and only releases it clean. Counted once.
//  4. Killed after the chmod to 0200 but before the lock is removed: the
//     pool's stale-lock recovery sees a locked log with records of its current
//     generation and marks it dirty again (it cannot tell a dead worker from a
//     dead writer); the next claim finds mark = generation: case 3.
//  5. The writer reuses the log: the new use has a new generation, which
//     differs from the mark (a collision has probability 2^-64), so the new
//     use is applied; its mark then replaces the old one.
//  6. store.apply() fails (database error): nothing was written; the logs are
//     released dirty and retried after an exponential backoff (after a full
//     disk: once space is free, work/apply-health.ts). A failed write whose
//     sync failed may have committed after all: the marks make its retry a
//     case 3.
//  7. release() fails after a successful apply: the mark already protects the
//     log; it is released again on the next rounds (case 3 if it is dirty).
//
// Durability: chmod to 0200 happens only after store.apply() resolved, and
// the store writes its batch with sync (storage-format.md), so a power loss
// cannot leave a clean log whose counts are not in the database.
//
// A log's corrupt parts (CRC mismatch, bytes that are no record) are
// logged with their offsets and the bytes dropped; its valid records are
// still applied.
//
// A log whose header cannot be verified is salvaged, then quarantined
// (mode 0000: never claimed again, kept for the operator). The summing
// thread attributes its valid records to the log's last use G without the
// header (reader.ts salvageRecords); they are applied with mark
// applied/<index> = G in the same atomic batch, exactly as above with G in
// place of the header's generation: cases 1-3 hold unchanged (a log found
// dirty again has G = mark and is only quarantined), and a log quarantined
// (chmod 0000 before unlock, case 4's moment) keeps mode 0000 through
// stale-lock recovery, which never changes a mode other than 0200. If G
// equals the mark before the salvage, G's use was applied normally before
// its header broke: nothing is applied. docs/commit-log-format.md,
// "Salvaging", gives the whole argument.

import { CountdError, ErrorCodes, invalidArgument } from '../errors.js';
import { metrics } from '../metrics.js';
import { Logger, silentLogger } from '../util/log.js';
import { DataDir } from '../datadir/meta.js';
import { CommitLogPool, type PoolCounts } from '../commitlog/pool.js';
import { IncrementBatch } from '../store/increment-batch.js';
import type { HealthReport } from '../protocol/read-response.js';
import { ApplyHealth, afterFailedApply, type Recovery } from './work/apply-health.js';
import { BatchPacer, DEFAULT_BATCH_TARGET_MS, heapUnderPressure } from './work/batch-pacer.js';
import { PeriodExpiry } from './work/expiry.js';
import { LogSummer } from './work/log-summer.js';
import { type ClaimedLog, type Prepared, emptyPrepared, takeOutcomes } from './work/prepared.js';
import { appliedMarkName } from '../store/marks.js';
import { ProducerMarks } from './work/producer-marks.js';
import { PoolWatch } from './work/pool-watch.js';
import type { Store } from '../store/store.js';

export interface WorkerOptions {
  dataDir: DataDir;
  store: Store;
  logger?: Logger;
  /** How often to look for dirty logs when idle. Default 50 ms. */
  pollMs?: number;
  /**
   * Logs summed into one database batch at most. Default 64. Logs are claimed
   * 8 at a time; more are summed into the same batch only while a backlog
   * remains and the batch holds under maxBatchKeys distinct keys.
   */
  maxLogsPerApply?: number;
  /**
   * A batch stops claiming logs once it holds this many distinct keys.
   * Default 500,000 (`countd start` derives it from --store-memory:
   * memory-budget.ts). Bigger batches sum more repeated keys once (faster
   * drains).
   */
  maxBatchKeys?: number;
  /**
   * Visibility target: a batch holds at most what the store applies in this
   * long at its measured rate (BatchPacer). Default 500 ms.
   */
  batchTargetMs?: number;
  /** How often to free locks of dead processes. Default 5,000 ms. */
  recoverEveryMs?: number;
  /**
   * True while memory is short: a batch then starts with GROW_CHUNK logs
   * instead of CLAIM_CHUNK and does not grow. Default: V8's heap is over half
   * its limit (heapUnderPressure). For tests.
   */
  heapPressure?: () => boolean;
  /** Passed to the commit-log pool: how old a lock without a live owner must be to count as stale. */
  staleLockGraceMs?: number;
  /**
   * Cluster mode (docs/cluster.md): counts reach the database through the
   * partitions' owners (lib/cluster/), so the worker claims, marks and
   * recycles its logs with no counts (applying them too would count twice).
   */
  countsElsewhere?: boolean;
  /** Idle idempotent producers are removed from the database after this long (default one day). */ producerExpiryMs?: number;
  /** Called once an apply has committed (or logs were quarantined): the applied position may have moved (read/tokens.ts wakes its awaits). */
  onApplied?: () => void;
}

export interface WorkerHandle {
  /** Finish the apply in progress, then stop. Does not close the store. */
  close(): Promise<void>;
  /** Resolves once no dirty log waits and no apply runs. */
  drained(): Promise<void>;
  /** Whether applies succeed (the read port's health op, `countd status`). */
  health(): HealthReport;
}

const MAX_BACKOFF_MS = 5000;
/** Applies handed to the store at a time: one being written, the next being prepared on top of it. */
const MAX_INFLIGHT = 2;
/** Logs claimed at a time. */
const CLAIM_CHUNK = 8;
/**
 * Logs claimed at a time while a batch grows during the previous apply: the
 * apply that ends waits for the chunk being summed, so growth steps are small.
 */
const GROW_CHUNK = 2;
/**
 * Default maxBatchKeys: a batch that reached this many distinct keys claims
 * no more logs. It bounds the memory of a batch and its apply (~1 KiB per
 * key at the peak of an apply) whatever maxLogsPerApply is; below it, more
 * logs per apply sum repeated keys once and amortize an apply's fixed costs.
 * Measured (bench:worker, 1,000,000 uniform keys): 250,000 keys per batch
 * drained 63,000 frames per CPU-second, 500,000-600,000 about 72,000.
 */
export const DEFAULT_MAX_BATCH_KEYS = 500_000;
const STATUS_EVERY_MS = 1000;

export async function startWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const pollMs = options.pollMs ?? 50;
  const maxLogs = options.maxLogsPerApply ?? 64;
  const maxBatchKeys = options.maxBatchKeys ?? DEFAULT_MAX_BATCH_KEYS;
  const batchTargetMs = options.batchTargetMs ?? DEFAULT_BATCH_TARGET_MS;
  const recoverEveryMs = options.recoverEveryMs ?? 5000;
  if (!options.dataDir || !options.store) throw invalidArgument('worker needs a data directory and a store');
  if (!Number.isSafeInteger(pollMs) || pollMs < 1) throw invalidArgument(`pollMs must be a positive integer, got ${pollMs}`);
  if (!Number.isSafeInteger(maxLogs) || maxLogs < 1) throw invalidArgument(`maxLogsPerApply must be a positive integer, got ${maxLogs}`);
  if (!Number.isSafeInteger(maxBatchKeys) || maxBatchKeys < 1) throw invalidArgument(`maxBatchKeys must be a positive integer, got ${maxBatchKeys}`);
  if (!Number.isSafeInteger(recoverEveryMs) || recoverEveryMs < 1) throw invalidArgument(`recoverEveryMs must be a positive integer, got ${recoverEveryMs}`);
  if (!Number.isSafeInteger(batchTargetMs) || batchTargetMs < 1) throw invalidArgument(`batchTargetMs must be a positive integer, got ${batchTargetMs}`);
  const logger = (options.logger ?? silentLogger).child('worker');
  const pool = await CommitLogPool.open({
    dir: options.dataDir.paths.commitlog,
    sizes: options.dataDir.sizes,
    logger,
    ...(options.staleLockGraceMs === undefined ? {} : { staleLockGraceMs: options.staleLockGraceMs }),
  });
  const worker = new Worker(pool, options.store, options.dataDir.sizes, logger, pollMs, maxLogs, new BatchPacer(batchTargetMs, maxBatchKeys), recoverEveryMs, options.heapPressure ?? heapUnderPressure, new ProducerMarks(options.store, options.producerExpiryMs));
  worker.countsElsewhere = options.countsElsewhere === true;
  worker.onApplied = options.onApplied;
  await worker.recover();
  worker.start();
  return { close: () => worker.close(), drained: () => worker.drained(), health: () => worker.health.report() };
}

type Sizes = DataDir['sizes'];

class Worker {
  countsElsewhere = false;
  onApplied: (() => void) | undefined;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #lastRecover = 0;
  #lastStatus = 0;
  #drainWaiters: Array<() => void> = [];
  /** Applied logs whose release failed: released again on later rounds. */
  #unreleased: Array<{ log: ClaimedLog; state: 'clean' | 'quarantined' }> = [];
  /** Settles once the last apply that may change keyspace settings (a create or delete) has committed or failed. */
  #settingsBarrier: Promise<void> = Promise.resolve();
  readonly health = new ApplyHealth();
  readonly #expiry = new PeriodExpiry();
  /** Wakes the idle worker when a log is handed over (work/pool-watch.ts). */
  readonly #watch: PoolWatch;
  /** What afterFailedApply needs (work/apply-health.ts). */
  readonly #recovery: Recovery;

  constructor(
    readonly pool: CommitLogPool,
    readonly store: Store,
    readonly sizes: Sizes,
    readonly logger: Logger,
    readonly pollMs: number,
    readonly maxLogs: number,
    readonly pacer: BatchPacer,
    readonly recoverEveryMs: number,
    readonly heapPressure: () => boolean,
    readonly producers: ProducerMarks, // producer and token marks written with each apply (issue 16)
  ) {
    this.summer = new LogSummer(sizes);
    // Not while backing off after a failure: that keeps backing off.
    this.#watch = new PoolWatch(pool.dir, () => this.#failures === 0 && this.#wake?.(), logger);
    this.#recovery = { health: this.health, store, logger, sleep: (ms) => this.#sleep(ms), stopping: () => this.#stopping };
  }

  /** Reads and sums claimed logs on a thread of its own (lib/roles/work/). */
  readonly summer: LogSummer;

  async recover(): Promise<void> {
    this.#lastRecover = Date.now();
    const freed = await this.pool.recoverStaleLocks();
    if (freed > 0) this.logger.info('freed stale commit-log locks', { locks: freed });
  }

  start(): void {
    this.#loop = this.#run();
  }

  async close(): Promise<void> {
    this.#stopping = true;
    this.#watch.stop();
    this.#wake?.();
    await this.#loop;
    await this.summer.close();
    for (const resolve of this.#drainWaiters.splice(0)) resolve();
  }

  drained(): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    // No wake-up: a worker backing off after a failure keeps backing off.
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  // Batches overlap. While the store applies batch N, the summing thread
  // reads and sums batch N + 1; once N's write is in flight (store.preparing
  // is false), N + 1 is handed to the store, which prepares it on top of N
  // (lib/store/inflight-apply.ts; if N fails, so does N + 1). At most
  // MAX_INFLIGHT applies are handed over at a time. Their logs are disjoint
  // (each is locked by its claim), so the argument above holds for each.
  async #run(): Promise<void> {
    /** Applies handed to the store, oldest first; each resolves to its error, never rejects (no unhandled rejection meanwhile). */
    const inflight: Array<{ settled: boolean; result: Promise<unknown> }> = [];
    const settleOldest = async (): Promise<void> => {
      const err = await inflight.shift()!.result;
      if (err !== undefined) throw err;
    };
    /** Settle the applies already finished (a failure is thrown), then wait until fewer than `limit` are in flight. */
    const settle = async (limit: number): Promise<void> => {
      while (inflight.length > 0 && (inflight[0]!.settled || inflight.length > limit)) await settleOldest();
    };
    /** Every apply in flight finished; failures logged (an error is being handled already). */
    const settleAll = async (): Promise<void> => {
      while (inflight.length > 0) await settleOldest().catch((e: unknown) => this.logger.error('apply failed', { error: describe(e) }));
    };
    // Grow the next batch while the store could not start on it yet anyway.
    // (Applies that finished stay in `inflight` until settled, but no longer keep the store busy.)
    const storeBusy = (): boolean => {
      const running = inflight.reduce((n, e) => n + (e.settled ? 0 : 1), 0);
      return running >= MAX_INFLIGHT || (running > 0 && this.store.preparing);
    };
    while (!this.#stopping) {
      let delay = this.pollMs;
      try {
        if (Date.now() - this.#lastRecover >= this.recoverEveryMs) await this.recover();
        await Promise.all([this.#retryReleases(), this.#expiry.tick(this.store, this.logger)]);
        const prepared = await this.#claimAndPrepare(storeBusy);
        try {
          await settle(MAX_INFLIGHT - 1);
        } catch (err) {
          if (prepared) await this.#releaseAll(prepared.claimed, 'dirty');
          throw err;
        }
        if (prepared) {
          const entry = { settled: false, result: Promise.resolve<unknown>(undefined) };
          entry.result = this.#commit(prepared).then(
            () => {
              entry.settled = true;
              return undefined;
            },
            (err: unknown) => {
              entry.settled = true;
              return err ?? new Error('apply failed');
            },
          );
          inflight.push(entry);
        }
        if (prepared) {
          // The store has a batch to work on: start the next one at once (#claimAndPrepare waits for logs while the store is busy).
          delay = 0;
          this.#watch.stop();
        } else {
          await settle(0);
          this.health.succeeded(); // nothing left to apply, and nothing failed
          this.#watch.start();
          await this.#idle();
        }
        if (prepared && prepared.unreadable > 0) throw new CountdError(ErrorCodes.IO_ERROR, `${prepared.unreadable} commit log(s) could not be read`);
        this.#failures = 0;
      } catch (err) {
        // An error of the preparation may leave batches in flight: let them finish first.
        await settleAll();
        this.#failures++;
        delay = Math.min(MAX_BACKOFF_MS, this.pollMs * 2 ** Math.min(this.#failures, 16));
        delay = await afterFailedApply(err, this.#failures, delay, this.#recovery);
      }
      if (delay > 0 && !this.#stopping) await this.#sleep(delay);
    }
    await settleAll();
  }

  /** Nothing more to claim: refresh the backlog gauge and wake drained() waiters if no dirty log is left. */
  async #idle(): Promise<void> {
    const now = Date.now();
    if (this.#drainWaiters.length === 0 && now - this.#lastStatus < STATUS_EVERY_MS) return;
    this.#lastStatus = now;
    const counts = await this.pool.counts();
    setPoolGauges(counts);
    if (counts.dirty === 0 && this.#unreleased.length === 0) {
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(this.#timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  /**
   * Claim dirty logs and sum them into one batch: CLAIM_CHUNK first, then,
   * while the store is still busy with the batch before (so it could not
   * start on this one anyway), more of them as they come dirty, GROW_CHUNK
   * at a time, up to maxLogs or the batch's key budget, and while the heap
   * is not under pressure (heapUnderPressure). While the store is busy and
   * no log is dirty yet, it polls every pollMs for the first ones: logs that
   * come dirty during an apply are summed during it, not after it (under a
   * steady load, waiting for the apply to finish first left the summing
   * thread idle and then the store idle while the next batch was summed).
   * So the store never waits for a big batch to be summed (the first batch
   * of a backlog goes after one chunk), and while it works the next batch
   * grows.
   */
  async #claimAndPrepare(storeBusy: () => boolean): Promise<Prepared | undefined> {
    // After a failure, one log per batch: a batch too big for the space left could never apply.
    const small = this.health.state !== 'applying';
    let want = small ? 1 : Math.min(this.heapPressure() ? GROW_CHUNK : CLAIM_CHUNK, this.maxLogs);
    let first = await this.#claim(want);
    while (first.length === 0 && storeBusy() && !this.#stopping) {
      await this.#sleep(this.pollMs);
      first = await this.#claim(want);
    }
    if (first.length === 0) return undefined;
    const maxKeys = this.pacer.limit();
    const prepared = await this.#prepare(first, maxKeys);
    let taken = first.length;
    while (!small && storeBusy() && taken < this.maxLogs && prepared.keys < maxKeys && prepared.deferred === 0 && !this.heapPressure() && !this.#stopping) {
      want = Math.min(GROW_CHUNK, this.maxLogs - taken);
      const earlier = prepared.claimed.length;
      let more: ClaimedLog[];
      try {
        more = await this.#claim(want);
        if (more.length > 0) await this.#prepare(more, maxKeys, prepared);
      } catch (err) {
        // #prepare released the new logs; the earlier ones of the batch are ours to release.
        await this.#releaseAll(prepared.claimed.slice(0, earlier), 'dirty');
        throw err;
      }
      if (more.length === 0) {
        // None dirty yet: the store is still busy, so wait for more rather than hand over a batch it cannot start.
        await this.#sleep(this.pollMs);
        continue;
      }
      taken += more.length;
    }
    try {
      prepared.batch = await this.summer.finish();
    } catch (err) {
      await this.#releaseAll(prepared.claimed, 'dirty');
      throw err;
    }
    return prepared;
  }

  /** claimDirty, and the backlog gauges from the counts its scan saw (fresh during a backlog, no extra I/O). */
  async #claim(want: number): Promise<ClaimedLog[]> {
    const claimed = await this.pool.claimDirty(want);
    if (this.pool.lastCounts) setPoolGauges(this.pool.lastCounts);
    return claimed;
  }

  /**
   * Read, verify and sum the claimed logs (into `into` if given) on the
   * summing thread. Logs that cannot be read are released dirty at once (one
   * bad log must not hold back the others). On any other error every log of
   * `claimed` is released dirty and the error thrown.
   */
  async #prepare(claimed: ClaimedLog[], maxKeys: number, into?: Prepared): Promise<Prepared> {
    const p = into ?? emptyPrepared();
    const unreadable: ClaimedLog[] = [];
    const deferred: ClaimedLog[] = [];
    try {
      if (into === undefined) {
        // A batch that creates or deletes keyspaces changes how later batches combine: sum those against its result.
        await this.#settingsBarrier;
        await this.summer.begin(this.store.operators(), this.store.windows());
      }
      const marks = await Promise.all(claimed.map((log) => this.store.getMark(appliedMarkName(log.index))));
      const summed = await this.summer.add(
        claimed.map((log, i) => ({ index: log.index, path: log.path, mark: marks[i] ?? null })),
        maxKeys,
      );
      p.keys = summed.keys;
      takeOutcomes(p, claimed, summed.logs, this.logger, { unreadable, deferred });
      this.producers.noteOutcomes(p.marks, summed.logs);
    } catch (err) {
      await this.#releaseAll(claimed, 'dirty');
      throw err;
    }
    await this.#releaseAll([...unreadable, ...deferred], 'dirty');
    p.unreadable += unreadable.length;
    p.deferred += deferred.length;
    return p;
  }

  /** ONE store.apply() for the prepared logs, then release them clean (quarantined: see work/prepared.ts). On failure they are released dirty. */
  async #commit(p: Prepared): Promise<void> {
    if (p.marks.length > 0) {
      try {
        const handed = performance.now();
        const applying = this.store.apply(this.countsElsewhere ? new IncrementBatch() : p.batch!, await this.producers.withProducerMarks(p.marks));
        if (!this.countsElsewhere && p.batch!.hasLifecycleOps) this.#settingsBarrier = applying.then(() => {}, () => {});
        // The store holds the batch while it needs it: not kept alive here during the write.
        p.batch = undefined;
        const result = await applying;
        this.pacer.record(result.keys, handed, performance.now());
        if (result.saturated > 0) this.logger.warn('counts saturated at the signed 64-bit range', { keys: result.saturated });
      } catch (err) {
        // Nothing was committed: put every log back for a later attempt.
        await this.#releaseAll(p.claimed, 'dirty');
        throw err;
      }
      this.health.succeeded();
      this.onApplied?.();
      metrics.applySeconds.observe(Number(process.hrtime.bigint() - p.started) / 1e9);
      metrics.framesApplied.inc(p.frames);
      if (p.salvagedFrames > 0) metrics.framesSalvaged.inc(p.salvagedFrames);
      metrics.logsApplied.inc(p.toApply.length);
      this.logger.debug('applied commit logs', { logs: p.toApply.map((l) => l.index).join(','), frames: p.frames, keys: p.keys });
    }
    for (const log of p.claimed) {
      const state = p.quarantine.has(log.index) ? 'quarantined' : 'clean';
      try {
        await this.pool.release(log, state);
      } catch (err) {
        this.logger.error('cannot release an applied commit log; will retry', { log: log.index, state, error: describe(err) });
        this.#unreleased.push({ log, state });
      }
    }
    if (p.quarantine.size > 0) {
      this.onApplied?.();
      await this.pool.counts().then(setPoolGauges, () => {});
    }
  }

  async #retryReleases(): Promise<void> {
    const pending = this.#unreleased.splice(0);
    for (const entry of pending) {
      try {
        await this.pool.release(entry.log, entry.state);
      } catch (err) {
        this.#unreleased.push(entry);
        throw err;
      }
    }
  }

  async #releaseAll(logs: ClaimedLog[], state: 'clean' | 'dirty'): Promise<void> {
    for (const log of logs) {
      try {
        await this.pool.release(log, state);
      } catch (err) {
        this.logger.error('cannot release a commit log', { log: log.index, state, error: describe(err) });
      }
    }
  }
}

function setPoolGauges(counts: PoolCounts): void {
  metrics.dirtyBacklogLogs.set(counts.dirty);
  metrics.quarantinedLogs.set(counts.quarantined);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
