// Read-your-writes (issue 16, docs/read-protocol-extensions.md "await"): is
// the write acknowledged with token T applied yet?
//
// A token is the commit-log sequence number of a frame (its batch's last
// frame). The worker records, in each apply's atomic batch, the highest
// token of the logs it applied (`token/applied`, producer-marks.ts). That
// alone does not say T is applied: logs are applied by use, not in token
// order (a dead writer's last log is applied after its lock is recovered,
// while its successor's logs go on). So the applied position is
//
//   W = min(applied mark, (the lowest first sequence of any log use not yet applied) - 1)
//
// where a use not yet applied is a log that is dirty (0400) or locked (being
// filled, handed over, or held by a dead process), whose header is a real
// use (streamId not 0: not a claim's placeholder) and whose generation is
// not the log's applied mark. Every frame with a token at most W is applied:
// a frame acknowledged before the mark was read is either applied (then
// within the mark) or in a use the scan that follows sees; a frame
// acknowledged later is in a use the scan sees, or was not acknowledged
// when the request was sent. The mark is read first, then the pool.

import fs from 'node:fs/promises';
import path from 'node:path';
import { HEADER_SIZE, decodeHeader } from '../../commitlog/format.js';
import { lockName, parsePoolName } from '../../commitlog/filenames.js';
import { MODE_DIRTY } from '../../commitlog/pool.js';
import type { FieldSizes } from '../../protocol/fields.js';
import type { ProducerInfo } from '../../protocol/read-response.js';
import { APPLIED_TOKEN_MARK, PRODUCER_MARK_PREFIX, appliedMarkName, decodeProducerMark, encodeAppliedMark } from '../../store/marks.js';
import type { Store } from '../../store/store.js';

export interface TokenService {
  /** Producers with an id above `after`, at most `limit`, in id order. */
  producers(after: bigint, limit: number): Promise<ProducerInfo[]>;
  /** The applied position W (see above). */
  applied(): Promise<bigint>;
  /** Resolves to W once W >= token, or to null after timeoutMs. */
  waitApplied(token: bigint, timeoutMs: number): Promise<bigint | null>;
  /** The worker of this process committed an apply: W may have moved (wakes the waits; wakeOnApply only). */
  changed(): void;
  /** Scans of the database and pool so far, apply events seen, and awaits waiting now (tests and metrics). */
  stats(): { scans: number; changes: number; waiting: number };
}

/** How often waiting requests look again without apply events (one scan shared by all of them). */
const POLL_MS = 20;

export interface TokenServiceOptions {
  /**
   * The worker that applies this pool runs in this process and calls
   * changed() after every apply (daemon/roles.ts): W then moves only at
   * those events, so a wait scans once, then once per event, and returns as
   * soon as the apply that holds its token commits, with no polling. Without
   * it (countd-read, which runs with no worker; in-process tests) waits poll
   * every 20 ms.
   */
  wakeOnApply?: boolean;
}

export function tokenService(store: Pick<Store, 'getMark' | 'listMarks'>, commitlogDir: string, _sizes: FieldSizes, options: TokenServiceOptions = {}): TokenService {
  const events = options.wakeOnApply === true;
  /** Bumped by every apply event: a scan is good for the generation it started in. */
  let generation = 0;
  let scans = 0;
  let scan: { generation: number; position: Promise<Position> } | null = null;
  const wakers = new Set<() => void>();
  const position = (): Promise<Position> => {
    if (scan !== null && scan.generation === generation) return scan.position;
    scans++;
    const current = { generation, position: scanPosition(store, commitlogDir) };
    scan = current;
    // Polling: a scan answers the requests of the next 20 ms. With events, it answers until the next event,
    // unless it met a log it could not read (then it is not trusted beyond the 20 ms either).
    void current.position.then(
      (p) => (!events || p.uncertain ? setTimeout(() => scan === current && (scan = null), POLL_MS).unref() : undefined),
      () => scan === current && (scan = null),
    );
    return current.position;
  };
  const applied = async (): Promise<bigint> => (await position()).w;
  return {
    async producers(after, limit) {
      if (limit < 1) return [];
      const from = after === 0n ? '' : PRODUCER_MARK_PREFIX + after.toString(16).padStart(16, '0');
      const page = await store.listMarks(PRODUCER_MARK_PREFIX, from, limit);
      return page.map(({ name, value }) => decodeProducerMark(name, value));
    },
    applied,
    async waitApplied(token, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const seen = generation;
        const p = await position();
        if (p.w >= token) return p.w;
        const left = deadline - Date.now();
        if (left <= 0) return null;
        if (events && generation !== seen) continue; // an apply committed during the scan: look again at once
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            clearTimeout(timer);
            wakers.delete(wake);
            resolve();
          };
          // Without events, or after an uncertain scan, look again in 20 ms; with events, at the next apply (or the timeout).
          const timer = setTimeout(wake, !events || p.uncertain ? Math.min(POLL_MS, left) : left);
          if (events) wakers.add(wake);
        });
      }
    },
    changed() {
      generation++;
      for (const wake of [...wakers]) wake();
    },
    stats: () => ({ scans, changes: generation, waiting: wakers.size }),
  };
}

interface Position {
  w: bigint;
  /** A log could not be read: W was lowered below it, and may rise without an apply once it can be. */
  uncertain: boolean;
}

/** W: the applied mark, lowered below every log use not yet applied. */
async function scanPosition(store: Pick<Store, 'getMark'>, commitlogDir: string): Promise<Position> {
  const mark = await store.getMark(APPLIED_TOKEN_MARK);
  let w = mark === undefined || mark.length !== 8 ? 0n : mark.readBigUInt64LE(0);
  let uncertain = false;
  const names = await fs.readdir(commitlogDir);
  const present = new Set(names);
  for (const name of names) {
    const parsed = parsePoolName(name);
    if (parsed.kind !== 'log') continue;
    const file = path.join(commitlogDir, name);
    const first = await unappliedFirst(store, file, parsed.index, present.has(lockName(parsed.index)));
    if (first === UNREADABLE) {
      // It may hold anything, so nothing counts as applied.
      uncertain = true;
      w = 0n;
    } else if (first !== null && first - 1n < w) w = first - 1n;
  }
  return { w: w < 0n ? 0n : w, uncertain };
}

/** What unappliedFirst answers for a log it cannot read. */
const UNREADABLE = 'unreadable';

/** The first sequence of the log's use if that use may hold frames not applied yet, else null. */
async function unappliedFirst(store: Pick<Store, 'getMark'>, file: string, index: number, locked: boolean): Promise<bigint | null | typeof UNREADABLE> {
  let handle: fs.FileHandle | undefined;
  try {
    const st = await fs.stat(file);
    if (!locked && (st.mode & 0o777) !== MODE_DIRTY) return null;
    handle = await fs.open(file, 'r');
    const buf = Buffer.alloc(HEADER_SIZE);
    await handle.read(buf, 0, HEADER_SIZE, 0);
    const header = decodeHeader(buf);
    if (header.kind !== 'ok' || header.header.streamId === 0n) return null;
    const applied = await store.getMark(appliedMarkName(index));
    if (applied !== undefined && applied.equals(encodeAppliedMark(header.header.generation))) return null;
    return header.header.firstSeq;
  } catch (err) {
    // Gone meanwhile (a temporary name): nothing of it waits. Unreadable: see UNREADABLE.
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? null : UNREADABLE;
  } finally {
    await handle?.close();
  }
}
