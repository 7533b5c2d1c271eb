// A consistent export of some keyspaces and some marks, for the cluster's
// partition snapshots (lib/cluster/snapshots.ts, docs/cluster-snapshot-format.md):
// everything yielded comes from ONE LevelDB snapshot, taken synchronously
// with the in-memory directory between two committed writes (as views.ts
// does for one keyspace), so the marks (a partition's applied position) and
// the counts describe the same point. Keys come in rank order, SCAN_CHUNK a
// native call, in constant memory per chunk.

import { ORDER_SIZE, PREFIX_SIZE, RANK_COUNT_SIZE, TAG_INDEX, TAG_MARK, TAG_SETTINGS, decodeIndexSuffix, idPrefix, prefixEnd, taggedName } from './encoding.js';
import { translateDbError } from './errors.js';
import { SCAN_CHUNK } from './schema.js';
import type { StoreState } from './state.js';

export type ExportItem =
  | { type: 'marks'; marks: Array<{ name: string; value: Buffer }> }
  /** A keyspace starts; `settings` is its raw settings value (docs/storage-format.md), undefined when not declared. */
  | { type: 'keyspace'; name: Buffer; settings: Buffer | undefined }
  /** The next keys of the last keyspace, in rank order. */
  | { type: 'entries'; keys: Buffer[]; counts: bigint[] };

/** Keyspaces whose name `select` accepts (declared ones without keys too) and the marks named `markPrefix`…, at one point. */
export async function* exportKeyspaces(state: StoreState, select: (name: Buffer) => boolean, markPrefix: string): AsyncGenerator<ExportItem> {
  await state.readable();
  // From here to the snapshot: synchronous, so no write's swap lands in between.
  const names = new Map<string, { name: Buffer; id: number | undefined }>();
  for (const info of state.dir.values()) if (select(info.name)) names.set(info.name.toString('latin1'), { name: info.name, id: info.id });
  for (const ks of state.settings.keys()) {
    const name = Buffer.from(ks, 'latin1');
    if (!names.has(ks) && select(name)) names.set(ks, { name, id: undefined });
  }
  const { snapshot, release } = state.captureSnapshot();
  try {
    const markStart = taggedName(TAG_MARK, Buffer.from(markPrefix, 'utf8'));
    const marks: Array<{ name: string; value: Buffer }> = [];
    for await (const [key, value] of state.db.iterator({ gte: markStart, lt: prefixEnd(markStart), snapshot })) {
      marks.push({ name: key.subarray(1).toString('utf8'), value });
    }
    yield { type: 'marks', marks };
    const sorted = [...names.values()].sort((a, b) => Buffer.compare(a.name, b.name));
    for (const { name, id } of sorted) {
      const settings = await state.db.get(taggedName(TAG_SETTINGS, name), { snapshot });
      yield { type: 'keyspace', name, settings: settings ?? undefined };
      if (id === undefined) continue;
      // A --ties first keyspace holds the apply order between the rank count and the key.
      const keyAt = state.tiesFirst.has(name.toString('latin1')) ? RANK_COUNT_SIZE + ORDER_SIZE : RANK_COUNT_SIZE;
      const prefix = idPrefix(TAG_INDEX, id);
      const iterator = state.db.keys({ gte: prefix, lt: prefixEnd(prefix), snapshot });
      try {
        for (;;) {
          const chunk = await iterator.nextv(SCAN_CHUNK);
          if (chunk.length === 0) break;
          const keys: Buffer[] = new Array(chunk.length);
          const counts: bigint[] = new Array(chunk.length);
          for (let i = 0; i < chunk.length; i++) {
            const e = decodeIndexSuffix(chunk[i]!.subarray(PREFIX_SIZE), keyAt);
            keys[i] = Buffer.from(e.key);
            counts[i] = e.count;
          }
          yield { type: 'entries', keys, counts };
        }
      } finally {
        await iterator.close();
      }
    }
  } catch (err) {
    throw translateDbError(err, 'export', state.location);
  } finally {
    await release();
  }
}
