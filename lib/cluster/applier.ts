// The owner's side of a partition (docs/cluster.md, "Apply exactly once"):
// for every partition this node owns, an ordered JetStream consumer delivers
// the partition's messages from the position after the one in the database;
// their increments are summed into ONE store.apply() together with the
// partition's position mark and the writers' watermarks (lib/store/marks.ts),
// so a crash leaves counts and positions consistent and a restart resumes
// exactly where the database is. A message whose per-writer sequence is at
// or below that writer's watermark is a retry of an applied one: dropped.
// Op entries (sets, deletes, creates) are applied in the stream's order, which
// is each connection's order (publisher.ts): one IncrementBatch keeps it.

import { DeliverPolicy, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { OP_CREATE_KEYSPACE, OP_DELETE_KEY, OP_DELETE_KEYSPACE, OP_ENTRY_FIXED_SIZE, OP_INCREMENT, OP_SET, RECORD_OPS, forEachEntry, forEachOpAt } from '../commitlog/format.js';
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
import { decodeMessage, type PartitionMessage } from './message.js';
import { describe } from './nats.js';
import { STREAM, subjectOf } from './partition.js';

/** How long one pull waits for messages. */
const FETCH_EXPIRES_MS = 3000;
/** Bytes of delivered messages waiting for an apply before the consumers pause. */
const QUEUE_HIGH_WATER = 16 * 1024 * 1024;
/**
 * An apply starts at most this long after the previous one started, unless
 * APPLY_NOW_BYTES are queued: a bigger apply writes each key once for many
 * increments (the worker sizes its batches the same way), where an apply
 * per delivery wrote nearly one key per increment and tripled the store's
 * CPU per increment (BENCHMARKS.md, "Cluster"). It bounds what it adds to the
 * visibility lag.
 */
const APPLY_INTERVAL_MS = 250;
const APPLY_NOW_BYTES = 4 * 1024 * 1024;

/** A delivered message waiting for the apply; `msg` undefined: a retry (or a malformed message) dropped, only its position counts. */
interface Queued {
  p: number;
  m: JsMsg;
  msg: PartitionMessage | undefined;
}

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
  #queue: Queued[] = [];
  #queuedBytes = 0;
  #applying: Promise<void> | undefined;
  #roomWaiters: Array<() => void> = [];
  #failed: ((err: unknown) => void) | undefined;
  #closed = false;
  #closing = false;
  /** When the last apply started (performance.now()), and the timer of the next when it waits for APPLY_INTERVAL_MS. */
  #lastApply = -Infinity;
  #paced: NodeJS.Timeout | undefined;

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
    if (m.seq <= (this.#position.get(p) ?? 0)) return;
    const msg = this.#decode(p, m);
    metrics.clusterPending.set({ partition: String(p) }, m.info.pending);
    this.#position.set(p, m.seq);
    if (msg === undefined) {
      this.#queue.push({ p, m, msg });
      this.#kick();
      return;
    }
    const wkey = `${p}/${msg.writer}`;
    let wm = this.#watermark.get(wkey);
    if (wm === undefined) {
      wm = decodeU64Mark(await this.#store.getMark(clusterWriterMarkName(p, msg.writer)));
      this.#watermark.set(wkey, Math.max(wm, this.#watermark.get(wkey) ?? 0));
      wm = this.#watermark.get(wkey)!;
    }
    if (msg.seq <= wm) {
      metrics.clusterDuplicates.inc();
      this.#queue.push({ p, m, msg: undefined });
    } else {
      // A writer's sequences in a partition are 1, 2, 3, ...: a gap is a message that never
      // reached the stream, legitimately only when its publish failed (its frames unanswered).
      if (msg.seq > wm + 1) this.#logger.warn('writer sequence gap in a partition', { partition: p, writer: msg.writer, after: wm, got: msg.seq, streamSeq: m.seq });
      this.#watermark.set(wkey, msg.seq);
      this.#queue.push({ p, m, msg });
      this.#queuedBytes += m.data.length;
    }
    this.#kick();
    if (this.#queuedBytes > QUEUE_HIGH_WATER) await new Promise<void>((r) => this.#roomWaiters.push(r));
  }

  /** The message, or undefined when it is malformed (reported with its bytes, and skipped). */
  #decode(p: number, m: JsMsg): PartitionMessage | undefined {
    const body = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    try {
      return decodeMessage(body, this.#store.sizes);
    } catch (err) {
      // A version this node cannot read must not be skipped: stop, and restart (upgraded) from here.
      if ((err as { code?: string }).code !== 'COUNTD_CORRUPTION') throw err;
      this.#logger.error('malformed partition message dropped', { partition: p, streamSeq: m.seq, bytesDropped: body.length, error: describe(err) });
      return undefined;
    }
  }

  #kick(): void {
    if (this.#applying || this.#queue.length === 0 || this.#closed || this.#paced !== undefined) return;
    const wait = this.#lastApply + APPLY_INTERVAL_MS - performance.now();
    if (wait > 0 && this.#queuedBytes < APPLY_NOW_BYTES && !this.#closing) {
      this.#paced = setTimeout(() => {
        this.#paced = undefined;
        this.#kick();
      }, wait);
      return;
    }
    this.#lastApply = performance.now();
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
  async #apply(items: Queued[]): Promise<void> {
    const batch = new IncrementBatch(this.#store.operators());
    const positions = new Map<number, number>();
    const watermarks = new Map<string, { p: number; writer: string; seq: number }>();
    const now = Date.now();
    for (const { p, m, msg } of items) {
      positions.set(p, m.seq);
      if (msg === undefined) continue;
      if (msg.type === RECORD_OPS) addOps(batch, msg.entries);
      else forEachEntry(msg.entries, (inc, ks, key) => batch.add(ks, key, inc));
      watermarks.set(`${p}/${msg.writer}`, { p, writer: msg.writer, seq: msg.seq });
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
    this.#closing = true;
    clearTimeout(this.#paced);
    this.#paced = undefined;
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

/** The op entries of an OPS payload into `batch`, in order (IncrementBatch keeps a set or delete after what came before it). */
function addOps(batch: IncrementBatch, payload: Buffer): void {
  forEachOpAt(payload, (at, op, ksLen, keyLen) => {
    const value = payload.readBigInt64LE(at + 1);
    // Views: IncrementBatch copies what it keeps.
    const ks = payload.subarray(at + OP_ENTRY_FIXED_SIZE, at + OP_ENTRY_FIXED_SIZE + ksLen);
    const key = payload.subarray(at + OP_ENTRY_FIXED_SIZE + ksLen, at + OP_ENTRY_FIXED_SIZE + ksLen + keyLen);
    if (op === OP_INCREMENT) batch.add(ks, key, value);
    else if (op === OP_SET) batch.set(ks, key, value);
    else if (op === OP_DELETE_KEY) batch.deleteKey(ks, key);
    else if (op === OP_DELETE_KEYSPACE) batch.deleteKeyspace(ks);
    else if (op === OP_CREATE_KEYSPACE) batch.createKeyspace(ks, Number(value));
  });
}
