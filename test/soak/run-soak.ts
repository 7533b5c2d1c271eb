// What every soak script does around its loop: a fresh temp root, the
// daemons killed whatever happens, the data removed on success and kept
// (and named) on failure, exit code 0 or 1, and an error reported in one
// line after killing the daemons.

import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killAllDaemons } from '../harness/daemon.js';

/** Run `body` in a new temp directory named `prefix…`; it resolves to true when the soak found a violation. Exits the process. */
export function runSoak(program: string, prefix: string, body: (root: string) => Promise<boolean>): void {
  const main = async (): Promise<number> => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
    let failed = false;
    try {
      failed = await body(root);
    } finally {
      await killAllDaemons();
      if (!failed) await fsp.rm(root, { recursive: true, force: true });
      else process.stdout.write(`data kept in ${root}\n`);
    }
    return failed ? 1 : 0;
  };
  main().then(
    (code) => process.exit(code),
    async (err: unknown) => {
      await killAllDaemons();
      process.stderr.write(`${program}: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
