// The owner's side of a partition (docs/cluster.md, "Apply exactly once"):
// for every partition this node owns, an ordered JetStream consumer delivers
// the partition's messages from the position after the one in the database;
// their increments are summed into ONE store.apply() together with the
// partition's position mark and the writers' watermarks (lib/store/marks.ts),
// so a crash leaves counts and positions consistent and a restart resumes
// exactly where the database is. A message whose per-writer sequence is at
// or below that writer's watermark is a retry of an applied one: dropped.

import { DeliverPolicy, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { forEachEntry } from '../commitlog/format.js';
import { metrics } from '../metrics.js';
import {
  clusterPositionMarkName,
  clusterWriterMarkName,
  decodeClusterPosition,
  decodeU64Mark,
  encodeClusterPosition,
  encodeU64Mark,
} from '../store/marks.js';
import { IncrementBatch, type Store } from '../store/store.js';
import type { Logger } from '../util/log.js';
import { describe } from './nats.js';
import { HDR_SEQ, HDR_WRITER, STREAM, subjectOf } from './partition.js';

/** How long one pull waits for messages. */
const FETCH_EXPIRES_MS = 3000;
/** Bytes of delivered messages waiting for an apply before the consumers pause. */
const QUEUE_HIGH_WATER = 16 * 1024 * 1024;

interface Owned {
  epoch: number;
  stop: () => void;
  stopped: boolean;
}

export class Applier {
  readonly #js: JetStreamClient;
  readonly #store: Store;
  readonly #logger: Logger;
  readonly #owned = new Map<number, Owned>();
  /** Applied (or queued) stream position per partition, loaded from the database on first ownership. */
  readonly #position = new Map<number, number>();
  /** Watermark per "<partition>/<writer>", as applied or queued. */
  readonly #watermark = new Map<string, number>();
  #queue: Array<{ p: number; m: JsMsg; writer: string; seq: number }> = [];
  #queuedBytes = 0;
  #applying: Promise<void> | undefined;
  #roomWaiters: Array<() => void> = [];
  #failed: ((err: unknown) => void) | undefined;
  #closed = false;

  constructor(js: JetStreamClient, store: Store, logger: Logger, onFatal: (err: unknown) => void) {
    this.#js = js;
    this.#store = store;
    this.#logger = logger;
    this.#failed = onFatal;
  }

  /** The partitions applied here, with their positions. */
  positions(): Map<number, number> {
    return new Map([...this.#owned.keys()].map((p) => [p, this.#position.get(p) ?? 0]));
  }

  /** Start applying partition p (this node took its lease with revision `epoch`). */
  async own(p: number, epoch: number): Promise<void> {
    if (this.#closed) return;
    const had = this.#owned.get(p);
    if (had) {
      had.epoch = epoch;
      return;
    }
    const owned: Owned = { epoch, stop: () => {}, stopped: false };
    this.#owned.set(p, owned);
    if (!this.#position.has(p)) this.#position.set(p, decodeClusterPosition(await this.#store.getMark(clusterPositionMarkName(p))).seq);
    void this.#run(p, owned);
  }

  /**
   * Deliver partition p from the position after the applied one until it is
   * disowned. A consumer that fails or ends (a nats-server lost, leaders
   * re-elected) is created again from the position reached.
   */
  async #run(p: number, owned: Owned): Promise<void> {
    let failures = 0;
    while (!owned.stopped && !this.#closed) {
      const from = this.#position.get(p)! + 1;
      try {
        const consumer = await this.#js.consumers.get(STREAM, { filter_subjects: subjectOf(p), deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from });
        this.#logger.info('applying partition', { partition: p, from, epoch: owned.epoch });
        // Pull requests of their own (not consume()): each expires and is issued again, so a
        // connection that moved to another nats-server, or a consumer lost with its server,
        // does not leave the partition waiting.
        while (!owned.stopped && !this.#closed) {
          const batch = await consumer.fetch({ max_messages: 512, expires: FETCH_EXPIRES_MS });
          owned.stop = () => batch.stop();
          let got = 0;
          for await (const m of batch) {
            if (owned.stopped) break;
            got++;
            failures = 0;
            await this.#deliver(p, m);
          }
          // Nothing came: idle, or the consumer went with its nats-server (then no one
          // answers the pulls and no error comes). Its info tells; if it fails, start again.
          if (got === 0 && !owned.stopped) await consumer.info();
        }
      } catch (err) {
        if (!owned.stopped && !this.#closed) this.#logger.warn('partition consumer failed; creating it again', { partition: p, from, error: describe(err) });
      }
      // Back off, with jitter: after a nats-server loss every partition of every node does this at once.
      failures = Math.min(failures + 1, 6);
      if (!owned.stopped && !this.#closed) await new Promise((r) => setTimeout(r, 250 * 2 ** failures * (0.5 + Math.random())));
    }
  }

  /** Stop applying partition p (its lease went to another node). What was delivered is still applied here. */
  disown(p: number): void {
    const owned = this.#owned.get(p);
    if (!owned) return;
    this.#owned.delete(p);
    owned.stopped = true;
    owned.stop();
    metrics.clusterPending.remove({ partition: String(p) });
    this.#logger.info('stopped applying partition', { partition: p });
  }

  async #deliver(p: number, m: JsMsg): Promise<void> {
    const writer = m.headers?.get(HDR_WRITER) ?? '';
    const seq = Number(m.headers?.get(HDR_SEQ) ?? 0);
    if (m.seq <= (this.#position.get(p) ?? 0)) return;
    const wkey = `${p}/${writer}`;
    let wm = this.#watermark.get(wkey);
    if (wm === undefined) {
      wm = decodeU64Mark(await this.#store.getMark(clusterWriterMarkName(p, writer)));
      this.#watermark.set(wkey, Math.max(wm, this.#watermark.get(wkey) ?? 0));
      wm = this.#watermark.get(wkey)!;
    }
    metrics.clusterPending.set({ partition: String(p) }, m.info.pending);
    this.#position.set(p, m.seq);
    if (seq <= wm) {
      metrics.clusterDuplicates.inc();
      this.#queue.push({ p, m, writer: '', seq: 0 });
    } else {
      this.#watermark.set(wkey, seq);
      this.#queue.push({ p, m, writer, seq });
      this.#queuedBytes += m.data.length;
    }
    this.#kick();
    if (this.#queuedBytes > QUEUE_HIGH_WATER) await new Promise<void>((r) => this.#roomWaiters.push(r));
  }

  #kick(): void {
    if (this.#applying || this.#queue.length === 0 || this.#closed) return;
    const items = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const w of waiters) w();
    this.#applying = this.#apply(items).then(
      () => {
        this.#applying = undefined;
        this.#kick();
      },
      (err) => {
        this.#applying = undefined;
        this.#fatal(err);
      },
    );
  }

  /** ONE atomic apply: the counts of `items`, each partition's position and each writer's watermark. */
  async #apply(items: Array<{ p: number; m: JsMsg; writer: string; seq: number }>): Promise<void> {
    const batch = new IncrementBatch();
    const positions = new Map<number, number>();
    const watermarks = new Map<string, { p: number; writer: string; seq: number }>();
    const now = Date.now();
    for (const { p, m, writer, seq } of items) {
      positions.set(p, m.seq);
      if (writer === '') continue;
      forEachEntry(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength), (inc, ks, key) => batch.add(Buffer.from(ks), Buffer.from(key), inc));
      watermarks.set(`${p}/${writer}`, { p, writer, seq });
      metrics.clusterLagSeconds.observe(Math.max(0, now - m.info.timestampNanos / 1e6) / 1000);
    }
    const marks = [
      ...[...positions].map(([p, seq]) => ({ name: clusterPositionMarkName(p), value: encodeClusterPosition(seq, this.#owned.get(p)?.epoch ?? 0) })),
      ...[...watermarks.values()].map((w) => ({ name: clusterWriterMarkName(w.p, w.writer), value: encodeU64Mark(w.seq) })),
    ];
    await this.#store.apply(batch, marks);
    for (const [p, seq] of positions) metrics.clusterPosition.set({ partition: String(p) }, seq);
  }

  #fatal(err: unknown): void {
    if (this.#closed) return;
    this.#logger.error('cluster apply failed; the store process stops and restarts from the positions in its database', { error: describe(err) });
    const f = this.#failed;
    this.#failed = undefined;
    this.#closed = true;
    f?.(err);
  }

  /** Stop every consumer and wait for the apply in flight (and what is queued) to be written. */
  async close(): Promise<void> {
    for (const p of [...this.#owned.keys()]) this.disown(p);
    await this.#settle();
    this.#kick();
    await this.#settle();
    this.#closed = true;
  }

  async #settle(): Promise<void> {
    for (let a = this.#applying; a !== undefined; a = this.#applying) await a.catch(() => {});
  }
}
