// Partition snapshots in the JetStream Object Store (docs/cluster.md,
// "Snapshots and purge"; bytes: docs/cluster-snapshot-format.md). The owner
// of a partition snapshots it now and then: its keyspaces' records, its
// applied stream position and its writers' watermarks, all read from ONE
// LevelDB snapshot (Store#exportKeyspaces), so they describe one point of the
// stream. A node that gains a partition and is behind the latest snapshot
// restores from it (applier.ts) and replays only what follows. Once a
// snapshot at position S is stored (R3, like the stream), and this node still
// holds the partition's lease, the partition's messages at or below S are
// purged from the stream: nothing a restore needs is below S, because every
// restore starts from the latest snapshot. The purge lags one round (it
// removes what the snapshot of the round BEFORE covers), so a restore that
// read the previous snapshot just before a new one replaced it still finds
// every message after it.

import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import { CountdError, ErrorCodes } from '../errors.js';
import { metrics } from '../metrics.js';
import { clusterPositionMarkName, decodeClusterPosition, decodeU64Mark } from '../store/marks.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../util/log.js';
import { describe } from './nats.js';
import { HDR_FLOOR, partitionOfStored, SNAPSHOTS_BUCKET, STREAM, subjectOf } from './partition.js';
import { decodeSnapshot, encodeSnapshot, type Snapshot } from './snapshot-format.js';

/** The object holding partition p's latest snapshot. */
export function snapshotName(p: number): string {
  return `p${p}`;
}

/** Metadata of a snapshot object: its position, readable without fetching it. */
const META_POSITION = 'position';

export interface SnapshotInfo {
  position: number;
  bytes: number;
}


export class Snapshots {
  readonly #os: ObjectStore;
  readonly #jsm: JetStreamManager;
  readonly #js: JetStreamClient;
  readonly #store: Store;
  readonly #logger: Logger;
  /** Position of the last snapshot this node stored, per partition. */
  readonly #taken = new Map<number, number>();
  /** Position of the snapshot stored by the previous round, per partition: the purge floor of this round. */
  readonly #previous = new Map<number, number>();
  /** Stream purged below this + 1, per partition. */
  readonly #purged = new Map<number, number>();

  readonly #purge: boolean;

  constructor(os: ObjectStore, js: JetStreamClient, jsm: JetStreamManager, store: Store, logger: Logger, purge = true) {
    this.#purge = purge;
    this.#os = os;
    this.#js = js;
    this.#jsm = jsm;
    this.#store = store;
    this.#logger = logger;
  }

  /** The latest snapshot of partition p (its position), or undefined if none was stored. */
  async latest(p: number): Promise<SnapshotInfo | undefined> {
    const info = await this.#os.info(snapshotName(p));
    if (!info || info.deleted) return undefined;
    const position = Number(info.metadata?.[META_POSITION] ?? NaN);
    if (!Number.isSafeInteger(position) || position < 0) {
      throw new CountdError(ErrorCodes.CORRUPTION, `snapshot ${snapshotName(p)} has no valid position in its metadata (${JSON.stringify(info.metadata ?? {})})`);
    }
    return { position, bytes: info.size };
  }

  /**
   * Partition p's latest snapshot, decoded; COUNTD_CORRUPTION if it is damaged or not p's.
   * Its chunks are read one request each from the stream's leader (STREAM.MSG.GET, next message of the
   * object's chunk subject), not through the Object Store's get(): that one reads through a push consumer,
   * which went silent on nats-server 2.9.10 (a node taking every partition waited for ever). A request
   * times out; an object replaced meanwhile (its chunks purged) is COUNTD_CLUSTER, and the caller tries again.
   */
  async load(p: number): Promise<Snapshot> {
    const blob = await this.#read(snapshotName(p));
    if (blob === null) throw new CountdError(ErrorCodes.CLUSTER, `snapshot ${snapshotName(p)} vanished while being read`);
    const snap = decodeSnapshot(Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength));
    if (snap.partition !== p) throw new CountdError(ErrorCodes.CORRUPTION, `snapshot ${snapshotName(p)} holds partition ${snap.partition}`);
    return snap;
  }

  /** The bytes of object `name`, chunk after chunk; null when there is none. */
  async #read(name: string): Promise<Uint8Array | null> {
    const info = await this.#os.info(name);
    if (!info || info.deleted) return null;
    const subject = `$O.${SNAPSHOTS_BUCKET}.C.${info.nuid}`;
    const parts: Uint8Array[] = [];
    let bytes = 0;
    let seq = 0;
    while (bytes < info.size) {
      // next_by_subj: the first message of the subject at or after seq (the server's STREAM.MSG.GET since 2.9).
      const m = await this.#jsm.streams.getMessage(`OBJ_${SNAPSHOTS_BUCKET}`, { seq: seq + 1, next_by_subj: subject } as unknown as { seq: number });
      if (m === null || m.seq <= seq) throw new CountdError(ErrorCodes.CLUSTER, `snapshot ${name} was replaced while being read (${bytes} of ${info.size} bytes read)`);
      parts.push(m.data);
      bytes += m.data.length;
      seq = m.seq;
    }
    if (bytes !== info.size) throw new CountdError(ErrorCodes.CLUSTER, `snapshot ${name}: ${bytes} bytes read, its info says ${info.size}`);
    return Buffer.concat(parts);
  }

  /**
   * Snapshot partition p if its applied position moved since the last one,
   * then, if `stillOwner()` (the lease is unchanged), purge the stream up to
   * the snapshot of the previous round. Returns the position of the snapshot
   * taken, or undefined when nothing was taken.
   */
  async take(p: number, stillOwner: () => Promise<boolean>, dataSeq?: number): Promise<number | undefined> {
    const floor = this.#previous.get(p) ?? 0;
    // Only increments make a new snapshot worth it (a purge marker moves the position too).
    const taken = dataSeq !== undefined && dataSeq <= (this.#taken.get(p) ?? 0) ? undefined : await this.#snapshot(p);
    this.#previous.set(p, this.#taken.get(p) ?? 0);
    if (this.#purge && floor > (this.#purged.get(p) ?? 0) && (await stillOwner())) {
      // The marker first, past the floor: a node replaying from below the floor meets it and
      // restores, even if a read of the snapshots answers with an older state than the truth.
      const h = headers();
      h.set(HDR_FLOOR, String(floor));
      await this.#js.publish(subjectOf(p), new Uint8Array(0), { headers: h });
      const purged = await this.#jsm.streams.purge(STREAM, { filter: subjectOf(p), seq: floor + 1 });
      this.#purged.set(p, floor);
      if (purged.purged > 0) this.#logger.debug('stream purged below a snapshot', { partition: p, below: floor + 1, messages: purged.purged });
    }
    return taken;
  }

  async #snapshot(p: number): Promise<number | undefined> {
    const started = performance.now();
    const items = this.#store.exportKeyspaces((name) => partitionOfStored(name) === p, 'cluster/');
    const first = await items.next();
    const marks = first.done === true || first.value.type !== 'marks' ? [] : first.value.marks;
    const { seq: position, epoch } = decodeClusterPosition(marks.find((m) => m.name === clusterPositionMarkName(p))?.value);
    if (position === 0 || position <= (this.#taken.get(p) ?? 0)) {
      await items.return(undefined);
      return undefined;
    }
    const writerPrefix = `cluster/w/${p}/`;
    const writers = marks.filter((m) => m.name.startsWith(writerPrefix)).map((m) => ({ writer: m.name.slice(writerPrefix.length), seq: decodeU64Mark(m.value) }));
    // `items` goes on from its first item (the marks) to the keyspaces; returning it closes its LevelDB snapshot.
    const bytes = encodeSnapshot({ partition: p, position, epoch, takenAt: Date.now() }, writers, items);
    let info;
    try {
      info = await this.#os.put({ name: snapshotName(p), metadata: { [META_POSITION]: String(position) } }, toStream(bytes));
    } finally {
      await items.return(undefined);
    }
    this.#taken.set(p, position);
    metrics.clusterSnapshotPosition.set({ partition: String(p) }, position);
    metrics.clusterSnapshotSeconds.observe((performance.now() - started) / 1000);
    this.#logger.debug('partition snapshot stored', { partition: p, position, bytes: info.size });
    return position;
  }

  /** Take a snapshot of every partition in `owned` that changed; a failure is logged, the others go on. */
  async round(owned: Array<{ p: number; stillOwner: () => Promise<boolean>; dataSeq?: number | undefined }>): Promise<void> {
    for (const { p, stillOwner, dataSeq } of owned) {
      try {
        await this.take(p, stillOwner, dataSeq);
      } catch (err) {
        this.#logger.warn('partition snapshot failed; the next round tries again', { partition: p, error: describe(err) });
      }
    }
  }

  /** Forget what was taken for p (it went to another node: the next owner's snapshots take over). */
  forget(p: number): void {
    this.#taken.delete(p);
    this.#previous.delete(p);
    this.#purged.delete(p);
  }
}

function toStream(chunks: AsyncGenerator<Buffer>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await chunks.next();
        if (r.done === true) controller.close();
        else controller.enqueue(r.value);
      } catch (err) {
        controller.error(err);
      }
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
}
