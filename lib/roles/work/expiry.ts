// The worker's expiry of old periods (`countd create --window … --keep N`):
// about once a second, every period older than its keyspace's --keep is
// deleted (Store#expirePeriods: one small atomic batch, the records cleared in
// the background, as a keyspace delete). Reads never see an expired period
// whatever the delay (they choose periods by the clock and refuse --ago past
// --keep: lib/store/periods.ts), so the delay only bounds disk use. A late
// write to an old period (a log applied after its period expired) makes it
// again; the next round deletes it.

import type { Store } from '../../store/store.js';
import type { Logger } from '../../util/log.js';

export const EXPIRY_EVERY_MS = 1000;

export class PeriodExpiry {
  #last = 0;
  readonly #everyMs: number;
  readonly #now: () => number;

  constructor(options: { everyMs?: number; now?: () => number } = {}) {
    this.#everyMs = options.everyMs ?? EXPIRY_EVERY_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Expire what is due, at most once per `everyMs`. Never throws: a failure is logged and tried again next round (a failing database fails the applies too). */
  async tick(store: Store, logger: Logger): Promise<void> {
    const now = this.#now();
    if (now - this.#last < this.#everyMs) return;
    this.#last = now;
    try {
      const expired = await store.expirePeriods(now);
      if (expired > 0) logger.debug('expired periods of windowed keyspaces', { periods: expired });
    } catch (err) {
      logger.warn('expiring old periods failed; retried in a second', { error: err instanceof Error ? err.message : String(err) });
    }
  }
}
