// FileOps layers for tests (lib/commitlog/fileops.ts):
//   FaultFileOps      makes chosen operations fail with an errno (EIO, ENOSPC),
//                     or stall forever (an fdatasync the power cut interrupts);
//   powerLoss()       undoes every write that no fsync/fdatasync of its file
//                     has covered, as a power cut would; optionally keeping a
//                     prefix of the last one (a torn write).
// Only file data is modelled: names and modes are treated as durable at once.

import fs from 'node:fs';
import { FileOps, realFileOps } from '../../lib/commitlog/fileops.js';

type OpName = keyof FileOps;

interface Fault {
  op: OpName;
  code: string;
  /** Only operations on paths matching this (fd-based operations use the path the fd was opened with). */
  path?: RegExp;
  /** How many times to fail (default 1); Infinity for always. */
  times: number;
  /** Instead of failing, never settle. */
  stall?: boolean;
}

interface Undo {
  path: string;
  position: number;
  old: Buffer;
  oldSize: number;
  newBytes: number;
}

export class FaultFileOps implements FileOps {
  private readonly base: FileOps;
  private readonly faults: Fault[] = [];
  private readonly fdPaths = new Map<number, string>();
  private undo: Undo[] = [];
  /** Calls seen per operation (for assertions such as "one write, one fdatasync per append"). */
  readonly calls = new Map<OpName, number>();

  constructor(base: FileOps = realFileOps) {
    this.base = base;
  }

  /** Fail the next `times` calls of `op` (on paths matching `path`) with errno `code`. */
  fail(op: OpName, code: string, options: { path?: RegExp; times?: number } = {}): void {
    this.faults.push({ op, code, path: options.path, times: options.times ?? 1 });
  }

  /** Make the next call of `op` never settle (e.g. power is cut during fdatasync). */
  stall(op: OpName, options: { path?: RegExp } = {}): void {
    this.faults.push({ op, code: '', path: options.path, times: 1, stall: true });
  }

  count(op: OpName): number {
    return this.calls.get(op) ?? 0;
  }

  /**
   * Simulate a power cut: undo every write not yet covered by a sync of its
   * file, newest first. With `keepPrefix`, the newest unsynced write keeps
   * its first `keepPrefix` bytes (a torn write).
   */
  powerLoss(keepPrefix = 0): void {
    const pending = this.undo;
    this.undo = [];
    for (let i = pending.length - 1; i >= 0; i--) {
      const u = pending[i]!;
      const keep = i === pending.length - 1 ? Math.min(keepPrefix, u.newBytes) : 0;
      if (!fs.existsSync(u.path)) continue; // renamed or removed since: names are not modelled
      const fd = fs.openSync(u.path, 'r+');
      try {
        fs.writeSync(fd, u.old, keep, u.old.length - keep, u.position + keep);
        if (fs.fstatSync(fd).size > u.oldSize) fs.ftruncateSync(fd, Math.max(u.oldSize, u.position + keep));
      } finally {
        fs.closeSync(fd);
      }
    }
  }

  private async check(op: OpName, file: string | undefined): Promise<void> {
    this.calls.set(op, (this.calls.get(op) ?? 0) + 1);
    const i = this.faults.findIndex((f) => f.op === op && (!f.path || (file !== undefined && f.path.test(file))));
    if (i < 0) return;
    const f = this.faults[i]!;
    if (--f.times <= 0) this.faults.splice(i, 1);
    if (f.stall) await new Promise<never>(() => {});
    throw Object.assign(new Error(`${f.code}: injected fault in ${op} ${file ?? ''}`), { code: f.code });
  }

  private synced(fd: number): void {
    const file = this.fdPaths.get(fd);
    this.undo = this.undo.filter((u) => u.path !== file);
  }

  open = async (path: string, flags: number, mode?: number): Promise<number> => {
    await this.check('open', path);
    const fd = await this.base.open(path, flags, mode);
    this.fdPaths.set(fd, path);
    return fd;
  };
  close = async (fd: number): Promise<void> => {
    await this.check('close', this.fdPaths.get(fd));
    this.fdPaths.delete(fd);
    return this.base.close(fd);
  };
  pwritev = async (fd: number, buffers: Buffer[], position: number): Promise<number> => {
    const file = this.fdPaths.get(fd);
    await this.check('pwritev', file);
    if (file !== undefined) {
      let total = 0;
      for (const b of buffers) total += b.length;
      const oldSize = fs.statSync(file).size;
      const old = Buffer.alloc(total);
      const rfd = fs.openSync(file, 'r');
      try {
        fs.readSync(rfd, old, 0, total, position);
      } finally {
        fs.closeSync(rfd);
      }
      this.undo.push({ path: file, position, old, oldSize, newBytes: total });
    }
    return this.base.pwritev(fd, buffers, position);
  };
  pread = async (fd: number, target: Buffer, offset: number, length: number, position: number): Promise<number> => {
    await this.check('pread', this.fdPaths.get(fd));
    return this.base.pread(fd, target, offset, length, position);
  };
  fdatasync = async (fd: number): Promise<void> => {
    await this.check('fdatasync', this.fdPaths.get(fd));
    await this.base.fdatasync(fd);
    this.synced(fd);
  };
  fsync = async (fd: number): Promise<void> => {
    await this.check('fsync', this.fdPaths.get(fd));
    await this.base.fsync(fd);
    this.synced(fd);
  };
  readFile = async (path: string): Promise<Buffer> => {
    await this.check('readFile', path);
    return this.base.readFile(path);
  };
  stat = async (path: string) => {
    await this.check('stat', path);
    return this.base.stat(path);
  };
  link = async (a: string, b: string): Promise<void> => {
    await this.check('link', b);
    return this.base.link(a, b);
  };
  unlink = async (path: string): Promise<void> => {
    await this.check('unlink', path);
    return this.base.unlink(path);
  };
  chmod = async (path: string, mode: number): Promise<void> => {
    await this.check('chmod', path);
    return this.base.chmod(path, mode);
  };
  rename = async (a: string, b: string): Promise<void> => {
    await this.check('rename', b);
    return this.base.rename(a, b);
  };
  readdir = async (dir: string): Promise<string[]> => {
    await this.check('readdir', dir);
    return this.base.readdir(dir);
  };
  mkdir = async (dir: string): Promise<void> => {
    await this.check('mkdir', dir);
    return this.base.mkdir(dir);
  };
  realpath = async (path: string): Promise<string> => {
    await this.check('realpath', path);
    return this.base.realpath(path);
  };
  fsyncDir = async (dir: string): Promise<void> => {
    await this.check('fsyncDir', dir);
    return this.base.fsyncDir(dir);
  };
}
