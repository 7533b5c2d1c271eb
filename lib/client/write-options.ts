// The options of the client's writes and reads after a token, checked
// before anything is sent; and an idempotent producer's session, made from
// the client's producer option.

import { invalidArgument } from '../errors.js';
import type { FieldSizes } from '../protocol/fields.js';
import { toUint64 } from '../protocol/read-request.js';
import { ProducerSession, type ProducerOptions } from './producer-session.js';
import type { WriteAck } from './write-connection.js';

/** Options of a write (version 2 of the extended write protocol). */
export interface WriteOptions {
  /** Resolve only once the write is readable (applied): read-your-writes. */
  visible?: boolean;
  /** How long `visible` waits, in ms (default 10,000): then COUNTD_TOKEN_TIMEOUT (the write itself is durable). */
  timeoutMs?: number;
  /** A producer's write: this sequence number instead of the next one (later writes follow it). */
  sequence?: bigint | number;
}

/** Options of a read that must see a write: its token, and how long to wait for it (default 10,000 ms). */
export interface ReadAfter {
  after?: bigint;
  timeoutMs?: number;
}

export const DEFAULT_VISIBLE_TIMEOUT_MS = 10_000;

/** incrementResult(): the write's ack, and the key's count and 0-based rank once it was applied (undefined: the key does not exist then). */
export interface WriteResult extends WriteAck {
  count: bigint | undefined;
  rank: bigint | undefined;
}

export function checkTimeout(ms: number | undefined): number {
  if (ms === undefined) return DEFAULT_VISIBLE_TIMEOUT_MS;
  if (!Number.isSafeInteger(ms) || ms < 0) throw invalidArgument(`timeoutMs must be a non-negative integer, got ${String(ms)}`);
  return ms;
}

/** Validate a write's options; returns whether it must be visible. */
export function checkWriteOptions(options: WriteOptions): boolean {
  if (options === null || typeof options !== 'object') throw invalidArgument('write options must be an object');
  if (options.visible !== undefined && typeof options.visible !== 'boolean') throw invalidArgument('visible must be a boolean');
  checkTimeout(options.timeoutMs);
  return options.visible === true;
}

export function checkProducerOptions(p: ProducerOptions): void {
  if (p === null || typeof p !== 'object') throw invalidArgument('producer must be { id, epoch?, sequence?, retries?, retryDelayMs? }');
  const id = typeof p.id === 'number' && Number.isSafeInteger(p.id) ? BigInt(p.id) : p.id;
  if (typeof id !== 'bigint' || id < 1n || id >= 1n << 64n) throw invalidArgument(`producer id must be an integer from 1 to 2^64 - 1, got ${String(p.id)}`);
  if (p.epoch !== undefined && (!Number.isInteger(p.epoch) || p.epoch < 0 || p.epoch > 0xffff_ffff)) throw invalidArgument(`producer epoch must be an integer from 0 to 2^32 - 1, got ${String(p.epoch)}`);
  if (p.sequence !== undefined) toUint64(p.sequence, 'producer sequence');
  if (p.retries !== undefined && (!Number.isSafeInteger(p.retries) || p.retries < 1)) throw invalidArgument(`producer retries must be a positive integer, got ${String(p.retries)}`);
  if (p.retryDelayMs !== undefined && (!Number.isSafeInteger(p.retryDelayMs) || p.retryDelayMs < 0)) throw invalidArgument(`producer retryDelayMs must be a non-negative integer, got ${String(p.retryDelayMs)}`);
}

export function newSession(p: ProducerOptions, endpoint: { host: string; port: number }, sizes: FieldSizes): ProducerSession {
  const id = BigInt(p.id);
  // Default epoch: seconds now, so a restarted instance fences the one before it.
  const epoch = p.epoch ?? Math.floor(Date.now() / 1000);
  return new ProducerSession(endpoint, sizes, id, epoch, toUint64(p.sequence ?? 0, 'sequence'), p.retries ?? 10, p.retryDelayMs ?? 50);
}
