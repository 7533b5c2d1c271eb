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
