// Shared helpers of the store tests: a seeded PRNG, temp databases, and a
// plain in-memory model of ranked counters.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { INT64_MAX, INT64_MIN } from '../../lib/protocol/fields.js';
import type { Logger, LogFields } from '../../lib/util/log.js';

export { mulberry32 as random } from '../harness/rng.js';

export function randomInt64(rand: () => number): bigint {
  const hi = BigInt(Math.floor(rand() * 2 ** 32));
  const lo = BigInt(Math.floor(rand() * 2 ** 32));
  return BigInt.asIntN(64, (hi << 32n) | lo);
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'countd-test-store-'));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export interface ModelEntry {
  key: Buffer;
  count: bigint;
}

/** Counters per keyspace, exactly as docs/protocol.md defines them. */
export class Model {
  readonly spaces = new Map<string, Map<string, bigint>>();

  add(keyspace: Buffer, key: Buffer, delta: bigint): void {
    if (delta === 0n) return;
    const ks = keyspace.toString('latin1');
    let space = this.spaces.get(ks);
    if (!space) this.spaces.set(ks, (space = new Map()));
    space.set(key.toString('latin1'), (space.get(key.toString('latin1')) ?? 0n) + delta);
  }

  /** Clamp after a batch (the store clamps the per-batch sum). */
  clampAll(): void {
    for (const space of this.spaces.values()) {
      for (const [k, v] of space) space.set(k, v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : v);
    }
  }

  ranked(keyspace: Buffer): ModelEntry[] {
    const space = this.spaces.get(keyspace.toString('latin1'));
    if (!space) return [];
    const list = [...space].map(([k, count]) => ({ key: Buffer.from(k, 'latin1'), count }));
    return list.sort((a, b) => (a.count !== b.count ? (a.count > b.count ? -1 : 1) : Buffer.compare(a.key, b.key)));
  }
}

/** One line a recordingLogger saw. */
export interface LogLine {
  level: string;
  message: string;
  fields?: LogFields;
}

/** A Logger that keeps every line in `lines`, for tests that assert what was logged. */
export function recordingLogger(lines: LogLine[]): Logger {
  const make = (): Logger => ({
    debug: (message, fields) => lines.push({ level: 'debug', message, fields }),
    info: (message, fields) => lines.push({ level: 'info', message, fields }),
    warn: (message, fields) => lines.push({ level: 'warn', message, fields }),
    error: (message, fields) => lines.push({ level: 'error', message, fields }),
    child: () => make(),
  });
  return make();
}

/**
 * The plain in-order model of one key op on one keyspace's map (a map per
 * keyspace, or per period): a delete removes the key (and says whether the
 * map is now empty), a write of 0 does nothing, a set takes the value, a
 * write combines with the count by `operator` (1 sum, 2 max, 3 min, 4 set).
 */
export function modelKeyOp(space: Map<string, bigint>, key: string, kind: 'write' | 'set' | 'deleteKey', value: bigint, operator: number): void {
  if (kind === 'deleteKey') {
    space.delete(key);
    return;
  }
  if (kind === 'write' && value === 0n) return;
  const old = space.get(key);
  let next = value;
  if (kind === 'write' && old !== undefined) {
    if (operator === 1) next = old + value;
    else if (operator === 2) next = old > value ? old : value;
    else if (operator === 3) next = old < value ? old : value;
  }
  space.set(key, next);
}
