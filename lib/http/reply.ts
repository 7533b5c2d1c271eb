// How the HTTP server answers (docs/http-api.md, "Errors"): JSON bodies
// with counts as decimal strings (they are signed 64-bit, past what a
// JavaScript number holds exactly), and every error as
// {"error": {"code": "COUNTD_…", "message": "…"}} with an HTTP status that
// follows from the code. Never a stack trace.

import type http from 'node:http';
import { CountdError, ErrorCode, ErrorCodes, isCountdError } from '../errors.js';

const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.INVALID_ARGUMENT]: 400,
  [ErrorCodes.PAGE_TOO_LARGE]: 400,
  [ErrorCodes.NOT_FOUND]: 404,
  [ErrorCodes.READ_ONLY]: 405,
  [ErrorCodes.CONNECTION]: 503,
  [ErrorCodes.CLOSED]: 503,
  [ErrorCodes.NOT_RUNNING]: 503,
};

/** The HTTP status of an error: by its code, 500 for anything unexpected. */
export function statusOf(err: unknown): number {
  return isCountdError(err) ? (STATUS_OF[err.code] ?? 500) : 500;
}

/** JSON.stringify with bigints as decimal strings. */
export function toJson(body: unknown): string {
  return JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = toJson(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(text);
}

export function sendError(res: http.ServerResponse, err: unknown, extraHeaders: Record<string, string> = {}): void {
  const e = isCountdError(err) ? err : new CountdError(ErrorCodes.IO_ERROR, `internal error: ${(err as Error)?.message ?? String(err)}`);
  for (const [k, v] of Object.entries(extraHeaders)) res.setHeader(k, v);
  sendJson(res, statusOf(e), { error: { code: e.code, message: e.message } });
}

export function notFound(what: string): CountdError {
  return new CountdError(ErrorCodes.NOT_FOUND, what);
}
