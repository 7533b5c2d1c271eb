// Wakes an idle worker as soon as a commit log is handed over, instead of at
// its next poll (pollMs): an inotify watch (fs.watch) on the pool directory.
// A hand-over ends with the unlink of the writer's lock-<i>
// (docs/commit-log-format.md, "Writing a log"), the moment the log can be
// claimed, so only lock names wake it. The watch is open only while the
// worker is idle: under load, when it is never idle, the writers' appends to
// the logs cost the store process no events. Polling goes on regardless
// (a hand-over between the last claim and the watch's start, a file system
// without inotify).

import fs from 'node:fs';
import type { Logger } from '../../util/log.js';

export class PoolWatch {
  #watcher: fs.FSWatcher | null = null;
  #failed = false;

  constructor(
    readonly dir: string,
    readonly wake: () => void,
    readonly logger: Logger,
  ) {}

  /** Watch until stop(): wake() when a lock link is made or removed. */
  start(): void {
    if (this.#watcher !== null || this.#failed) return;
    try {
      const watcher = fs.watch(this.dir, { persistent: false }, (event, name) => {
        if (event === 'rename' && name !== null && String(name).startsWith('lock-')) this.wake();
      });
      watcher.on('error', (err) => this.#giveUp(err));
      this.#watcher = watcher;
    } catch (err) {
      this.#giveUp(err);
    }
  }

  stop(): void {
    this.#watcher?.close();
    this.#watcher = null;
  }

  /** No watch on this directory (an error once): the worker polls alone. */
  #giveUp(err: unknown): void {
    this.stop();
    this.#failed = true;
    this.logger.debug('cannot watch the commit-log pool; polling only', { error: (err as Error).message });
  }
}
