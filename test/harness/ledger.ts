// The writers' ledger of the crash tests: what was sent, acknowledged (WIN)
// and refused (ERR) for every key, and the check of final counts against it.
//
// Each key belongs to one connection (one "session") and receives at most
// MAX_FRAMES_PER_KEY frames; frame j of a key adds 2^j. The write path keeps
// the frames of one connection in order and applies a batch only if every
// earlier batch is durable, so the frames of a key that end up applied are a
// prefix 0 … p-1 of those sent, and the final count is exactly 2^p - 1.
// Any other count means a frame was applied twice (a carry) or a hole (an
// earlier frame lost while a later one applied). Then, for every key:
//
//   acked  <=  p  <=  upper        upper = first frame answered ERR, else sent
//
// acked > p is a lost acknowledged frame; p > upper is a frame applied
// although its sender was told ERR (or never sent).

export const MAX_FRAMES_PER_KEY = 60;

export interface KeyEntry {
  keyspace: string;
  key: string;
  /** Frames sent (fully or partly written to the socket). */
  sent: number;
  /** Frames answered WIN: a prefix of the sent frames. */
  acked: number;
  /** Index of the first frame answered ERR, or -1. */
  errAt: number;
}

export interface LedgerFigures {
  keys: number;
  framesSent: number;
  framesAcked: number;
  framesErr: number;
  /** Acknowledged frames missing from the final counts. */
  lost: number;
  /** Keys whose count is not a prefix of their frames (double apply or hole), or applied beyond ERR/sent. */
  doubleApplied: number;
  /** Frames sent without an answer that were applied anyway (allowed). */
  unackedApplied: number;
}

export interface Violation {
  keyspace: string;
  key: string;
  count: bigint;
  why: string;
}

export class Ledger {
  readonly keys = new Map<string, KeyEntry>();
  framesErr = 0;

  private id(keyspace: string, key: string): string {
    return `${keyspace}\u0000${key}`;
  }

  /** Frames answered WIN so far, over every key. */
  acked(): number {
    let n = 0;
    for (const e of this.keys.values()) n += e.acked;
    return n;
  }

  /** Register a new key (names must be unique across the run). */
  newKey(keyspace: string, key: string): KeyEntry {
    const id = this.id(keyspace, key);
    if (this.keys.has(id)) throw new Error(`ledger key ${keyspace}/${key} registered twice`);
    const e: KeyEntry = { keyspace, key, sent: 0, acked: 0, errAt: -1 };
    this.keys.set(id, e);
    return e;
  }

  /** The increment of the next frame of `e`; counts it as sent. */
  nextFrame(e: KeyEntry): { index: number; increment: bigint } {
    if (e.sent >= MAX_FRAMES_PER_KEY) throw new Error('key is full: use a new key');
    const index = e.sent++;
    return { index, increment: 1n << BigInt(index) };
  }

  win(e: KeyEntry, index: number): void {
    if (index !== e.acked) throw new Error(`WIN out of order for ${e.keyspace}/${e.key}: frame ${index}, ${e.acked} acked`);
    e.acked = index + 1;
  }

  err(e: KeyEntry, index: number): void {
    this.framesErr++;
    if (e.errAt < 0 || index < e.errAt) e.errAt = index;
  }

  /** Check final counts (`count(keyspace, key)`: undefined = absent = 0). */
  check(count: (keyspace: string, key: string) => bigint | undefined): { figures: LedgerFigures; violations: Violation[] } {
    const figures: LedgerFigures = { keys: this.keys.size, framesSent: 0, framesAcked: 0, framesErr: this.framesErr, lost: 0, doubleApplied: 0, unackedApplied: 0 };
    const violations: Violation[] = [];
    for (const e of this.keys.values()) {
      figures.framesSent += e.sent;
      figures.framesAcked += e.acked;
      const c = count(e.keyspace, e.key) ?? 0n;
      const p = prefixLength(c);
      const upper = e.errAt >= 0 ? e.errAt : e.sent;
      if (p === undefined) {
        figures.doubleApplied++;
        violations.push({ keyspace: e.keyspace, key: e.key, count: c, why: `count 0b${c.toString(2)} is not a prefix of the frames (applied twice, or a hole); sent ${e.sent}, acked ${e.acked}` });
        continue;
      }
      if (p < e.acked) {
        figures.lost += e.acked - p;
        violations.push({ keyspace: e.keyspace, key: e.key, count: c, why: `${e.acked} frames acknowledged, only ${p} applied` });
      }
      if (p > upper) {
        figures.doubleApplied++;
        violations.push({
          keyspace: e.keyspace,
          key: e.key,
          count: c,
          why: e.errAt >= 0 ? `frame ${e.errAt} was answered ERR, yet ${p} frames applied` : `${p} frames applied, only ${e.sent} sent`,
        });
      }
      if (p > e.acked && p <= upper) figures.unackedApplied += p - e.acked;
    }
    return { figures, violations };
  }
}

/** p when c = 2^p - 1 (p >= 0), else undefined. */
export function prefixLength(c: bigint): number | undefined {
  if (c < 0n) return undefined;
  const next = c + 1n;
  if ((next & c) !== 0n) return undefined;
  return next.toString(2).length - 1;
}

/** A short text of the first violations, for assertion messages. */
export function describeViolations(violations: Violation[], max = 10): string {
  const lines = violations.slice(0, max).map((v) => `  ${v.keyspace}/${v.key} = ${v.count}: ${v.why}`);
  if (violations.length > max) lines.push(`  … and ${violations.length - max} more`);
  return lines.join('\n');
}
