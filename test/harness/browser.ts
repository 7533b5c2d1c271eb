// Headless Chromium for the console's tests, screenshots and bench: the
// Debian package `chromium` (the system browser, no download), driven by
// playwright-core, with a fresh profile each launch. A missing browser is
// an error that says how to install it: the browser tests must never pass
// by not running.

import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.COUNTD_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  /** Console messages of type error and uncaught page errors, from every page of the context. */
  errors: string[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/** Launch Chromium; rejects with installation instructions when it is not installed. */
export async function launchBrowser(options: { executablePath?: string; viewport?: { width: number; height: number } } = {}): Promise<Browser> {
  const executablePath = options.executablePath ?? CHROMIUM;
  if (!existsSync(executablePath)) {
    throw new Error(
      `Chromium is not installed (no ${executablePath}): the console's browser tests need it. ` +
        'Install it with `apt-get update && apt-get install -y chromium` (.ci/run does this), or point COUNTD_CHROMIUM at a Chromium binary.',
    );
  }
  const userDataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: options.viewport ?? { width: 1280, height: 900 },
    });
  } catch (err) {
    await fsp.rm(userDataDir, { recursive: true, force: true });
    throw err;
  }
  const errors: string[] = [];
  const watch = (page: Page): void => {
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console error on ${page.url()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page error on ${page.url()}: ${e.message}`));
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  return {
    context,
    errors,
    async newPage() {
      return context.newPage();
    },
    async close() {
      await context.close().catch(() => {});
      await fsp.rm(userDataDir, { recursive: true, force: true });
    },
  };
}
