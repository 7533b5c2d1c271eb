// The console's only data source: the JSON API (docs/http-api.md).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** GET /api/v1/<path>?<params>; rejects with an ApiError carrying the COUNTD_* code. */
export async function api(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const qs = q.toString();
  let res;
  try {
    res = await fetch(`/api/v1/${path}${qs ? `?${qs}` : ''}`, { headers: { accept: 'application/json' } });
  } catch (err) {
    throw new ApiError(0, 'COUNTD_CONNECTION', `the daemon does not answer (${err.message}); is it still running?`);
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const e = body && body.error;
    throw new ApiError(res.status, e ? e.code : 'COUNTD_IO_ERROR', e ? e.message : `HTTP ${res.status}`);
  }
  return body;
}
