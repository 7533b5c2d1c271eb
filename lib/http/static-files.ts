// The console's files: the page (console/ at the package root: plain ES
// modules, no build step) and the libraries it imports, served from the
// installed npm packages (preact, htm, uplot), never from a CDN: a machine
// running countd may have no internet. Everything is read once, at start.

import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CountdError, ErrorCodes } from '../errors.js';

export interface StaticFile {
  type: string;
  body: Buffer;
  etag: string;
}

/** console/ at the package root (this file is dist/lib/http/static-files.js). */
export const CONSOLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../console');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** URL path under /vendor/ -> [package, file relative to the package's resolved entry directory or root]. */
function vendorFiles(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const root = (pkg: string): string => path.dirname(require.resolve(`${pkg}/package.json`));
  const preact = root('preact');
  const uplot = root('uplot');
  const htmDist = path.dirname(require.resolve('htm'));
  return {
    '/vendor/preact.mjs': path.join(preact, 'dist', 'preact.mjs'),
    '/vendor/preact-hooks.mjs': path.join(preact, 'hooks', 'dist', 'hooks.mjs'),
    '/vendor/htm.mjs': path.join(htmDist, 'htm.mjs'),
    '/vendor/uPlot.esm.js': path.join(uplot, 'dist', 'uPlot.esm.js'),
    '/vendor/uPlot.min.css': path.join(uplot, 'dist', 'uPlot.min.css'),
  };
}

async function consoleFiles(dir: string, prefix = '/'): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) Object.assign(out, await consoleFiles(file, `${prefix}${entry.name}/`));
    else if (TYPES[path.extname(entry.name)]) out[`${prefix}${entry.name}`] = file;
  }
  return out;
}

export interface StaticSite {
  files: Map<string, StaticFile>;
  /** The Content-Security-Policy of the page: its own files only, plus the hash of its inline import map. */
  csp: string;
}

/** Load the console and its libraries; fails with COUNTD_IO_ERROR naming a missing file (a broken install). */
export async function loadStaticSite(dir = CONSOLE_DIR): Promise<StaticSite> {
  const sources = { ...(await consoleFiles(dir).catch(() => ({}))), ...vendorFiles() };
  if (!('/index.html' in sources)) throw new CountdError(ErrorCodes.IO_ERROR, `the console's files are missing: no ${path.join(dir, 'index.html')}`);
  const files = new Map<string, StaticFile>();
  for (const [url, file] of Object.entries(sources)) {
    let body: Buffer;
    try {
      body = await fsp.readFile(file);
    } catch (err) {
      throw new CountdError(ErrorCodes.IO_ERROR, `the console's file ${file} cannot be read (reinstall countd): ${(err as Error).message}`, { cause: err });
    }
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    files.set(url, { type: TYPES[path.extname(file)] ?? 'application/octet-stream', body, etag });
  }
  files.set('/', files.get('/index.html')!);
  return { files, csp: contentSecurityPolicy(files.get('/index.html')!.body.toString('utf8')) };
}

function contentSecurityPolicy(html: string): string {
  const hashes = [...html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)].map(
    (m) => `'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`,
  );
  return [
    "default-src 'self'",
    `script-src 'self' ${hashes.join(' ')}`.trim(),
    // uPlot and the charts set element styles from script.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}
