// countd's read side under load: pipelined top-N page requests (docs/protocol.md
// section 2: offset 0, length N, a keyspace drawn uniformly) over the shared
// client shape (pipeline.ts), and the read-back of every count that confirms
// the worker drained. The load only counts responses (it decodes n and skips
// the records): decoding every record would make the client the bottleneck.

import { Client } from '../../lib/client/client.js';
import { FieldSizes, readRecordSize } from '../../lib/protocol/fields.js';
import { encodeReadRequest } from '../../lib/protocol/read-request.js';
import { KeySet, keyspaceName, readKeyspaceName } from './keys.js';
import { Protocol, ReplyCounter, prebuiltEncoder } from './pipeline.js';

export interface PageStats {
  /** Records received over all pages (to show the pages were not empty). */
  records: number;
}

/** Pipelined `(offset 0, length pageLength, rks<j>)` requests (the read data set), j uniform over the keyspaces. */
export function pageProtocol(keys: KeySet, phase: number, connections: number, pageLength: number, sizes: FieldSizes, stats: PageStats): Protocol {
  const streams = Array.from({ length: connections }, (_, c) => keys.keyspaceStream(c, phase));
  // Requests are built once per keyspace; a batch is a concatenation of them.
  const requests = Array.from({ length: keys.keyspaces }, (_, j) =>
    encodeReadRequest({ op: 'page', offset: 0, length: pageLength, keyspace: readKeyspaceName(j) }, sizes),
  );
  return {
    encode: prebuiltEncoder(streams, requests),
    replyCounter: () => pageReplyCounter(readRecordSize(sizes), stats),
  };
}

/**
 * Counts complete page responses (i64 n, then n records) across chunks
 * without decoding the records. n < 0 (malformed, page too large) throws.
 */
export function pageReplyCounter(recordSize: number, stats?: PageStats): ReplyCounter {
  const header = Buffer.alloc(8);
  let headerHave = 0;
  let bodyLeft = 0;
  return (chunk) => {
    let pos = 0;
    let count = 0;
    while (pos < chunk.length) {
      if (bodyLeft > 0) {
        const take = Math.min(bodyLeft, chunk.length - pos);
        pos += take;
        bodyLeft -= take;
        if (bodyLeft === 0) count++;
        continue;
      }
      const take = Math.min(8 - headerHave, chunk.length - pos);
      chunk.copy(header, headerHave, pos, pos + take);
      headerHave += take;
      pos += take;
      if (headerHave < 8) break;
      headerHave = 0;
      const n = header.readBigInt64LE(0);
      if (n < 0n) throw new Error(`countd-read answered n = ${n} (${n === -2n ? 'page too large' : 'malformed request'})`);
      if (stats) stats.records += Number(n);
      bodyLeft = Number(n) * recordSize;
      if (bodyLeft === 0) count++;
    }
    return count;
  };
}

export interface ReadBack {
  /** Sum of every count in every keyspace of the key set. */
  sum: bigint;
  /** Number of (keyspace, key) entries. */
  keys: number;
}

/**
 * Read every entry of every keyspace of the key set back, through the
 * project's Client (pages of `pageSize`, `parallel` clients at once).
 */
export async function readAllCounts(readPort: number, keys: KeySet, pageSize = 10_000, parallel = 4): Promise<ReadBack> {
  const clients = Array.from({ length: parallel }, () => new Client({ host: '127.0.0.1', readPort, writePort: 1, pageSize }));
  let sum = 0n;
  let count = 0;
  try {
    await Promise.all(
      clients.map(async (client, c) => {
        for (let j = c; j < keys.keyspaces; j += parallel) {
          for await (const entry of client.dump(keyspaceName(j))) {
            sum += entry.count;
            count++;
          }
        }
      }),
    );
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  return { sum, keys: count };
}
