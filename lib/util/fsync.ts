// Durability helpers for directories and small metadata files.

import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** fsync a directory, so that entries created, renamed or removed in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

let tempCounter = 0;

/** Replace `file` with `data` atomically and durably: temp file, fsync, rename, fsync dir. */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  // Unique per call, so concurrent writers (in this process or others) never share a temp file.
  const tmp = `${file}.tmp-${process.pid}-${++tempCounter}`;
  const fh = await fsp.open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  await fsyncDir(path.dirname(file));
}

/** The directory operations mkdirDurable needs (a commit-log FileOps has them; tests inject faults through one). */
export interface DirOps {
  /** mkdir -p. */
  mkdir(dir: string): Promise<void>;
  fsyncDir(dir: string): Promise<void>;
  stat(file: string): Promise<unknown>;
}

export const realDirOps: DirOps = {
  mkdir: async (dir) => {
    await fsp.mkdir(dir, { recursive: true });
  },
  fsyncDir,
  stat: (file) => fsp.stat(file),
};

/**
 * Create `dir` and its missing parents, then fsync the parent of each
 * directory created, top down: until its parent is fsynced, a new
 * directory's name can vanish in a power cut, and with it everything made
 * durable inside it. Directories that exist already cost one stat.
 */
export async function mkdirDurable(dir: string, ops: DirOps = realDirOps): Promise<void> {
  const missing: string[] = [];
  for (let d = path.resolve(dir); ; ) {
    try {
      await ops.stat(d);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    missing.unshift(d);
    const up = path.dirname(d);
    if (up === d) break;
    d = up;
  }
  if (missing.length === 0) return;
  await ops.mkdir(dir);
  for (const d of missing) await ops.fsyncDir(path.dirname(d));
}
