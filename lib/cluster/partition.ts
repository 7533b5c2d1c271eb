// The cluster's fixed partitioning of the keyspace names (docs/cluster.md,
// "Partitions"): a keyspace belongs to partition FNV-1a-32(name bytes) mod
// PARTITIONS, and the increments of partition p travel on the JetStream
// subject `countd.p.<p>` of the stream STREAM. The number is fixed for the
// life of a cluster: changing it would move keyspaces between partitions.

import { parsePeriodId } from '../store/windows.js';

export const PARTITIONS = 16;
export const STREAM = 'COUNTD';
/**
 * The stream's description names its layout (partitions, message format);
 * a node refuses a stream of another layout (countd 0.6.0's had 64
 * partitions and messages with NATS headers, and no description).
 */
export const STREAM_LAYOUT = `countd partitions=${PARTITIONS} message=1`;
export const SUBJECT_PREFIX = 'countd.p.';
/** KV bucket of the nodes' heartbeats (liveness). */
export const NODES_BUCKET = 'countd-nodes';
/** KV bucket of the partition leases (ownership). */
export const LEASES_BUCKET = 'countd-leases';
/** Object Store bucket of the partition snapshots (snapshots.ts). */
export const SNAPSHOTS_BUCKET = 'countd-snapshots';
/** On a purge marker (a NATS header, no body): the partition's messages at or below this sequence may be purged (snapshots.ts). */
export const HDR_FLOOR = 'Countd-Floor';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a, 32 bits, of the keyspace name's bytes, mod PARTITIONS. */
export function partitionOf(keyspace: Uint8Array): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < keyspace.length; i++) {
    h ^= keyspace[i]!;
    h = Math.imul(h, FNV_PRIME) >>> 0;
  }
  return h % PARTITIONS;
}

/** The partition of a name in the store: a windowed keyspace's period (lib/store/windows.ts) is in its keyspace's. */
export function partitionOfStored(name: Uint8Array): number {
  const period = parsePeriodId(Buffer.from(name).toString('latin1'));
  return partitionOf(period === undefined ? name : Buffer.from(period.keyspace, 'latin1'));
}

export function subjectOf(partition: number): string {
  return `${SUBJECT_PREFIX}${partition}`;
}

/** The partition of a subject `countd.p.<p>`, or -1. */
export function partitionOfSubject(subject: string): number {
  const digits = subject.startsWith(SUBJECT_PREFIX) ? subject.slice(SUBJECT_PREFIX.length) : '';
  if (!/^(0|[1-9]\d{0,2})$/.test(digits)) return -1;
  const p = Number(digits);
  return p < PARTITIONS ? p : -1;
}

export function leaseKey(partition: number): string {
  return `p.${partition}`;
}
