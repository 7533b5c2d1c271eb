// How countd-write rebuilds its table of idempotent producers when it starts
// (producers.ts; docs/write-protocol-extensions.md, "Producers across
// restarts"): from the commit logs not yet applied, then from the database
// through the read port of the process that holds it. In that order: a log
// applied after the scan read it is in the database when the database is
// asked; a log applied before the scan is in the database already (a log is
// released clean only after its apply committed, producer marks included).
// The scan reads every log that is dirty or locked (being handed over, or
// held by a dead writer); a clean unlocked log was applied, or holds nothing.
//
// The scan also gives the first sequence number of this writer's stream:
// above every frame of a log not yet applied, and at least the time in ms
// times 2^20, so tokens grow across writer restarts (docs/guarantees.md).

import fs from 'node:fs/promises';
import path from 'node:path';
import { collectProducerRuns, type ProducerRun } from '../../commitlog/producer-runs.js';
import { lockName, parsePoolName } from '../../commitlog/filenames.js';
import { MODE_DIRTY } from '../../commitlog/pool.js';
import { readLogFile } from '../../commitlog/reader.js';
import { ReadConnection } from '../../client/read-connection.js';
import type { FieldSizes } from '../../protocol/fields.js';
import type { ProducerInfo } from '../../protocol/read-response.js';
import type { Logger } from '../../util/log.js';
import type { ProducerRecord, ProducerTable } from './producers.js';

export interface PoolScan {
  producers: ProducerRecord[];
  /** The highest frame sequence number in a log not yet applied (0 when none). */
  maxToken: bigint;
}

/** Read the logs of `dir` that are dirty or locked; collect their producers' frames and their highest sequence number. */
export async function scanPool(dir: string, sizes: FieldSizes, now = Date.now()): Promise<PoolScan> {
  const names = await fs.readdir(dir);
  const present = new Set(names);
  const runs = new Map<bigint, ProducerRun>();
  let maxToken = 0n;
  for (const name of names) {
    const parsed = parsePoolName(name);
    if (parsed.kind !== 'log') continue;
    const file = path.join(dir, name);
    let mode: number;
    try {
      mode = (await fs.stat(file)).mode & 0o777;
    } catch {
      continue;
    }
    if (mode !== MODE_DIRTY && !present.has(lockName(parsed.index))) continue;
    const contents = await readLogFile(file, sizes);
    const last = collectProducerRuns(contents.records, runs);
    if (last > maxToken) maxToken = last;
  }
  const producers = [...runs].map(([id, r]) => ({ id, epoch: r.epoch, first: r.first, last: r.last, token: r.token, lastSeen: now }));
  return { producers, maxToken };
}

/** The first sequence number of a new stream: above `maxToken`, and at least now (ms) × 2^20. */
export function firstSequence(maxToken: bigint, now = Date.now()): bigint {
  const floor = BigInt(now) << 20n;
  return maxToken + 1n > floor ? maxToken + 1n : floor;
}

const PAGE = 1000;
const RETRY_MS = 250;

/**
 * Merge the database's producers (asked through the read port at host:port)
 * into `table`, retrying until the port answers or `stopped()`; then mark
 * the table ready.
 */
export async function loadFromDatabase(table: ProducerTable, host: string, port: number, sizes: FieldSizes, logger: Logger, stopped: () => boolean): Promise<void> {
  for (let attempt = 0; !stopped(); attempt++) {
    const conn = new ReadConnection({ host, port }, sizes);
    try {
      let after = 0n;
      for (;;) {
        const res = await conn.request({ op: 'producers', after, length: PAGE });
        const page = (res as { producers: ProducerInfo[] }).producers;
        for (const p of page) table.merge(p);
        if (page.length < PAGE) break;
        after = page[page.length - 1]!.id;
      }
      table.markReady();
      logger.info('idempotent producers loaded', { producers: table.size });
      return;
    } catch (err) {
      if (attempt % 20 === 0) logger.warn('cannot load the idempotent producers from the read port yet; version-2 clients wait', { port, error: (err as Error).message });
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    } finally {
      conn.destroy();
    }
  }
}
