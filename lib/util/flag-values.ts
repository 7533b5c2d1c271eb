// How the text of a flag becomes a value: yargs `coerce` functions that turn
// it into numbers, sizes, bigints and names or throw a UsageError (exit 2).
// Shared by the admin commands (lib/cli/options.ts) and the daemon's
// settings (lib/daemon/settings.ts).

import { unescapeName } from './escape.js';
import { formatSize, parseSize } from './size.js';

/** A wrong command line: unknown command or flag, bad flag value, bad combination. Exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function single(flag: string, v: unknown): string {
  if (Array.isArray(v)) throw new UsageError(`${flag} was given ${v.length} times`);
  return String(v);
}

/** A comma-separated list of server addresses, each `scheme://host:port` or `host:port`. */
export function hostPortList(flag: string): (v: unknown) => string[] {
  return (v) => {
    const list = single(flag, v).split(',').map((u) => u.trim());
    for (const u of list) {
      if (!/^([a-z]+:\/\/)?[^\s/:,]+:\d{1,5}$/.test(u)) throw new UsageError(`${flag} must be URL[,URL...] with URL as nats://host:port or host:port, got ${JSON.stringify(u)}`);
    }
    return list;
  };
}

/** An integer within [min, max] (safe integers only). */
export function intParser(flag: string, min: number, max: number): (v: unknown) => number {
  return (v) => {
    const s = single(flag, v);
    if (!/^-?\d+$/.test(s) || Number(s) < min || Number(s) > max) {
      throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(s)}`);
    }
    return Number(s);
  };
}

/** A size in bytes within [min, max]: bytes, or with a unit K, M, G, T (binary). */
export function sizeParser(flag: string, min: number, max: number): (v: unknown) => number {
  return (v) => {
    const s = single(flag, v);
    const bytes = parseSize(s);
    if (bytes === undefined || bytes < min || bytes > max) {
      throw new UsageError(`${flag} must be a size from ${formatSize(min)} to ${formatSize(max)} (e.g. 512MiB, 2GiB), got ${JSON.stringify(s)}`);
    }
    return bytes;
  };
}

/** A bigint within [min, max]: counts, offsets and lengths are exact 64-bit values. */
export function bigintParser(flag: string, min: bigint, max: bigint): (v: unknown) => bigint {
  return (v) => {
    const s = single(flag, v);
    if (!/^[-+]?\d+$/.test(s) || BigInt(s) < min || BigInt(s) > max) {
      throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(s)}`);
    }
    return BigInt(s);
  };
}

/** A keyspace or key argument, in the escaped form of escape.ts. */
export function nameParser(what: string): (v: unknown) => Buffer {
  return (v) => {
    const s = single(what, v);
    if (s === '') throw new UsageError(`${what} must not be empty`);
    try {
      return unescapeName(s, what);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
}

export function nonEmpty(flag: string): (v: unknown) => string {
  return (v) => {
    const s = single(flag, v);
    if (s.trim() === '') throw new UsageError(`${flag} must not be empty`);
    return s;
  };
}

/** A TCP port, 0 to 65535 (0: any free port). */
export const port = (flag: string): ((v: unknown) => number) => intParser(flag, 0, 65535);
