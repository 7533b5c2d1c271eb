// The one boundary where LevelDB (classic-level / abstract-level) errors
// become CountdErrors. abstract-level wraps the native error (e.g. an open
// failure is LEVEL_DATABASE_NOT_OPEN whose cause is LEVEL_LOCKED), so the
// whole cause chain is searched for the codes that matter.

import { CountdError, ErrorCodes } from '../errors.js';

function chainCodes(err: unknown): string[] {
  const codes: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 8; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    cur = (cur as { cause?: unknown }).cause;
  }
  return codes;
}

function innermostMessage(err: unknown): string {
  let msg = err instanceof Error ? err.message : String(err);
  let cur: unknown = err;
  for (let depth = 0; cur && depth < 8; depth++) {
    if (cur instanceof Error && cur.message) msg = cur.message;
    cur = (cur as { cause?: unknown }).cause;
  }
  return msg;
}

/**
 * Translate an error from the database. `what` says what was being done
 * ("apply", "open"); `location` is the database directory.
 */
export function translateDbError(err: unknown, what: string, location: string): CountdError {
  if (err instanceof CountdError) return err;
  const codes = chainCodes(err);
  if (codes.includes('LEVEL_LOCKED')) {
    return new CountdError(ErrorCodes.LOCKED, `database ${location} is in use by another process (is a countd daemon running?)`, { cause: err });
  }
  if (codes.includes('LEVEL_CORRUPTION')) {
    return new CountdError(ErrorCodes.CORRUPTION, `database ${location} is corrupt (${what}): ${innermostMessage(err)}`, { cause: err });
  }
  // LevelDB reports a full disk as an IO error whose text is strerror(ENOSPC) or strerror(EDQUOT).
  if (/No space left on device|Disk quota exceeded/.test(innermostMessage(err))) {
    return new CountdError(ErrorCodes.NO_SPACE, `database ${location}: ${what} failed, disk full: ${innermostMessage(err)}`, { cause: err });
  }
  if (codes.includes('LEVEL_DATABASE_NOT_OPEN') && what !== 'open') {
    return new CountdError(ErrorCodes.CLOSED, `database ${location} is closed (${what})`, { cause: err });
  }
  return new CountdError(ErrorCodes.DATABASE, `database ${location}: ${what} failed: ${innermostMessage(err)}`, { cause: err });
}

/** A structural problem the store found in its own records. */
export function corruption(location: string, message: string): CountdError {
  return new CountdError(ErrorCodes.CORRUPTION, `database ${location} is corrupt: ${message}`);
}
