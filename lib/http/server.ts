// The HTTP server of `countd start --http-port` (docs/http-api.md): on one
// port, bound to --listen, the console at /, its JSON API at /api/v1/ and
// Prometheus text at /metrics. Read-only: every method but GET is answered
// 405 (COUNTD_READ_ONLY) before anything else is looked at.
//
// It runs in the supervisor, which hands it the summed metrics of every
// process (supervisor.ts, HttpHook); reads go to the store child's read
// port like any client's. Dependencies point one way: this module uses the
// client, the commit-log pool and the metrics; nothing below uses it.

import http from 'node:http';
import net from 'node:net';
import { prometheusContentType } from 'prom-client';
import { packageVersion } from '../util/version.js';
import { CountdError, ErrorCodes } from '../errors.js';
import type { HttpHookContext } from '../daemon/supervisor.js';
import { API_PREFIX, Api } from './api.js';
import { History, startSampler } from './history.js';
import { notFound, sendError, sendJson } from './reply.js';
import { StaticSite, loadStaticSite } from './static-files.js';

export interface HttpServerHandle {
  port: number;
  close(): Promise<void>;
}

/** Start the server; rejects with COUNTD_IO_ERROR when it cannot listen. */
export async function startHttpServer(ctx: HttpHookContext): Promise<HttpServerHandle> {
  const site = await loadStaticSite();
  const history = new History();
  const sampler = startSampler(history, ctx.metricsJson, ctx.dataDir.paths.commitlog);
  let port = 0;
  const api = new Api({ dataDir: ctx.dataDir, daemon: ctx.daemon, httpPort: () => port, version: packageVersion(), history });
  const server = http.createServer((req, res) => {
    handle(req, res, { site, api, ctx }).catch((err: unknown) => sendError(res, err));
  });
  server.keepAliveTimeout = 5000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ctx.port, ctx.listen, () => resolve());
    });
  } catch (err) {
    sampler.stop();
    await api.close();
    throw new CountdError(ErrorCodes.IO_ERROR, `HTTP server cannot listen on ${ctx.listen}:${ctx.port}: ${(err as Error).message}`, { cause: err });
  }
  port = (server.address() as net.AddressInfo).port;
  ctx.logger.info('console and API listening', { url: `http://${urlHost(ctx.listen)}:${port}/` });
  return {
    port,
    async close() {
      sampler.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await api.close();
    },
  };
}

interface Parts {
  site: StaticSite;
  api: Api;
  ctx: HttpHookContext;
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, { site, api, ctx }: Parts): Promise<void> {
  if (req.method !== 'GET') {
    sendError(res, new CountdError(ErrorCodes.READ_ONLY, `${req.method ?? 'this method'} is not allowed: the console and its API are read-only (GET only)`), {
      allow: 'GET',
    });
    return;
  }
  if (!hostAllowed(req.headers.host, ctx.listen)) {
    sendError(
      res,
      new CountdError(
        ErrorCodes.INVALID_ARGUMENT,
        `Host ${JSON.stringify(req.headers.host ?? '')} is not an address of this server: use its IP address, localhost or the --listen name (a guard against DNS rebinding)`,
      ),
    );
    return;
  }
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://countd.invalid');
  } catch {
    sendError(res, new CountdError(ErrorCodes.INVALID_ARGUMENT, 'malformed request URL'));
    return;
  }
  const p = url.pathname;
  if (p === '/metrics') {
    const text = await ctx.metricsText();
    res.writeHead(200, { 'content-type': prometheusContentType, 'cache-control': 'no-store' }).end(text);
    return;
  }
  if (p.startsWith(API_PREFIX)) {
    sendJson(res, 200, await api.handle(p.slice(API_PREFIX.length), url.searchParams));
    return;
  }
  const file = site.files.get(p);
  if (file === undefined) throw notFound(`no page ${p}: the console is at /, its API at ${API_PREFIX} (docs/http-api.md)`);
  if (req.headers['if-none-match'] === file.etag) {
    res.writeHead(304, { etag: file.etag }).end();
    return;
  }
  res.writeHead(200, {
    'content-type': file.type,
    'content-length': file.body.length,
    etag: file.etag,
    'cache-control': 'no-cache',
    'content-security-policy': site.csp,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
  });
  res.end(file.body);
}

/**
 * A web page elsewhere could point a DNS name of its own at 127.0.0.1 and
 * read this server from its visitors' browsers (DNS rebinding). Such
 * requests carry that name in Host: only IP literals, localhost and the
 * --listen name are served.
 */
export function hostAllowed(host: string | undefined, listen: string): boolean {
  if (host === undefined) return true; // HTTP/1.0 without Host: not a browser
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d*$/, '');
  return net.isIP(name) !== 0 || name === 'localhost' || name.toLowerCase() === listen.toLowerCase();
}

function urlHost(listen: string): string {
  const host = listen === '0.0.0.0' || listen === '::' ? '127.0.0.1' : listen;
  return host.includes(':') ? `[${host}]` : host;
}
