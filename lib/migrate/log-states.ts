// What each commit log of the original countd holds for `countd migrate`, from
// its mode, its `lock-` link and its content (docs/legacy-format.md, "What the
// original leaves on disk"). Only reads.
//
// The original marks a log dirty (0400) only when its writer moves past it
// (full), or when the writer is stopped with Ctrl-C; its worker marks a log
// clean (0200) once applied. Each process holds a `lock-<index>` hard link on
// the log it uses and leaves it behind when killed. So:
//
//   dirty, no lock             not applied yet: replay every frame
//   dirty, lock                the worker was applying it: some frames may be
//                              in the keyspace files already: AMBIGUOUS
//   clean, no lock             applied (or never written): nothing
//   clean, lock, all zeros     nothing written
//   clean, lock, frames then   the writer's log in progress: its frames were
//     only all-zero frames     acknowledged and never applied: replay the frames
//                              before the first all-zero frame
//   clean, lock, no all-zero   the worker's last applied log, or the writer's
//     frame, or frames after   log filled or REUSED (new frames over the frames
//     an all-zero frame        of an earlier, applied use): AMBIGUOUS
//
// Nothing of an ambiguous log is imported unless a rule (--legacy-log) says
// how much of it to replay: migrate never guesses.

import { CountdError, ErrorCodes } from '../errors.js';
import { LEGACY_FRAME_SIZE, MODE_DIRTY } from './legacy-format.js';
import { readChunks } from './read-chunks.js';
import type { LegacyLog } from './scan.js';

export type LogState = 'dirty' | 'interrupted-apply' | 'applied' | 'empty' | 'writer-in-progress' | 'ambiguous';

/** A --legacy-log rule: replay nothing, every frame, or the first N frames. */
export type LogRule = 'skip' | 'all' | number;

export interface LogDecision {
  log: LegacyLog;
  locked: boolean;
  state: LogState;
  /** Whole frames in the file. */
  frames: number;
  /** Frames before the first all-zero frame (all of them if there is none). */
  leading: number;
  /** Frames to replay from the start of the log; 0: nothing. */
  replay: number;
  /** The --legacy-log rule that decided `replay`, if any. */
  rule?: LogRule;
  /** Why, in words, for the report. */
  reason: string;
}

const ZERO_FRAME = Buffer.alloc(LEGACY_FRAME_SIZE);
const FRAMES_PER_CHUNK = 4032;

interface ZeroScan {
  frames: number;
  /** Index of the first all-zero frame, or `frames`. */
  firstZero: number;
  /** A frame with any non-zero byte comes after the first all-zero frame. */
  dataAfterZero: boolean;
  /** Frames with any non-zero byte. */
  data: number;
}

async function scanZeros(log: LegacyLog): Promise<ZeroScan> {
  const out: ZeroScan = { frames: 0, firstZero: -1, dataAfterZero: false, data: 0 };
  for await (const chunk of readChunks(log.path, FRAMES_PER_CHUNK * LEGACY_FRAME_SIZE, log.path)) {
    for (let pos = 0; pos + LEGACY_FRAME_SIZE <= chunk.length; pos += LEGACY_FRAME_SIZE, out.frames++) {
      const zero = chunk.compare(ZERO_FRAME, 0, LEGACY_FRAME_SIZE, pos, pos + LEGACY_FRAME_SIZE) === 0;
      if (!zero) out.data++;
      if (zero && out.firstZero < 0) out.firstZero = out.frames;
      else if (!zero && out.firstZero >= 0) out.dataAfterZero = true;
    }
  }
  if (out.firstZero < 0) out.firstZero = out.frames;
  return out;
}

/** Parse `INDEX=RULE` (RULE: skip, all, or a number of leading frames). */
export function parseLogRule(text: string): { index: number; rule: LogRule } {
  const m = /^(\d{1,10})=(skip|all|\d{1,7})$/.exec(text);
  if (m === null) {
    throw new CountdError(ErrorCodes.INVALID_ARGUMENT, `--legacy-log ${JSON.stringify(text)}: expected INDEX=skip, INDEX=all or INDEX=FRAMES (e.g. 2=all, 0=118)`);
  }
  const rule = m[2] === 'skip' || m[2] === 'all' ? m[2] : Number(m[2]);
  return { index: Number(m[1]), rule };
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** Decide every log of the legacy directory; `rules` (from --legacy-log) override. */
export async function decideLogs(logs: LegacyLog[], locked: ReadonlySet<number>, rules: ReadonlyMap<number, LogRule>): Promise<LogDecision[]> {
  const known = new Set(logs.map((l) => l.index));
  for (const index of rules.keys()) {
    if (!known.has(index)) throw new CountdError(ErrorCodes.INVALID_ARGUMENT, `--legacy-log ${index}=…: the legacy directory has no commit log ${String(index).padStart(10, '0')}`);
  }
  const out: LogDecision[] = [];
  for (const log of logs) {
    const d = await decideLog(log, locked.has(log.index));
    const rule = rules.get(log.index);
    if (rule !== undefined) applyRule(d, rule);
    out.push(d);
  }
  return out;
}

async function decideLog(log: LegacyLog, locked: boolean): Promise<LogDecision> {
  const z = await scanZeros(log);
  const d: LogDecision = { log, locked, state: 'applied', frames: z.frames, leading: z.firstZero, replay: 0, reason: '' };
  const dirty = (log.mode & 0o777) === MODE_DIRTY;
  if (dirty && !locked) {
    d.state = 'dirty';
    d.replay = z.frames;
    d.reason = 'dirty, no lock link: not applied yet; every frame replayed';
  } else if (dirty) {
    d.state = 'interrupted-apply';
    d.reason =
      `dirty with a lock link: the original's worker was applying it when it stopped, so some of its ${plural(z.data, 'frame')} ` +
      'may already be in the keyspace files and others not; which cannot be told from the files. Nothing imported from it ' +
      `(--legacy-log ${log.index}=all replays every frame, as the original's worker would on restart)`;
  } else if (!locked) {
    d.state = 'applied';
    d.reason = 'clean, no lock link: applied by the worker (or never written); not replayed';
  } else if (z.firstZero === 0 && !z.dataAfterZero) {
    d.state = 'empty';
    d.reason = 'clean with a lock link, all zeros: nothing was written to it';
  } else if (!z.dataAfterZero && z.firstZero < z.frames) {
    d.state = 'writer-in-progress';
    d.replay = z.firstZero;
    d.reason =
      `clean with a lock link, ${plural(z.firstZero, 'frame')} then zeros: the writer's log in progress (the original marks a log dirty only when full), ` +
      `acknowledged and never applied; the ${plural(z.firstZero, 'frame')} before the first all-zero frame replayed`;
  } else {
    d.state = 'ambiguous';
    d.reason = z.dataAfterZero
      ? `clean with a lock link, and frames after an all-zero frame (at frame ${z.firstZero}): where the writer's new frames end cannot be told. Nothing imported from it`
      : `clean with a lock link and full of frames (${z.frames}): either the last log the original's worker applied (nothing to import: the usual case) ` +
        'or a log its writer filled or reused (new frames over those of an earlier, applied use: where they end cannot be told). Nothing imported from it';
    d.reason += ` (--legacy-log ${log.index}=FRAMES replays its first FRAMES frames, ${log.index}=all every frame)`;
  }
  return d;
}

function applyRule(d: LogDecision, rule: LogRule): void {
  if (typeof rule === 'number' && rule > d.frames) {
    throw new CountdError(ErrorCodes.INVALID_ARGUMENT, `--legacy-log ${d.log.index}=${rule}: log ${d.log.name} has only ${plural(d.frames, 'frame')}`);
  }
  d.rule = rule;
  d.replay = rule === 'skip' ? 0 : rule === 'all' ? d.frames : rule;
  d.reason = `${d.state} (${d.reason.split(':')[0]}); --legacy-log ${d.log.index}=${rule}: ${d.replay === 0 ? 'nothing replayed' : `first ${plural(d.replay, 'frame')} replayed`}`;
}

/** Ambiguous states import nothing unless a rule says otherwise: they are reported loudly. */
export function isAmbiguous(d: LogDecision): boolean {
  return (d.state === 'ambiguous' || d.state === 'interrupted-apply') && d.rule === undefined;
}
