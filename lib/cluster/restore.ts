// A partition restored from its snapshot (docs/cluster.md, "Snapshots and
// purge"), as ONE atomic Store#apply: every keyspace of the partition this
// database holds is deleted (what an earlier ownership left is stale), the
// snapshot's keyspaces are created with their settings (operator, tie rule,
// window; a windowed keyspace's periods follow it) and their keys set to the snapshot's counts, in the snapshot's rank
// order, each key of a `--ties first` keyspace with its own apply order so
// that equal counts rank as they did, and the partition's position and its writers'
// watermarks become the snapshot's. A crash before the batch leaves the old
// state and position (the next owner restores again); after it, the new.

import { CountdError, ErrorCodes } from '../errors.js';
import { decodeSettingsValue } from '../store/encoding.js';
import { clusterPositionMarkName, clusterWriterMarkName, encodeClusterPosition, encodeU64Mark } from '../store/marks.js';
import { IncrementBatch, type Mark, type Store } from '../store/store.js';
import { parsePeriodId } from '../store/windows.js';
import { partitionOf, partitionOfStored } from './partition.js';
import type { Snapshot } from './snapshot-format.js';

/** `staleWriters`: writers whose watermark in p this database holds and the snapshot does not: reset to 0. */
export async function restoreBatch(store: Store, snap: Snapshot, epoch: number, staleWriters: string[] = []): Promise<{ batch: IncrementBatch; marks: Mark[] }> {
  const p = snap.partition;
  const batch = new IncrementBatch(store.operators());
  batch.orderEachPair = true;
  for (const ks of await store.keyspaces()) if (partitionOfStored(ks.name) === p) batch.deleteKeyspace(ks.name);
  for (const ks of store.declaredKeyspaces()) if (partitionOf(ks.name) === p) batch.deleteKeyspace(ks.name);
  for (const ks of snap.keyspaces) {
    // A windowed keyspace's period (after its keyspace's record, whose settings hold the window): its own keys, replacing this database's copy.
    if (parsePeriodId(ks.name.toString('latin1')) !== undefined) {
      batch.deleteKeyspace(ks.name);
      for (let i = 0; i < ks.keys.length; i++) batch.set(ks.name, ks.keys[i]!, ks.counts[i]!);
      continue;
    }
    // The whole settings value (docs/storage-format.md, settings-value): operator, ties, window.
    const settings = ks.settings === undefined ? undefined : decodeSettingsValue(ks.settings);
    if (ks.settings !== undefined && settings === null) throw new CountdError(ErrorCodes.CORRUPTION, `snapshot of partition ${p} at ${snap.position}: keyspace ${ks.name.toString('utf8')} has a settings value this countd does not know (${ks.settings.toString('hex')})`);
    if (settings) batch.createKeyspace(ks.name, settings.operator, settings.ties ?? 0, settings.window);
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
