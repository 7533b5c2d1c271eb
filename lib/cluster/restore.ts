// A partition restored from its snapshot (docs/cluster.md, "Snapshots and
// purge"), as ONE atomic Store#apply: every keyspace of the partition this
// database holds is deleted (what an earlier ownership left is stale), the
// snapshot's keyspaces are created with their operator and their keys set to
// the snapshot's counts, and the partition's position and its writers'
// watermarks become the snapshot's. A crash before the batch leaves the old
// state and position (the next owner restores again); after it, the new.

import { clusterPositionMarkName, clusterWriterMarkName, encodeClusterPosition, encodeU64Mark } from '../store/marks.js';
import { IncrementBatch, type Mark, type Store } from '../store/store.js';
import { partitionOf } from './partition.js';
import type { Snapshot } from './snapshot-format.js';

/** `staleWriters`: writers whose watermark in p this database holds and the snapshot does not: reset to 0. */
export async function restoreBatch(store: Store, snap: Snapshot, epoch: number, staleWriters: string[] = []): Promise<{ batch: IncrementBatch; marks: Mark[] }> {
  const p = snap.partition;
  const batch = new IncrementBatch(store.operators());
  for (const ks of await store.keyspaces()) if (partitionOf(ks.name) === p) batch.deleteKeyspace(ks.name);
  for (const ks of store.declaredKeyspaces()) if (partitionOf(ks.name) === p) batch.deleteKeyspace(ks.name);
  for (const ks of snap.keyspaces) {
    // Byte 0 of the settings value is the operator (docs/storage-format.md, settings-value).
    const operator = ks.settings?.[0] ?? 0;
    if (operator !== 0) batch.createKeyspace(ks.name, operator);
    else batch.deleteKeyspace(ks.name);
    for (let i = 0; i < ks.keys.length; i++) batch.set(ks.name, ks.keys[i]!, ks.counts[i]!);
  }
  const marks: Mark[] = [
    { name: clusterPositionMarkName(p), value: encodeClusterPosition(snap.position, epoch) },
    ...snap.writers.map((w) => ({ name: clusterWriterMarkName(p, w.writer), value: encodeU64Mark(w.seq) })),
    ...staleWriters.map((writer) => ({ name: clusterWriterMarkName(p, writer), value: encodeU64Mark(0) })),
  ];
  return { batch, marks };
}
