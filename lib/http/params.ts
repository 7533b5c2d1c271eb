// Query parameters of the JSON API (docs/http-api.md): each parsed and
// range-checked here, or rejected with COUNTD_INVALID_ARGUMENT (HTTP 400)
// naming the parameter and what it accepts.

import { invalidArgument } from '../errors.js';
import { unescapeName } from '../util/escape.js';

export const MAX_OFFSET = (1n << 63n) - 1n;

function one(q: URLSearchParams, name: string): string | undefined {
  const all = q.getAll(name);
  if (all.length > 1) throw invalidArgument(`query parameter ${name} was given ${all.length} times`);
  return all[0];
}

/** An integer parameter within [min, max]; `fallback` when absent. */
export function intParam(q: URLSearchParams, name: string, min: number, max: number, fallback: number): number {
  const s = one(q, name);
  if (s === undefined) return fallback;
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) {
    throw invalidArgument(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(s)}`);
  }
  return Number(s);
}

/** An offset into a rank order: 0 to 2^63-1, as for the read protocol. */
export function offsetParam(q: URLSearchParams, name = 'offset'): bigint {
  const s = one(q, name);
  if (s === undefined) return 0n;
  if (!/^\d{1,19}$/.test(s) || BigInt(s) > MAX_OFFSET) {
    throw invalidArgument(`${name} must be an integer from 0 to ${MAX_OFFSET}, got ${JSON.stringify(s)}`);
  }
  return BigInt(s);
}

/**
 * A keyspace or key name in the CLI's escaped form (README, "Names on the
 * command line"), of at most `field` bytes (the data directory's field size).
 */
export function nameParam(q: URLSearchParams, name: string, field: { what: string; size: number }): Buffer {
  const s = one(q, name);
  if (s === undefined || s === '') throw invalidArgument(`query parameter ${name} is required (the name in the CLI's escaped form)`);
  const bytes = unescapeName(s, name);
  if (bytes.length === 0) throw invalidArgument(`${name} must not be empty`);
  if (bytes.length > field.size) throw invalidArgument(`${name} is ${bytes.length} bytes, more than the ${field.what} field (${field.size})`);
  if (bytes.includes(0)) throw invalidArgument(`${name} must not contain a NUL byte (\\x00)`);
  return bytes;
}

/** A free-text parameter, '' when absent. */
export function textParam(q: URLSearchParams, name: string, maxLength: number): string {
  const s = one(q, name) ?? '';
  if (s.length > maxLength) throw invalidArgument(`${name} must be at most ${maxLength} characters`);
  return s;
}

/** One of `choices`; the first when absent. */
export function choiceParam<T extends string>(q: URLSearchParams, name: string, choices: readonly T[]): T {
  const s = one(q, name);
  if (s === undefined) return choices[0]!;
  if (!(choices as readonly string[]).includes(s)) throw invalidArgument(`${name} must be one of ${choices.join(', ')}, got ${JSON.stringify(s)}`);
  return s as T;
}
