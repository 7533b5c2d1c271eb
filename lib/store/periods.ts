// The periods of windowed keyspaces in the store (lib/store/windows.ts,
// docs/storage-format.md "Windowed keyspaces"): which stored keyspace a read
// of `ks --ago N` goes to, which periods a keyspace holds, and the expiry of
// periods older than its --keep (run by the worker: lib/roles/work/expiry.ts).

import { CountdError, ErrorCodes, invalidArgument } from '../errors.js';
import { translateDbError } from './errors.js';
import { dropOps, forgetKeyspaces } from './maintenance.js';
import { latin1, type KeyspaceInfo, type StoreState } from './state.js';
import { windowLabel } from '../protocol/window-settings.js';
import { isPeriodOf, oldestKept, parsePeriodId, periodAgo, periodName, type WindowSettings } from './windows.js';

/** Which period a read is of: `ago` periods before the one holding `now` (default 0 and the clock). */
export interface PeriodChoice {
  ago?: number;
  /** ms since the epoch; Date.now() by default (tests pass their own). */
  now?: number;
}

/** Check a PeriodChoice from a caller; returns it complete. */
export function checkPeriodChoice(at: PeriodChoice | undefined): { ago: number; now: number | undefined } {
  if (at === undefined) return { ago: 0, now: undefined };
  if (at === null || typeof at !== 'object') throw invalidArgument('the period must be an object { ago, now }');
  const ago = at.ago ?? 0;
  if (!Number.isSafeInteger(ago) || ago < 0) throw invalidArgument(`ago must be a non-negative integer, got ${String(at.ago)}`);
  if (at.now !== undefined && (!Number.isSafeInteger(at.now) || at.now < 0)) throw invalidArgument(`now must be ms since the epoch, got ${String(at.now)}`);
  return { ago, now: at.now };
}

/**
 * The name a read of keyspace `name` at period `ago` goes to: the period's
 * store name for a windowed keyspace, the name itself otherwise.
 * COUNTD_INVALID_ARGUMENT when that period is not kept (ago >= keep, or
 * ago > 0 on a keyspace without a window).
 */
export function periodToRead(state: StoreState, name: Buffer, ago: number, now: number | undefined): Buffer {
  const w = state.windows.get(latin1(name));
  if (w === undefined) {
    if (ago > 0) throw notKept(name, ago, 'it has no --window (only --ago 0)');
    return name;
  }
  if (ago >= w.keep) throw notKept(name, ago, `it keeps ${w.keep} period${w.keep === 1 ? '' : 's'} of ${windowLabel(w)} (--ago 0 to ${w.keep - 1})`);
  return periodName(name, periodAgo(w, now ?? Date.now(), ago));
}

/** A read of a period that is not kept (COUNTD_INVALID_ARGUMENT): the read port answers it n = -3. */
export class PeriodNotKeptError extends CountdError {
  constructor(message: string) {
    super(ErrorCodes.INVALID_ARGUMENT, message);
  }
}

function notKept(name: Buffer, ago: number, why: string): CountdError {
  return new PeriodNotKeptError(`keyspace ${name.toString('utf8')} has no period --ago ${ago}: ${why}`);
}

/** The start of the period a read of `name` at `ago` goes to, undefined for a keyspace without a window; PeriodNotKeptError as periodToRead. */
export function periodStartToRead(state: StoreState, name: Buffer, ago: number, now: number | undefined): number | undefined {
  const read = periodToRead(state, name, ago, now);
  return read === name ? undefined : parsePeriodId(latin1(read))!.start;
}

/** Every keyspace but the periods, with its size; a windowed keyspace with its current period's size, when that holds keys. */
export function listKeyspaces(state: StoreState, now: number): Array<{ name: Buffer; size: number }> {
  const list: Array<{ name: Buffer; size: number }> = [];
  for (const [id, info] of state.dir) if (parsePeriodId(id) === undefined) list.push({ name: info.name, size: info.size });
  for (const [ks, w] of state.windows) {
    const name = Buffer.from(ks, 'latin1');
    const current = state.dir.get(latin1(periodName(name, periodAgo(w, now, 0))));
    if (current !== undefined) list.push({ name, size: current.size });
  }
  return list.sort((a, b) => a.name.compare(b.name));
}

/** The stored periods of windowed keyspace `ks` (latin1), oldest first: their start and size. */
export function storedPeriods(state: StoreState, ks: string): Array<{ start: number; size: number }> {
  const out: Array<{ start: number; size: number }> = [];
  for (const [id, info] of state.dir) {
    if (isPeriodOf(id, ks)) out.push({ start: parsePeriodId(id)!.start, size: info.size });
  }
  return out.sort((a, b) => a.start - b.start);
}

/**
 * The stored periods that are expired at `now`: older than their
 * keyspace's --keep, or of a keyspace that is no longer windowed.
 */
export function expiredPeriods(state: StoreState, now: number): KeyspaceInfo[] {
  const out: KeyspaceInfo[] = [];
  for (const [id, info] of state.dir) {
    const period = parsePeriodId(id);
    if (period === undefined) continue;
    const w: WindowSettings | undefined = state.windows.get(period.keyspace);
    if (w === undefined || period.start < oldestKept(w, now)) out.push(info);
  }
  return out;
}

/** Whether some period is expired at `now` (nothing to look at when no keyspace is windowed: a delete or re-create takes its periods with it). */
export function hasExpiredPeriods(state: StoreState, now: number): boolean {
  return state.windows.size > 0 && expiredPeriods(state, now).length > 0;
}

/**
 * Delete every period expired at `now` in ONE atomic batch (as a keyspace
 * delete each: its directory record goes, its id is recorded dead, its
 * records are cleared in the background). Returns how many went. The
 * caller holds the write mutex.
 */
export async function expirePeriods(state: StoreState, now: number): Promise<number> {
  const expired = expiredPeriods(state, now);
  if (expired.length === 0) return 0;
  try {
    // An expired name may come back (a late write to an old period): forgetKeyspaces clears the counts.
    await state.commit(dropOps(expired), () => forgetKeyspaces(state, expired), 'expire periods');
  } catch (err) {
    throw translateDbError(err, 'expire periods', state.location);
  }
  for (const info of expired) state.collect(info.id);
  return expired.length;
}
