// What the worker writes for idempotent producers and tokens (issue 16), in
// the same atomic batch as the counts of the logs it applies (so a crash at
// any point leaves the database's producer state and counts in step):
//
//   producer/<id>   the producer's durable run [first, last] of its newest
//                   epoch, its last token and when it last wrote (marks.ts);
//   token/applied   the highest token (frame sequence number) applied.
//
// The summing thread describes each log it sums (describeRecords: the last
// token, and per producer the epoch and run its op entries hold); the worker
// hands those descriptions here with the applied marks (noteLog) and, just
// before the apply, withProducerMarks adds the merged marks. Marks are merged
// with what earlier applies wrote: an in-memory copy (the worker is the only
// writer of these marks, and applies are handed to the store in order), read
// from the database the first time a producer is seen.
//
// Expiry: producers idle for the expiry (default one day) are removed from
// the database by the apply that follows, at most once a minute
// (docs/guarantees.md, "Idempotent producers").

import { collectProducerRuns, type ProducerRun } from '../../commitlog/producer-runs.js';
import type { LogRecord } from '../../commitlog/reader.js';
import type { LogDescription, LogOutcome, LogProducer } from './summer-protocol.js';
import {
  APPLIED_TOKEN_MARK,
  PRODUCER_MARK_PREFIX,
  decodeProducerMark,
  encodeProducerMark,
  producerMarkName,
  type ProducerMark,
} from '../../store/marks.js';
import type { Mark, Store } from '../../store/store.js';
import { DEFAULT_PRODUCER_EXPIRY_MS } from '../../protocol/write-ops.js';


/** Describe the records of one log use (the summing thread). */
export function describeRecords(records: readonly LogRecord[]): LogDescription {
  const runs = new Map<bigint, ProducerRun>();
  const last = collectProducerRuns(records, runs);
  const producers: LogProducer[] = [];
  for (const [id, r] of runs) producers.push([id.toString(), r.epoch, r.first.toString(), r.last.toString()]);
  return { lastToken: last < 0n ? null : last.toString(), producers };
}

const SWEEP_EVERY_MS = 60_000;

interface Pending {
  lastToken: bigint;
  producers: LogProducer[];
}

export class ProducerMarks {
  readonly #store: Store;
  readonly #expiryMs: number;
  /** The marks as the last apply handed to the store left them. */
  readonly #known = new Map<bigint, ProducerMark>();
  #appliedToken: bigint | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #lastSweep = 0;
  /** Descriptions of the logs of a batch, by the batch's marks array. */
  readonly #pending = new WeakMap<Mark[], Pending>();

  constructor(store: Store, expiryMs = DEFAULT_PRODUCER_EXPIRY_MS) {
    this.#store = store;
    this.#expiryMs = expiryMs;
    // The first sweep one interval after start: a worker's first apply stays as small as before.
    this.#lastSweep = Date.now();
  }

  /** The summing thread's outcomes of logs of the batch whose marks are `marks`: those applied are noted for withProducerMarks. */
  noteOutcomes(marks: Mark[], outcomes: readonly LogOutcome[]): void {
    for (const o of outcomes) {
      if (o.status === 'apply' || (o.status === 'quarantine' && o.salvage === 'apply')) this.#note(marks, o.description);
    }
  }

  #note(marks: Mark[], description: LogDescription | undefined): void {
    if (description === undefined || description.lastToken === null) return;
    let p = this.#pending.get(marks);
    if (p === undefined) {
      p = { lastToken: 0n, producers: [] };
      this.#pending.set(marks, p);
    }
    const token = BigInt(description.lastToken);
    if (token > p.lastToken) p.lastToken = token;
    p.producers.push(...description.producers);
  }

  /** `marks` plus the producer and token marks of the logs noted for them; in apply order (calls are chained). */
  withProducerMarks(marks: Mark[]): Promise<Mark[]> {
    const next = this.#chain.then(() => this.#merge(marks));
    this.#chain = next.catch(() => {});
    return next;
  }

  async #merge(marks: Mark[]): Promise<Mark[]> {
    const p = this.#pending.get(marks);
    const out = [...marks];
    const now = Date.now();
    if (p !== undefined) {
      this.#appliedToken ??= decodeToken(await this.#store.getMark(APPLIED_TOKEN_MARK));
      if (p.lastToken > this.#appliedToken) this.#appliedToken = p.lastToken;
      out.push({ name: APPLIED_TOKEN_MARK, value: encodeToken(this.#appliedToken) });
      const changed = new Map<bigint, ProducerMark>();
      for (const [idText, epoch, firstText, lastText] of p.producers) {
        const id = BigInt(idText);
        const mark = changed.get(id) ?? (await this.#current(id));
        changed.set(id, merged(mark, id, epoch, BigInt(firstText), BigInt(lastText), p.lastToken, now));
      }
      for (const [id, mark] of changed) {
        this.#known.set(id, mark);
        out.push({ name: producerMarkName(id), value: encodeProducerMark(mark) });
      }
    }
    if (now - this.#lastSweep >= Math.min(SWEEP_EVERY_MS, this.#expiryMs)) {
      this.#lastSweep = now;
      out.push(...(await this.#expired(now)));
    }
    return out;
  }

  async #current(id: bigint): Promise<ProducerMark | undefined> {
    const known = this.#known.get(id);
    if (known !== undefined) return known;
    const name = producerMarkName(id);
    const value = await this.#store.getMark(name);
    return value === undefined ? undefined : decodeProducerMark(name, value);
  }

  /** Deletions of the producer marks idle for the expiry. */
  async #expired(now: number): Promise<Mark[]> {
    const out: Mark[] = [];
    let after = '';
    for (;;) {
      const page = await this.#store.listMarks(PRODUCER_MARK_PREFIX, after, 1000);
      for (const { name, value } of page) {
        const mark = decodeProducerMark(name, value);
        const known = this.#known.get(mark.id) ?? mark;
        if (now - known.lastSeen >= this.#expiryMs) {
          out.push({ name, value: null });
          this.#known.delete(mark.id);
        }
      }
      if (page.length < 1000) return out;
      after = page[page.length - 1]!.name;
    }
  }
}

/** The mark after frames [first, last] of `epoch` (the newest epoch wins; runs of one epoch join). */
function merged(mark: ProducerMark | undefined, id: bigint, epoch: number, first: bigint, last: bigint, token: bigint, now: number): ProducerMark {
  if (mark === undefined || epoch > mark.epoch) return { id, epoch, first, last, token, lastSeen: now };
  if (epoch < mark.epoch) return mark;
  return {
    id,
    epoch,
    first: first < mark.first ? first : mark.first,
    last: last > mark.last ? last : mark.last,
    token: token > mark.token ? token : mark.token,
    lastSeen: now,
  };
}

export function encodeToken(token: bigint): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf.writeBigUInt64LE(token, 0);
  return buf;
}

export function decodeToken(value: Buffer | undefined): bigint {
  return value === undefined || value.length !== 8 ? 0n : value.readBigUInt64LE(0);
}
