// Every file operation of the commit log goes through a FileOps, so that
// tests can substitute a layer that injects faults (EIO, ENOSPC) or
// simulates a power loss by dropping writes that were never fsynced
// (test/commitlog/fault-fileops.ts). The default is the real file system.
// Errors are the raw Node errors (with .code); callers translate them with
// translateFsError at their boundary.

import fs from 'node:fs';
import { promisify } from 'node:util';

export interface FileStat {
  /** Full st_mode; `mode & 0o7777` gives the permission bits that carry log state. */
  mode: number;
  size: number;
  ctimeMs: number;
  /** Last write to its data: unchanged by chmod, link and unlink (a commit log's use, commitlog/backlog.ts). */
  mtimeMs: number;
  ino: number;
  nlink: number;
}

export interface FileOps {
  /** open(2); returns a file descriptor. */
  open(path: string, flags: number, mode?: number): Promise<number>;
  close(fd: number): Promise<void>;
  /**
   * One positional write of all buffers (pwritev(2)); returns the bytes
   * written (may be short). `inline`: a hint that the caller wants the call
   * made synchronously on the caller's thread (see "inline" below); a layer may ignore it.
   */
  pwritev(fd: number, buffers: Buffer[], position: number, inline?: boolean): Promise<number>;
  /** One positional read; returns the bytes read. */
  pread(fd: number, target: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** fdatasync(2); `inline` as for pwritev. */
  fdatasync(fd: number, inline?: boolean): Promise<void>;
  fsync(fd: number): Promise<void>;
  /** The whole content of a file. */
  readFile(path: string): Promise<Buffer>;
  stat(path: string): Promise<FileStat>;
  link(existingPath: string, newPath: string): Promise<void>;
  unlink(path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  rename(oldPath: string, newPath: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  mkdir(dir: string): Promise<void>;
  realpath(path: string): Promise<string>;
  /** fsync a directory, making the names created, renamed or removed in it durable. */
  fsyncDir(dir: string): Promise<void>;
}

const fsOpen = promisify(fs.open) as (path: string, flags: number, mode?: number) => Promise<number>;
const fsClose = promisify(fs.close);
const fsWritev = promisify(fs.writev) as unknown as (fd: number, buffers: Buffer[], position: number) => Promise<number>;
const fsRead = promisify(fs.read) as unknown as (fd: number, buffer: Buffer, offset: number, length: number, position: number) => Promise<number>;
const fsFdatasync = promisify(fs.fdatasync);
const fsFsync = promisify(fs.fsync);

// fs.writev and fs.read resolve (via promisify's custom hooks) to objects on
// some versions; normalize to a byte count.
function bytes(result: unknown): number {
  if (typeof result === 'number') return result;
  const r = result as { bytesWritten?: number; bytesRead?: number };
  return r.bytesWritten ?? r.bytesRead ?? 0;
}

// "inline": the call is made synchronously on the caller's thread and the
// promise is already settled when returned. A threadpool call costs two
// thread hand-offs and an event-loop wake-up (tens of µs on a busy machine),
// which is as much as the disk itself for a small commit; the writer asks for
// inline calls where nothing else could use the event loop meanwhile
// (docs/commit-log-format.md, "Writing a log").
function settled<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

/** The real file system. */
export const realFileOps: FileOps = {
  open: (path, flags, mode) => fsOpen(path, flags, mode),
  close: (fd) => fsClose(fd),
  pwritev: (fd, buffers, position, inline) =>
    inline ? settled(() => fs.writevSync(fd, buffers, position)) : fsWritev(fd, buffers, position).then(bytes),
  pread: async (fd, target, offset, length, position) => bytes(await fsRead(fd, target, offset, length, position)),
  fdatasync: (fd, inline) => (inline ? settled(() => fs.fdatasyncSync(fd)) : fsFdatasync(fd)),
  fsync: (fd) => fsFsync(fd),
  readFile: (path) => fs.promises.readFile(path),
  stat: async (path) => {
    const s = await fs.promises.stat(path);
    return { mode: s.mode, size: s.size, ctimeMs: s.ctimeMs, mtimeMs: s.mtimeMs, ino: s.ino, nlink: s.nlink };
  },
  link: (a, b) => fs.promises.link(a, b),
  unlink: (p) => fs.promises.unlink(p),
  chmod: (p, mode) => fs.promises.chmod(p, mode),
  rename: (a, b) => fs.promises.rename(a, b),
  readdir: (dir) => fs.promises.readdir(dir),
  mkdir: async (dir) => {
    await fs.promises.mkdir(dir, { recursive: true });
  },
  realpath: (p) => fs.promises.realpath(p),
  fsyncDir: async (dir) => {
    const fd = await fsOpen(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      await fsFsync(fd);
    } finally {
      await fsClose(fd);
    }
  },
};

/** Write all of `buffers` at `position`, repeating on short writes (rare: the common case is one pwritev). */
export async function pwriteAll(ops: FileOps, fd: number, buffers: Buffer[], position: number, inline = false): Promise<void> {
  let total = 0;
  for (const b of buffers) total += b.length;
  let written = await ops.pwritev(fd, buffers, position, inline);
  while (written < total) {
    if (written <= 0) throw Object.assign(new Error('pwritev wrote nothing'), { code: 'EIO' });
    // Drop what was written and continue with the rest.
    let skip = written;
    const rest: Buffer[] = [];
    for (const b of buffers) {
      if (skip >= b.length) skip -= b.length;
      else {
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    position += written;
    total -= written;
    buffers = rest;
    written = await ops.pwritev(fd, buffers, position, inline);
  }
}
