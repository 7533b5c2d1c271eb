// How the CLI reports an error: one line `countd: <message>` on stderr and an
// exit code (2 for usage errors, 1 otherwise); the stack only with --debug.
// Every COUNTD_* code gets its wording here, in one place.

import { CountdError, ErrorCode, ErrorCodes } from '../errors.js';
import { escapeName } from '../util/escape.js';
import { UsageError } from '../util/flag-values.js';


/** A key the user asked about does not exist (get, rank, around): exit 1. */
export function notFound(keyspace: Buffer, key: Buffer): CountdError {
  return new CountdError(ErrorCodes.NOT_FOUND, `key ${escapeName(key)} not found in keyspace ${escapeName(keyspace)}`);
}

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * What to add to a CountdError's own message, by code. The message says what
 * happened; the hint says what the user can do about it.
 */
const HINTS: Partial<Record<ErrorCode, string>> = {
  [ErrorCodes.CORRUPTION]: 'the data is damaged; see `countd status` and `countd commitlog <index>`',
  [ErrorCodes.NO_SPACE]: 'free disk space and retry',
  [ErrorCodes.PAGE_TOO_LARGE]: 'ask for a shorter --length, or raise the server\'s --page-limit',
};

/** The exit code for an error. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT_USAGE;
  if (isYargsError(err)) return EXIT_USAGE;
  if (err instanceof CountdError && err.code === ErrorCodes.INVALID_ARGUMENT) return EXIT_USAGE;
  return EXIT_FAILURE;
}

/** The one line (without the `countd: ` prefix) that tells the user what went wrong. */
export function userMessage(err: unknown): string {
  if (err instanceof UsageError || isYargsError(err)) return oneLine(`${(err as Error).message} (see --help)`);
  if (err instanceof CountdError) {
    const hint = HINTS[err.code];
    return oneLine(hint ? `${err.message}: ${hint}` : err.message);
  }
  if (err instanceof Error) return oneLine(`internal error: ${err.message} (run with --debug for details)`);
  return oneLine(`internal error: ${String(err)}`);
}

/** Print an error the CLI way and return its exit code. */
export function reportError(err: unknown, program: string, debug: boolean): number {
  let text = `${program}: ${userMessage(err)}\n`;
  if (debug && err instanceof Error && err.stack) {
    text += err.stack + '\n';
    for (let cause = (err as { cause?: unknown }).cause; cause instanceof Error; cause = (cause as { cause?: unknown }).cause) {
      text += `caused by: ${cause.stack ?? cause.message}\n`;
    }
  }
  process.stderr.write(text);
  return exitCodeOf(err);
}

function isYargsError(err: unknown): boolean {
  return err instanceof Error && err.name === 'YError';
}

function oneLine(s: string): string {
  return s.replace(/:?\s*\n\s*/g, (m) => (m.startsWith(':') ? ': ' : '; ')).trim();
}
