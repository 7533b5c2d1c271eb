// Every error countd raises to a caller carries a stable code (documented in
// README.md, "Error codes") and, where it wraps a lower-level failure, a
// `cause`. Storage and system errors are translated into these codes at one
// boundary per subsystem (see translateFsError below and store/errors.ts).

export const ErrorCodes = {
  /** An argument to a public API or a CLI flag is invalid. */
  INVALID_ARGUMENT: 'COUNTD_INVALID_ARGUMENT',
  /** A write frame or read request violates docs/protocol.md. */
  BAD_FRAME: 'COUNTD_BAD_FRAME',
  /** On-disk data failed a checksum or a structural check. */
  CORRUPTION: 'COUNTD_CORRUPTION',
  /** A file-system or device error (EIO and friends). */
  IO_ERROR: 'COUNTD_IO_ERROR',
  /** The disk is full (ENOSPC, EDQUOT). */
  NO_SPACE: 'COUNTD_NO_SPACE',
  /** A resource (database, data directory, log) is held by another process. */
  LOCKED: 'COUNTD_LOCKED',
  /** The data directory was created with other settings or another format version. */
  DATA_DIR_MISMATCH: 'COUNTD_DATA_DIR_MISMATCH',
  /** The data directory belongs to the original countd: use `countd migrate`. */
  LEGACY_DATA_DIR: 'COUNTD_LEGACY_DATA_DIR',
  /** The data directory does not exist or is not a countd data directory. */
  NO_DATA_DIR: 'COUNTD_NO_DATA_DIR',
  /** No daemon is running on the data directory (or at the given address). */
  NOT_RUNNING: 'COUNTD_NOT_RUNNING',
  /** A daemon already runs on the data directory. */
  ALREADY_RUNNING: 'COUNTD_ALREADY_RUNNING',
  /** The connection to a server failed or was lost before a reply. */
  CONNECTION: 'COUNTD_CONNECTION',
  /** The server answered BAD (write) or n = -1 (read): the request was malformed. */
  REJECTED: 'COUNTD_REJECTED',
  /** The server answered ERR: it could not make the write durable. */
  SERVER_ERROR: 'COUNTD_SERVER_ERROR',
  /** A page length above the server's page limit (n = -2). */
  PAGE_TOO_LARGE: 'COUNTD_PAGE_TOO_LARGE',
  /** The database (LevelDB) failed. */
  DATABASE: 'COUNTD_DATABASE',
  /** The object was closed, or the server is shutting down. */
  CLOSED: 'COUNTD_CLOSED',
  /** A migration found a problem it may not skip (with --strict), or verification failed. */
  MIGRATE: 'COUNTD_MIGRATE',
  /** The key asked for (get, rank, around) does not exist in the keyspace; or no such HTTP API path, keyspace or commit log. */
  NOT_FOUND: 'COUNTD_NOT_FOUND',
  /** An HTTP request other than GET: the console and its API are read-only (405). */
  READ_ONLY: 'COUNTD_READ_ONLY',
  /** Cluster mode: NATS JetStream did not accept or answer in time (the write was not acknowledged). */
  CLUSTER: 'COUNTD_CLUSTER',
  /** The process may not open commit logs whatever their mode bits: not root, no CAP_DAC_OVERRIDE. */
  PERMISSION: 'COUNTD_PERMISSION',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class CountdError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CountdError';
    this.code = code;
  }
}

export function isCountdError(err: unknown, code?: ErrorCode): err is CountdError {
  return err instanceof CountdError && (code === undefined || err.code === code);
}

export function invalidArgument(message: string): CountdError {
  return new CountdError(ErrorCodes.INVALID_ARGUMENT, message);
}

/** The errno code of a Node system error, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Translate a file-system error into a CountdError. `what` says what was
 * being done, e.g. "fsync commit log /d/commitlog/0000000003".
 */
export function translateFsError(err: unknown, what: string): CountdError {
  if (err instanceof CountdError) return err;
  const errno = errnoCode(err);
  const detail = err instanceof Error ? err.message : String(err);
  switch (errno) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new CountdError(ErrorCodes.NO_SPACE, `${what}: disk full (${errno})`, { cause: err });
    case 'EACCES':
    case 'EPERM':
      return new CountdError(ErrorCodes.IO_ERROR, `${what}: permission denied (${errno})`, { cause: err });
    default:
      return new CountdError(ErrorCodes.IO_ERROR, `${what}: ${detail}`, { cause: err });
  }
}
