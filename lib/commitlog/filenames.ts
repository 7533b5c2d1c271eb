// Every name inside <data-dir>/commitlog/ is built and parsed here, and
// nowhere else (docs/commit-log-format.md, "Files of the pool").
//
//   0000000003                    log 3 (10-digit zero-padded index)
//   lock-0000000003               hard link to log 3: whoever created it owns the log
//   owner-0000000003              {pid, start, boot} of the owner, written right after linking
//   owner-0000000003.tmp-<pid>    the owner file being written (then renamed)
//   new-<pid>-<hex>.tmp           a log being preallocated (then linked to its index name)

export const LOG_INDEX_DIGITS = 10;
export const MAX_LOG_INDEX = 9_999_999_999;

const LOCK_PREFIX = 'lock-';
const OWNER_PREFIX = 'owner-';

export type PoolName =
  | { kind: 'log'; index: number }
  | { kind: 'lock'; index: number }
  | { kind: 'owner'; index: number }
  /** A temporary file of process `pid` (owner file being written, log being preallocated). */
  | { kind: 'temp'; pid: number }
  | { kind: 'unknown' };

function indexDigits(index: number): string {
  if (!Number.isSafeInteger(index) || index < 0 || index > MAX_LOG_INDEX) {
    throw new RangeError(`commit log index out of range: ${String(index)}`);
  }
  return String(index).padStart(LOG_INDEX_DIGITS, '0');
}

export function logName(index: number): string {
  return indexDigits(index);
}

export function lockName(index: number): string {
  return LOCK_PREFIX + indexDigits(index);
}

export function ownerName(index: number): string {
  return OWNER_PREFIX + indexDigits(index);
}

export function ownerTempName(index: number, pid: number): string {
  return `${OWNER_PREFIX}${indexDigits(index)}.tmp-${pid}`;
}

export function newLogTempName(pid: number, nonce: string): string {
  return `new-${pid}-${nonce}.tmp`;
}

const LOG_RE = /^\d{10}$/;
const LOCK_RE = /^lock-(\d{10})$/;
const OWNER_RE = /^owner-(\d{10})$/;
const OWNER_TEMP_RE = /^owner-\d{10}\.tmp-(\d+)$/;
const NEW_LOG_TEMP_RE = /^new-(\d+)-[0-9a-f]+\.tmp$/;

/** Classify one directory entry of the pool. */
export function parsePoolName(name: string): PoolName {
  if (LOG_RE.test(name)) return { kind: 'log', index: Number(name) };
  let m = LOCK_RE.exec(name);
  if (m) return { kind: 'lock', index: Number(m[1]) };
  m = OWNER_RE.exec(name);
  if (m) return { kind: 'owner', index: Number(m[1]) };
  m = OWNER_TEMP_RE.exec(name) ?? NEW_LOG_TEMP_RE.exec(name);
  if (m) return { kind: 'temp', pid: Number(m[1]) };
  return { kind: 'unknown' };
}

/** The index of a log from its file name (a path's last component), or null if it is not a log name. */
export function parseLogName(name: string): number | null {
  const parsed = parsePoolName(name);
  return parsed.kind === 'log' ? parsed.index : null;
}
