// Clearing a deleted keyspace's records (`C id *`, `I id *`, `F id *`, then
// `X id`: docs/storage-format.md, "Rules") in the background, paced so that
// reads and applies keep their latency (issue 17: read p99 under 5x idle
// while a 1,000,000-key keyspace is deleted; bench:delete, BENCHMARKS.md).
//
// One LevelDB clear of the whole range writes ~3,000,000 tombstones as fast
// as a threadpool thread can: the memtable fills and is flushed over and over,
// LevelDB stalls writes while a flush is behind (applies wait, and reads wait
// for the apply being committed: state.ts `writing`), and L0 files pile up
// for compaction. Here the range is cleared in slices of CLEAR_SLICE_KEYS
// keys (LevelDB's own clear, native, with a limit), each followed by a pause
// that keeps the clear's share of the time at CLEAR_DUTY, so tombstones
// arrive at a rate the memtable flushes and compactions absorb. A slice
// starts at the first key left (found with one seek just past the slice's
// tombstones), so no slice skips the tombstones of the slices before it.
//
// A cleared range is then compacted (LevelDB's compactRange), in steps of
// COMPACT_STEP_SLICES slices' keys with the same pacing, when its files still
// hold COMPACT_MIN_BYTES or more: LevelDB drops a tombstone only when a
// compaction reaches the bottom level, which for a range nobody writes again
// may be never. Until then the deleted records keep their disk space, and an
// iterator that steps past the end of a live range just before the dead one
// (a dump, a fence load: they read to the end of their prefix) walks every
// tombstone of it, ~1,000,000 entries for a 1,000,000-key keyspace. Small
// ranges (a short period of a windowed keyspace) are left to LevelDB.
//
// The clear needs no atomicity (the id is unreachable once `X id` is
// written); a crash or a close leaves `X id`, and the next open resumes
// (clearing what is left, then compacting the range whole if its files
// still hold COMPACT_MIN_BYTES).

import { idPrefix, prefixEnd, TAG_COUNT, TAG_DEAD, TAG_FENCE, TAG_INDEX } from './encoding.js';
import type { ClassicLevel } from 'classic-level';

/** The store's database (state.ts Db; not imported from there, which imports this module). */
type Db = ClassicLevel<Buffer, Buffer>;

/** Keys one slice of the clear deletes: ~200-500 KiB of tombstones, a few ms of LevelDB's time. */
export const CLEAR_SLICE_KEYS = 8192;
/** Share of wall time the clear works; it pauses the rest (3x each slice's time at 0.25). */
export const CLEAR_DUTY = 0.25;
/** Shortest pause between slices, ms: even a fast slice leaves the event loop and the disk a gap. */
export const CLEAR_MIN_PAUSE_MS = 2;
/**
 * Longest pause, ms. On a loaded machine a slice's time is mostly waiting
 * (for the threadpool, for a core), and a pause of 3x that made the clear of
 * 1,000,000 keys take 5 minutes (bench:delete at load 29 on 2 cores).
 */
export const CLEAR_MAX_PAUSE_MS = 40;

/** A cleared range whose files still hold this many bytes is compacted (about 40,000 deleted records). */
export const COMPACT_MIN_BYTES = 1024 * 1024;
/** Slices of keys per compaction step: LevelDB compacts a step in one go, so it is kept to a few MiB of files. */
export const COMPACT_STEP_SLICES = 8;
/** Longest pause after a compaction step, ms: a step may take hundreds of ms on a loaded machine. */
export const COMPACT_MAX_PAUSE_MS = 500;

export interface ClearPace {
  sliceKeys: number;
  duty: number;
  /** Compact a cleared range whose files still hold this many bytes (Infinity: leave it to LevelDB, as before 0.7.0). */
  compactMinBytes: number;
  /** Stop early (the store closes or reopens): the `X` record stays for the next open. */
  stopped: () => boolean;
}

export const DEFAULT_CLEAR_PACE: Omit<ClearPace, 'stopped'> = { sliceKeys: CLEAR_SLICE_KEYS, duty: CLEAR_DUTY, compactMinBytes: COMPACT_MIN_BYTES };

/** Clear dead keyspace `id`'s records, slice by slice; true when all are gone (and `X id` deleted). */
export async function clearDeadKeyspace(db: Db, id: number, pace: ClearPace): Promise<boolean> {
  for (const tag of [TAG_COUNT, TAG_INDEX, TAG_FENCE]) {
    const prefix = idPrefix(tag, id);
    const end = prefixEnd(prefix);
    const steps = await clearRange(db, prefix, end, pace);
    if (steps === undefined) return false;
    if ((await db.approximateSize(prefix, end)) >= pace.compactMinBytes) {
      if (!(await compactSteps(db, steps, pace))) return false;
    }
  }
  await db.del(idPrefix(TAG_DEAD, id));
  return true;
}

/**
 * Clear [gte, lt) in paced slices. Returns the bounds of the compaction
 * steps (gte, the start of every COMPACT_STEP_SLICES-th slice, lt), or
 * undefined if stopped first.
 */
async function clearRange(db: Db, gte: Buffer, lt: Buffer, pace: ClearPace): Promise<Buffer[] | undefined> {
  const bounds = [gte];
  let from = gte;
  let slices = 0;
  for (;;) {
    if (pace.stopped()) return undefined;
    const started = performance.now();
    await db.clear({ gte: from, lt, limit: pace.sliceKeys });
    // The first key left: one seek, past this slice's tombstones only.
    const next = await db.keys({ gte: from, lt, limit: 1 }).all();
    if (next.length === 0) return [...bounds, lt];
    from = next[0]!;
    if (++slices % COMPACT_STEP_SLICES === 0) bounds.push(from);
    await pause(performance.now() - started, pace.duty, CLEAR_MAX_PAUSE_MS);
  }
}

/** Compact [bounds[i], bounds[i + 1]) one step after another, paced; false if stopped first. */
async function compactSteps(db: Db, bounds: Buffer[], pace: ClearPace): Promise<boolean> {
  for (let i = 0; i + 1 < bounds.length; i++) {
    if (pace.stopped()) return false;
    const started = performance.now();
    await db.compactRange(bounds[i]!, bounds[i + 1]!);
    await pause(performance.now() - started, pace.duty, COMPACT_MAX_PAUSE_MS);
  }
  return true;
}

/** Pause so that `worked` ms is the `duty` share of the time, within CLEAR_MIN_PAUSE_MS and `max`. */
function pause(worked: number, duty: number, max: number): Promise<void> {
  const ms = Math.min(max, Math.max(CLEAR_MIN_PAUSE_MS, (worked * (1 - duty)) / duty));
  return new Promise((resolve) => setTimeout(resolve, ms));
}
