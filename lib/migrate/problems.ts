// What `countd migrate` found wrong in a legacy directory. Every problem is
// counted by kind; the first few of each kind are kept with their details so
// that a directory with millions of bad records does not fill memory.
//
// Damage is skipped and reported; `--strict` makes any damage fatal. Notices
// (records out of order, a legacy lock passed over with --force, the writer's
// log in progress replayed, the stale duplicate records the original's storage
// normally leaves) are reported but never fatal: they lose nothing. Stale
// duplicates are only counted: a healthy legacy directory has thousands.
// An ambiguous log (docs/legacy-format.md) counts as damage: nothing of it is
// imported unless a --legacy-log rule says how much.

export type ProblemKind =
  // keyspace files
  | 'partial-record'
  | 'duplicate-key'
  | 'invalid-key'
  | 'key-too-long'
  | 'keyspace-too-long'
  | 'empty-file'
  | 'no-keyspace-file'
  | 'stray-file'
  // legacy commit logs
  | 'invalid-frame'
  | 'partial-frame'
  | 'log-mode'
  | 'ambiguous-log'
  // import
  | 'saturated'
  // notices
  | 'out-of-order'
  | 'legacy-lock'
  | 'writer-log'
  | 'legacy-log-rule';

const NOTICES: ReadonlySet<ProblemKind> = new Set<ProblemKind>(['out-of-order', 'legacy-lock', 'writer-log', 'legacy-log-rule', 'duplicate-key']);
/** Kinds only counted, never listed one by one. */
const COUNT_ONLY: ReadonlySet<ProblemKind> = new Set<ProblemKind>(['duplicate-key']);

export function isDamage(kind: ProblemKind): boolean {
  return !NOTICES.has(kind);
}

export interface Problem {
  kind: ProblemKind;
  /** The legacy file or directory, relative to the legacy directory, names escaped. */
  source: string;
  /** Byte offset in the source, when the problem is at one place. */
  offset?: number;
  detail: string;
}

/** Problems kept with details per kind; the rest are only counted. */
export const DETAILS_PER_KIND = 20;

export class ProblemLog {
  readonly counts = new Map<ProblemKind, number>();
  readonly details: Problem[] = [];
  readonly #onProblem: ((p: Problem) => void) | undefined;

  constructor(onProblem?: (p: Problem) => void) {
    this.#onProblem = onProblem;
  }

  add(problem: Problem): void {
    const n = (this.counts.get(problem.kind) ?? 0) + 1;
    this.counts.set(problem.kind, n);
    if (n <= DETAILS_PER_KIND && !COUNT_ONLY.has(problem.kind)) this.details.push(problem);
    this.#onProblem?.(problem);
  }

  /** Damage problems (not notices). */
  get damage(): number {
    let n = 0;
    for (const [kind, count] of this.counts) if (isDamage(kind)) n += count;
    return n;
  }

  byKind(): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort((a, b) => a[0].localeCompare(b[0])));
  }
}
