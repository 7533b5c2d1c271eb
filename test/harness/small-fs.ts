// A real small file system for disk-full tests: a tmpfs of a given size
// mounted on a directory (tests run as root, as CI does). Mounting that fails
// throws with a clear message: a disk-full test must never pass unrun.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export class SmallFs {
  private constructor(readonly dir: string) {}

  /** Mount a tmpfs of `size` (e.g. "40m") on `dir` (created if missing). */
  static mount(dir: string, size: string): SmallFs {
    fs.mkdirSync(dir, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    } catch (err) {
      const why = ((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim().split('\n')[0];
      throw new Error(`cannot mount a ${size} tmpfs on ${dir} (${why}): this disk-full test needs root and mount(8), as in CI`);
    }
    return new SmallFs(dir);
  }

  /** Bytes free for an unprivileged user. */
  free(): number {
    const s = fs.statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  /** Fill the file system with `name` until `leave` bytes are free. */
  fill(name: string, leave: number): string {
    const file = path.join(this.dir, name);
    fs.writeFileSync(file, Buffer.alloc(Math.max(0, this.free() - leave)));
    return file;
  }

  /** Unmount (lazily if busy). */
  unmount(): void {
    try {
      execFileSync('umount', [this.dir], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', this.dir], { stdio: 'pipe' });
    }
  }
}
