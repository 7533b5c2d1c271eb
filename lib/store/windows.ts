// Time windows with history (`countd create --window … --keep N`): the one
// owner of a window's settings bytes, of period arithmetic and of the names
// under which a windowed keyspace's periods are stored
// (docs/storage-format.md, "Windowed keyspaces").
//
// A windowed keyspace `ks` holds no keys itself: each period is an ordinary
// keyspace of the store named `ks 0x00 start`, `start` the period's first
// millisecond (u64 big-endian). A user name never holds a NUL, so these
// names cannot collide with one; they sort after `ks` and before every other
// name that starts with `ks`, period by period in time order, so a
// keyspace's periods are one contiguous range of names. A page of a period
// is then an ordinary scan, and dropping an expired period is the store's
// O(1) keyspace delete with its background clear.
//
// The period of a write is that of the time its commit-log record was made
// durable (the record's writtenAt, docs/commit-log-format.md), never the time
// the worker applies it: a replay after a crash lands in the same period.

import { invalidArgument } from '../errors.js';
import { WindowUnit, type WindowSettings } from '../protocol/window-settings.js';

export { NO_WINDOW, isWindowed, type WindowSettings } from '../protocol/window-settings.js';

/** The byte that separates a windowed keyspace's name from a period's start in the period's store name. */
export const PERIOD_SEPARATOR = 0x00;
/** Bytes a period adds to its keyspace's name: the separator and the start (u64 BE). */
export const PERIOD_SUFFIX_SIZE = 9;

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;
/** 1970-01-05T00:00:00Z, a Monday: ISO weeks start on Monday. */
const FIRST_MONDAY_MS = 4 * DAY_MS;

/** The first millisecond of the period holding `ms` (UTC; fixed windows aligned to the epoch, weeks to Mondays). */
export function periodStart(w: WindowSettings, ms: number): number {
  let start: number;
  switch (w.unit) {
    case WindowUnit.seconds:
      start = floorTo(ms, w.seconds * 1000, 0);
      break;
    case WindowUnit.hour:
      start = floorTo(ms, HOUR_MS, 0);
      break;
    case WindowUnit.day:
      start = floorTo(ms, DAY_MS, 0);
      break;
    case WindowUnit.week:
      start = floorTo(ms, WEEK_MS, FIRST_MONDAY_MS);
      break;
    case WindowUnit.month: {
      const d = new Date(ms);
      start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
      break;
    }
    default:
      throw invalidArgument(`keyspace has no window (unit ${w.unit})`);
  }
  // Periods before 1970 (a clock that far off) share period 0: starts are u64.
  return Math.max(0, start);
}

/** The first millisecond of the period `ago` periods before the one holding `ms`. */
export function periodAgo(w: WindowSettings, ms: number, ago: number): number {
  const start = periodStart(w, ms);
  if (w.unit === WindowUnit.month) {
    const d = new Date(start);
    return Math.max(0, Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - ago, 1));
  }
  return Math.max(0, start - ago * periodLengthMs(w));
}

/** The first period still kept at `ms`: older ones are expired (deleted by the worker). */
export function oldestKept(w: WindowSettings, ms: number): number {
  return periodAgo(w, ms, w.keep - 1);
}

function periodLengthMs(w: WindowSettings): number {
  if (w.unit === WindowUnit.seconds) return w.seconds * 1000;
  if (w.unit === WindowUnit.hour) return HOUR_MS;
  if (w.unit === WindowUnit.day) return DAY_MS;
  return WEEK_MS;
}

function floorTo(ms: number, step: number, origin: number): number {
  return Math.floor((ms - origin) / step) * step + origin;
}

/** The store name of the period of `keyspace` starting at `start`: `keyspace 0x00 start(u64 BE)`. */
export function periodName(keyspace: Buffer, start: number): Buffer {
  const name = Buffer.allocUnsafe(keyspace.length + PERIOD_SUFFIX_SIZE);
  keyspace.copy(name, 0);
  name[keyspace.length] = PERIOD_SEPARATOR;
  name.writeBigUInt64BE(BigInt(start), keyspace.length + 1);
  return name;
}

/** Write the period suffix (separator and start) at target[offset]. */
export function writePeriodSuffix(target: Uint8Array, offset: number, start: number): void {
  target[offset] = PERIOD_SEPARATOR;
  const hi = Math.floor(start / 2 ** 32);
  const lo = start >>> 0;
  target[offset + 1] = hi >>> 24;
  target[offset + 2] = (hi >>> 16) & 0xff;
  target[offset + 3] = (hi >>> 8) & 0xff;
  target[offset + 4] = hi & 0xff;
  target[offset + 5] = lo >>> 24;
  target[offset + 6] = (lo >>> 16) & 0xff;
  target[offset + 7] = (lo >>> 8) & 0xff;
  target[offset + 8] = lo & 0xff;
}

/** For a period's store name (latin1): its keyspace's name (latin1) and start; undefined for any other name. */
export function parsePeriodId(id: string): { keyspace: string; start: number } | undefined {
  const at = id.length - PERIOD_SUFFIX_SIZE;
  if (at < 1 || id.charCodeAt(at) !== PERIOD_SEPARATOR) return undefined;
  let start = 0;
  for (let i = at + 1; i < id.length; i++) start = start * 256 + id.charCodeAt(i);
  return { keyspace: id.slice(0, at), start };
}

/** The keyspace whose settings govern store name `id` (latin1): its windowed keyspace for a period, else itself. */
export function governingKeyspace(id: string): string {
  return parsePeriodId(id)?.keyspace ?? id;
}

/** Whether latin1 store name `id` is a period of keyspace `keyspace` (latin1). */
export function isPeriodOf(id: string, keyspace: string): boolean {
  return id.length === keyspace.length + PERIOD_SUFFIX_SIZE && id.charCodeAt(keyspace.length) === PERIOD_SEPARATOR && id.startsWith(keyspace);
}

