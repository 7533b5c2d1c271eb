// Where a light-load write's time to readable goes, seen from outside the
// daemon: an inotify watch (fs.watch) on the commit-log pool timestamps
// each log's hand-over (mode 0400: dirty), the writer's unlock (its lock-<i>
// link goes: the hand-over's fsync done), the worker's claim (a lock-<i>
// link again) and its release after the apply (mode 0200: clean). The
// benchmark pairs a write with the first log handed over after its WIN.

import fs from 'node:fs';
import path from 'node:path';
import { parsePoolName } from '../../lib/commitlog/filenames.js';

export interface LogPhases {
  dirtyAt: number;
  /** The writer's lock removed: the hand-over's fsync and unlock done, the log claimable. */
  unlockedAt?: number;
  claimedAt?: number;
  cleanAt?: number;
}

export class PoolPhases {
  readonly #watcher: fs.FSWatcher;
  /** Hand-overs seen, oldest first (a log used again is a new entry). */
  readonly uses: Array<LogPhases & { index: number }> = [];
  readonly #open = new Map<number, LogPhases & { index: number }>();

  constructor(readonly dir: string) {
    this.#watcher = fs.watch(dir, (_event, name) => {
      if (name !== null) this.#seen(String(name), performance.now());
    });
  }

  #seen(name: string, at: number): void {
    const p = parsePoolName(name);
    if (p.kind === 'lock') {
      const use = this.#open.get(p.index);
      if (use === undefined || use.claimedAt !== undefined) return;
      if (!fs.existsSync(path.join(this.dir, name))) use.unlockedAt ??= at;
      else if (use.unlockedAt !== undefined) use.claimedAt = at;
      return;
    }
    if (p.kind !== 'log') return;
    let mode: number;
    try {
      mode = fs.statSync(path.join(this.dir, name)).mode & 0o777;
    } catch {
      return;
    }
    const use = this.#open.get(p.index);
    if (mode === 0o400 && use === undefined) {
      const fresh = { index: p.index, dirtyAt: at };
      this.#open.set(p.index, fresh);
      this.uses.push(fresh);
    } else if (mode === 0o200 && use !== undefined) {
      use.cleanAt = at;
      this.#open.delete(p.index);
    }
  }

  /** The first use handed over at or after `at`. */
  after(at: number): (LogPhases & { index: number }) | undefined {
    return this.uses.find((u) => u.dirtyAt >= at);
  }

  close(): void {
    this.#watcher.close();
  }
}
