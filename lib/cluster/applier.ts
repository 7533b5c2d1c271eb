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
import { CountdError, ErrorCodes } from '../errors.js';
import { metrics } from '../metrics.js';
import {
  clusterPositionMarkName,
  clusterWriterMarkName,
  decodeClusterPosition,
  decodeU64Mark,
  encodeClusterPosition,
  encodeU64Mark,
} from '../store/marks.js';
import { createWindow } from '../protocol/window-settings.js';
import { IncrementBatch, type Store } from '../store/store.js';
import type { Logger } from '../util/log.js';
import { decodeMessage, type PartitionMessage } from './message.js';
import { describe } from './nats.js';
import { HDR_FLOOR, STREAM, subjectOf } from './partition.js';
import { restoreBatch } from './restore.js';
import type { Snapshot } from './snapshot-format.js';
import type { Snapshots } from './snapshots.js';

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
/**
 * And at least this many times as long as the last apply took: the apply's
 * cost per key written is mostly fixed, so an apply that is slow (a loaded
 * store, many keyspaces) makes the next one bigger rather than the store
 * busy with applies all the time (BENCHMARKS.md, "Cluster").
 */
const APPLY_SPACING = 3;
/** But never more than this after the last apply started: the spacing adds to the visibility lag. */
const APPLY_SPACING_MAX_MS = 1000;
const APPLY_NOW_BYTES = 4 * 1024 * 1024;

interface Owned {
  epoch: number;
  stop: () => void;
  stopped: boolean;
  /** Restored from the latest snapshot if this database was behind it: only then applied. */
  ready: boolean;
  /** Delivered up to the stream's end since it became ready: only then snapshotted. */
  caughtUp: boolean;
  /** A purge marker said the stream holds nothing of p at or below this: a restore must reach it. */
  floor: number;
  /** Set by such a marker: what this database holds of p has a gap, so restore whatever its position. */
  mustRestore: boolean;
}

/** A purge marker past this database's position: the messages between were purged, a snapshot must fill the gap. */
class PurgedGap extends Error {}

/** A delivered message (`msg` undefined: a retry, a purge marker or a malformed message, only its position counts), or a restore. */
type Item = { p: number; m: JsMsg; msg: PartitionMessage | undefined } | { p: number; restore: Snapshot; stale: string[]; done: () => void };

/** What `countd status` shows of an owned partition (node.ts puts it with the heartbeat). */
export interface PartitionState {
  position: number;
  /** Messages of the partition stored after the last one delivered here. */
  pending: number;
  /** Seconds since the last applied message was stored, while messages are pending; 0 when caught up. */
  lag: number;
  ready: boolean;
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
  #queue: Item[] = [];
  readonly #pending = new Map<number, { pending: number; storedAt: number }>();
  /** Sequence of the last message with increments delivered, per partition (purge markers do not count). */
  readonly #dataSeq = new Map<number, number>();
  readonly #snapshots: Snapshots | undefined;
  #queuedBytes = 0;
  #applying: Promise<void> | undefined;
  #roomWaiters: Array<() => void> = [];
  #failed: ((err: unknown) => void) | undefined;
  #closed = false;
  #closing = false;
  /** When the last apply started (performance.now()), and the timer of the next when it waits for APPLY_INTERVAL_MS. */
  #lastApply = -Infinity;
  /** How long the last apply took (ms). */
  #lastApplyMs = 0;
  #paced: NodeJS.Timeout | undefined;

  constructor(js: JetStreamClient, store: Store, logger: Logger, onFatal: (err: unknown) => void, snapshots?: Snapshots) {
    this.#js = js;
    this.#snapshots = snapshots;
    this.#store = store;
    this.#logger = logger;
    this.#failed = onFatal;
  }

  /** The partitions applied here, with their positions. */
  positions(): Map<number, number> {
    return new Map([...this.#owned.keys()].map((p) => [p, this.#position.get(p) ?? 0]));
  }

  /** The owned partitions restored and applying, with their lease epochs (what may be snapshotted). */
  ready(): Array<{ p: number; epoch: number; dataSeq: number | undefined }> {
    return [...this.#owned].filter(([, o]) => o.ready && o.caughtUp).map(([p, o]) => ({ p, epoch: o.epoch, dataSeq: this.#dataSeq.get(p) }));
  }

  /** Whether partition p is owned here, restored (if it had to be) and delivered once up to the stream's end: its reads are answered here. */
  serving(p: number): boolean {
    const o = this.#owned.get(p);
    return o !== undefined && o.ready && o.caughtUp;
  }

  /** Position, pending messages and lag of every owned partition. */
  states(): Map<number, PartitionState> {
    const now = Date.now();
    return new Map(
      [...this.#owned].map(([p, o]) => {
        const pend = this.#pending.get(p);
        const lag = pend && pend.pending > 0 ? Math.max(0, now - pend.storedAt) / 1000 : 0;
        return [p, { position: this.#position.get(p) ?? 0, pending: pend?.pending ?? 0, lag, ready: o.ready }];
      }),
    );
  }

  /** Start applying partition p (this node took its lease with revision `epoch`). */
  async own(p: number, epoch: number): Promise<void> {
    if (this.#closed) return;
    const had = this.#owned.get(p);
    if (had) {
      had.epoch = epoch;
      return;
    }
    const owned: Owned = { epoch, stop: () => {}, stopped: false, ready: false, caughtUp: false, floor: 0, mustRestore: false };
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
      let from = this.#position.get(p)! + 1;
      try {
        if (!owned.ready) {
          await this.#restoreIfBehind(p, owned);
          owned.ready = true;
          from = this.#position.get(p)! + 1;
        }
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
            await this.#deliver(p, m, owned);
          }
          // Nothing came: idle, or the consumer went with its nats-server (then no one
          // answers the pulls and no error comes). Its info tells; if it fails, start again.
          if (got === 0 && !owned.stopped) {
            await consumer.info();
            owned.caughtUp = true;
          }
        }
      } catch (err) {
        if (err instanceof PurgedGap) {
          owned.ready = false;
          owned.mustRestore = true;
          owned.caughtUp = false;
          this.#logger.warn('the stream was purged past this database; restoring the partition from its snapshot', { partition: p, position: this.#position.get(p), floor: owned.floor });
          continue;
        }
        if (!owned.stopped && !this.#closed) this.#logger.warn('partition consumer failed; creating it again', { partition: p, from, error: describe(err) });
      }
      // Back off, with jitter: after a nats-server loss every partition of every node does this at once.
      failures = Math.min(failures + 1, 6);
      if (!owned.stopped && !this.#closed) await new Promise((r) => setTimeout(r, 250 * 2 ** failures * (0.5 + Math.random())));
    }
  }

  /**
   * If the latest snapshot of p is past this database's position, restore
   * it (through the apply queue, so what was queued before lands first) and
   * go on from its position: the stream below it may be purged.
   */
  async #restoreIfBehind(p: number, owned: Owned): Promise<void> {
    const latest = await this.#snapshots?.latest(p);
    if (owned.mustRestore) {
      // A marker promised a snapshot at or past `floor`: one not seen yet is a read behind the truth, not an absence.
      if ((latest?.position ?? 0) < owned.floor) {
        throw new CountdError(ErrorCodes.CLUSTER, `partition ${p}: the stream is purged up to ${owned.floor}, and no snapshot that far is visible yet (latest ${latest?.position ?? 'none'})`);
      }
    } else if (!latest || latest.position <= this.#position.get(p)!) {
      return;
    }
    const started = Date.now();
    const snap = await this.#snapshots!.load(p);
    // A read answered by a server that is behind could hand an older snapshot than `latest`: the stream may be purged past it.
    if (snap.position < latest!.position) throw new CountdError(ErrorCodes.CLUSTER, `snapshot of partition ${p} read at position ${snap.position}, older than its latest ${latest!.position}`);
    if (owned.stopped || this.#closed) return;
    await new Promise<void>((done) => {
      // Writers this process saw in p that the snapshot does not know came from a gap's wrong applies: their watermarks go to 0.
      const prefix = `${p}/`;
      const known = new Set(snap.writers.map((w) => w.writer));
      const stale = [...this.#watermark.keys()].filter((k) => k.startsWith(prefix) && !known.has(k.slice(prefix.length))).map((k) => k.slice(prefix.length));
      this.#queue.push({ p, restore: snap, stale, done });
      this.#kick();
    });
    owned.mustRestore = false;
    this.#position.set(p, snap.position);
    for (const key of [...this.#watermark.keys()]) if (key.startsWith(`${p}/`)) this.#watermark.delete(key);
    metrics.clusterRestores.inc();
    this.#logger.info('partition restored from its snapshot', { partition: p, position: snap.position, keyspaces: snap.keyspaces.length, bytes: latest!.bytes, ms: Date.now() - started });
  }

  /** Stop applying partition p (its lease went to another node). What was delivered is still applied here. */
  disown(p: number): void {
    const owned = this.#owned.get(p);
    if (!owned) return;
    this.#owned.delete(p);
    owned.stopped = true;
    owned.stop();
    metrics.clusterPending.remove({ partition: String(p) });
    metrics.clusterPartitionLag.remove({ partition: String(p) });
    this.#pending.delete(p);
    this.#logger.info('stopped applying partition', { partition: p });
  }

  async #deliver(p: number, m: JsMsg, owned: Owned): Promise<void> {
    if (m.seq <= (this.#position.get(p) ?? 0)) return;
    const floor = Number(m.headers?.get(HDR_FLOOR) ?? 0);
    if (floor > (this.#position.get(p) ?? 0)) {
      owned.floor = floor;
      throw new PurgedGap(`partition ${p} purged up to ${floor}`);
    }
    if (m.info.pending === 0) owned.caughtUp = true;
    // A purge marker (a Countd-Floor header, no body) carries no increments.
    const msg = floor > 0 ? undefined : this.#decode(p, m);
    if (msg !== undefined) this.#dataSeq.set(p, m.seq);
    const wkey = msg === undefined ? '' : `${p}/${msg.writer}`;
    let wm = msg === undefined ? 0 : this.#watermark.get(wkey);
    if (wm === undefined) {
      wm = decodeU64Mark(await this.#store.getMark(clusterWriterMarkName(p, msg!.writer)));
      this.#watermark.set(wkey, Math.max(wm, this.#watermark.get(wkey) ?? 0));
      wm = this.#watermark.get(wkey)!;
    }
    metrics.clusterPending.set({ partition: String(p) }, m.info.pending);
    this.#pending.set(p, { pending: m.info.pending, storedAt: m.info.timestampNanos / 1e6 });
    this.#position.set(p, m.seq);
    if (msg === undefined || msg.seq <= wm) {
      if (msg !== undefined) metrics.clusterDuplicates.inc();
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
    const wait = this.#lastApply + Math.max(APPLY_INTERVAL_MS, Math.min(APPLY_SPACING_MAX_MS, APPLY_SPACING * this.#lastApplyMs)) - performance.now();
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
    const started = this.#lastApply;
    this.#applying = this.#apply(items).then(
      () => {
        this.#lastApplyMs = performance.now() - started;
        this.#applying = undefined;
        this.#kick();
      },
      (err) => {
        this.#applying = undefined;
        this.#fatal(err);
      },
    );
  }

  /** The items in order: runs of messages in one apply each, a restore alone. */
  async #apply(items: Item[]): Promise<void> {
    let run: Array<Extract<Item, { m: JsMsg }>> = [];
    for (const item of items) {
      if (!('restore' in item)) {
        run.push(item);
        continue;
      }
      if (run.length > 0) await this.#applyMessages(run);
      run = [];
      const { batch, marks } = await restoreBatch(this.#store, item.restore, this.#owned.get(item.p)?.epoch ?? 0, item.stale);
      await this.#store.apply(batch, marks);
      item.done();
    }
    if (run.length > 0) await this.#applyMessages(run);
  }

  /** ONE atomic apply: the counts of `items`, each partition's position and each writer's watermark. */
  async #applyMessages(items: Array<Extract<Item, { m: JsMsg }>>): Promise<void> {
    const batch = new IncrementBatch(this.#store.operators(), this.#store.windows());
    const positions = new Map<number, number>();
    const watermarks = new Map<string, { p: number; writer: string; seq: number }>();
    const now = Date.now();
    for (const { p, m, msg } of items) {
      positions.set(p, m.seq);
      if (msg === undefined) continue;
      // A windowed keyspace's period is that of the time JetStream stored the message: the same on every replay.
      batch.writtenAt = Math.floor(m.info.timestampNanos / 1e6);
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
    // A create's key bytes, if any, are settings bytes 1 … 15 (docs/commit-log-format.md): the tie rule and the window, as the worker reads them.
    else if (op === OP_CREATE_KEYSPACE) batch.createKeyspace(ks, Number(value), keyLen > 0 ? key[0]! : 0, createWindow(key, 0, keyLen) ?? undefined);
  });
}
