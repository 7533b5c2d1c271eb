// A keyspace's time window as bytes (`countd create --window … --keep N`):
// bytes 2 … 15 of the store's settings value (docs/storage-format.md,
// settings-value) and bytes 1 … 14 of a create op's key field
// (docs/write-protocol-extensions.md, docs/commit-log-format.md). The one
// owner of that layout and of its validation; what a window does is
// lib/store/windows.ts's.

import { invalidArgument } from '../errors.js';

/** Window units (byte 2 of the settings value). */
export const WindowUnit = { none: 0, seconds: 1, hour: 2, day: 3, week: 4, month: 5 } as const;
export const WINDOW_UNIT_NAMES: Record<number, string> = { 1: 'seconds', 2: 'hour', 3: 'day', 4: 'week', 5: 'month' };

/** Bytes 1 … 15 of the settings value: what a create op's key field carries (write-protocol-extensions.md). */
export const SETTINGS_TAIL_SIZE = 15;
/** The most periods a keyspace may keep (a bound, so that a period's age stays a small integer). */
export const MAX_KEEP = 100_000;
/** The longest fixed window: 366 days. */
export const MAX_WINDOW_SECONDS = 366 * 86_400;
/** The periods kept when --window is given without --keep: the current one and the one before. */
export const DEFAULT_KEEP = 2;

/** A keyspace's window: unit 0 (none) for a keyspace that is not windowed. */
export interface WindowSettings {
  unit: number;
  /** Periods kept readable (current included): --ago 0 … keep - 1. 0 when unit is 0. */
  keep: number;
  /** The fixed window's length (unit 1 only; else 0). */
  seconds: number;
}

export const NO_WINDOW: WindowSettings = Object.freeze({ unit: 0, keep: 0, seconds: 0 });

export function isWindowed(w: WindowSettings | undefined): w is WindowSettings {
  return w !== undefined && w.unit !== WindowUnit.none;
}

/** Why `w` is not a valid window, or undefined when it is. */
export function windowProblem(w: WindowSettings): string | undefined {
  const { unit, keep, seconds } = w;
  if (!Number.isInteger(unit) || unit < 0 || unit > WindowUnit.month) return `unknown window unit ${unit}`;
  if (unit === WindowUnit.none) return keep === 0 && seconds === 0 ? undefined : 'a keyspace without a window keeps no periods and has no window length';
  if (!Number.isInteger(keep) || keep < 1 || keep > MAX_KEEP) return `keep must be from 1 to ${MAX_KEEP}, got ${keep}`;
  if (unit === WindowUnit.seconds) {
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_WINDOW_SECONDS) return `a fixed window must be from 1 to ${MAX_WINDOW_SECONDS} seconds, got ${seconds}`;
  } else if (seconds !== 0) return 'only a fixed window (unit 1) has a length in seconds';
  return undefined;
}

/**
 * Write the window into bytes 2 … 15 of a settings value at target[offset]
 * (offset = the operator's byte): unit, reserved, keep u32 BE, seconds u64 BE.
 */
export function writeWindow(target: Buffer, offset: number, w: WindowSettings): void {
  target[offset + 2] = w.unit;
  target[offset + 3] = 0;
  target.writeUInt32BE(w.keep, offset + 4);
  target.writeBigUInt64BE(BigInt(w.seconds), offset + 8);
}

/** The window in a settings value's bytes 2 … 15 at source[offset] (offset = the operator's byte), or null when malformed. */
export function readWindow(source: Uint8Array, offset: number): WindowSettings | null {
  const buf = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  if (buf[offset + 3] !== 0) return null;
  const seconds = buf.readBigUInt64BE(offset + 8);
  if (seconds > BigInt(MAX_WINDOW_SECONDS)) return null;
  const w = { unit: buf[offset + 2]!, keep: buf.readUInt32BE(offset + 4), seconds: Number(seconds) };
  return windowProblem(w) === undefined ? w : null;
}

/** The 15 settings bytes after the operator, as a create op carries them: the tie rule (0 key, 1 first), then the window. */
export function settingsTail(w: WindowSettings, ties = 0): Buffer {
  const buf = Buffer.alloc(SETTINGS_TAIL_SIZE + 1);
  buf[1] = ties;
  writeWindow(buf, 0, w);
  return buf.subarray(1);
}

/**
 * The window a create op carries in its key field at buf[at] (`length`
 * bytes, at most SETTINGS_TAIL_SIZE: settings bytes 1 … 15, trailing zero
 * bytes may be cut): undefined for none, null when malformed (a window
 * out of range, or a tie rule, byte 0, other than 0 key and 1 first:
 * the tie rule itself is lib/store/encoding.ts Ties's).
 */
export function createWindow(buf: Uint8Array, at: number, length: number): WindowSettings | undefined | null {
  if (length > SETTINGS_TAIL_SIZE) return null;
  const value = Buffer.alloc(SETTINGS_TAIL_SIZE + 1);
  for (let i = 0; i < length; i++) value[1 + i] = buf[at + i]!;
  if (value[1]! > 1) return null;
  const w = readWindow(value, 0);
  if (w === null) return null;
  return w.unit === WindowUnit.none ? undefined : w;
}

/** A window from the CLI's words: `10s`, `5m`, `2h`, `7d` (fixed, aligned to the epoch), or hour, day, week, month (calendar, UTC). */
export function parseWindow(text: string, keep: number | undefined): WindowSettings {
  const k = keep ?? DEFAULT_KEEP;
  const named: Record<string, number> = { hour: WindowUnit.hour, day: WindowUnit.day, week: WindowUnit.week, month: WindowUnit.month };
  let w: WindowSettings;
  if (named[text] !== undefined) w = { unit: named[text]!, keep: k, seconds: 0 };
  else {
    const m = /^([1-9][0-9]{0,8})(s|m|h|d)$/.exec(text);
    if (m === null) throw invalidArgument(`--window must be a duration (10s, 5m, 2h, 7d) or hour, day, week or month, got '${text}'`);
    const seconds = Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd'];
    w = { unit: WindowUnit.seconds, keep: k, seconds };
  }
  const problem = windowProblem(w);
  if (problem !== undefined) throw invalidArgument(`--window ${text} --keep ${k}: ${problem}`);
  return w;
}

/** How a window reads back to a user: `10s`, `hour`, `day`, `week`, `month`. */
export function windowLabel(w: WindowSettings): string | undefined {
  if (w.unit === WindowUnit.none) return undefined;
  if (w.unit !== WindowUnit.seconds) return WINDOW_UNIT_NAMES[w.unit];
  const s = w.seconds;
  if (s % 86_400 === 0) return `${s / 86_400}d`;
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}
