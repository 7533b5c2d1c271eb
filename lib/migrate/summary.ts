// The options and the summary of `countd migrate` (importer.ts), and the
// checks of the options that need no directory.

import { invalidArgument } from '../errors.js';
import type { FieldSizes } from '../protocol/fields.js';
import type { Logger } from '../util/log.js';
import type { LogReport } from './log-plan.js';
import type { LogRule } from './log-states.js';
import type { Problem } from './problems.js';

export interface MigrateProgress {
  phase: 'fingerprint' | 'import' | 'verify';
  /** Keyspace-file records and log frames handled so far, of `recordsTotal`. */
  records: number;
  recordsTotal: number;
  bytes: number;
  bytesTotal: number;
}

export interface MigrateOptions {
  /** The original countd's data directory (read only). */
  legacyDir: string;
  /** The countd data directory to import into (created when missing, except with dryRun). */
  dataDir: string;
  /** Any damage is fatal (nothing is imported). */
  strict?: boolean;
  /** Import even though legacy `lock-` links exist (never while a process has the directory's files open). */
  force?: boolean;
  /** Per log index: how much of it to replay, overriding what its mode, lock link and content say (--legacy-log). */
  logRules?: ReadonlyMap<number, LogRule>;
  /** A keyspace that already exists in the data directory: add the legacy counts to it. */
  merge?: boolean;
  /** A keyspace that already exists in the data directory: delete it, then import. */
  replace?: boolean;
  /** Report what would be imported; change nothing. */
  dryRun?: boolean;
  /** Field sizes of a data directory created by the migration (default 256/256). */
  sizes?: Partial<FieldSizes>;
  /** File records per Store.apply (default 100,000). */
  batchRecords?: number;
  logger?: Logger;
  onProgress?: (progress: MigrateProgress) => void;
  onProblem?: (problem: Problem) => void;
  /** Called after every Store.apply; tests throw from it to simulate a crash. */
  afterApply?: (info: { keyspace: Buffer; next: number; done: boolean }) => void;
}

export type ConflictReason = 'exists' | 'changed';

export interface KeyspaceReport {
  keyspace: string;
  action: 'import' | 'resume' | 'already-imported' | 'merge' | 'replace' | 'refused';
  keys: number;
  frames: number;
}

export interface MigrateSummary {
  dryRun: boolean;
  legacyDir: string;
  dataDir: string;
  keyspaces: {
    /** Legacy keyspaces whose name fits the target (files and log-only keyspaces). */
    total: number;
    /** Imported (or, in a dry run, to be imported) by this run, including resumed, merged, replaced. */
    imported: number;
    resumed: number;
    merged: number;
    replaced: number;
    /** Done by an earlier run with the same sources: nothing to do. */
    alreadyImported: number;
  };
  /** Keyspace-file keys imported by this run. */
  keys: number;
  logs: { dirty: number; clean: number; locks: number; replayed: number };
  /** Every log with its state and what was replayed of it (docs/legacy-format.md, "What the original leaves on disk"). */
  legacyLogs: LogReport[];
  /** Logs of which nothing was imported because what they hold cannot be told: say so loudly. */
  ambiguousLogs: LogReport[];
  frames: { replayed: number; padding: number; skipped: number };
  problems: { damage: number; byKind: Record<string, number>; details: Problem[] };
  conflicts: Array<{ keyspace: string; reason: ConflictReason }>;
  /** Why the run refused to import (dry run: why a real run would), or null. */
  refused: string | null;
  /** Keyspaces whose keys and sum were read back and matched (0 in a dry run). */
  verified: number;
  /** Nothing was left to import: every keyspace was done by an earlier run. */
  nothingToDo: boolean;
  records: number;
  bytes: number;
  elapsedMs: number;
  recordsPerSecond: number;
}

/** A summary of nothing done yet. */
export function newSummary(dryRun: boolean, legacyDir: string, dataDir: string): MigrateSummary {
  return {
    dryRun,
    legacyDir,
    dataDir,
    keyspaces: { total: 0, imported: 0, resumed: 0, merged: 0, replaced: 0, alreadyImported: 0 },
    keys: 0,
    logs: { dirty: 0, clean: 0, locks: 0, replayed: 0 },
    legacyLogs: [],
    ambiguousLogs: [],
    frames: { replayed: 0, padding: 0, skipped: 0 },
    problems: { damage: 0, byKind: {}, details: [] },
    conflicts: [],
    refused: null,
    verified: 0,
    nothingToDo: false,
    records: 0,
    bytes: 0,
    elapsedMs: 0,
    recordsPerSecond: 0,
  };
}

export function checkLogRules(rules: unknown): void {
  if (!(rules instanceof Map)) throw invalidArgument('logRules must be a Map of log index to rule');
  for (const [index, rule] of rules as Map<unknown, unknown>) {
    if (!Number.isSafeInteger(index) || (index as number) < 0) throw invalidArgument(`logRules: ${String(index)} is not a log index`);
    if (rule !== 'skip' && rule !== 'all' && !(Number.isSafeInteger(rule) && (rule as number) >= 0)) {
      throw invalidArgument(`logRules: log ${String(index)}: ${String(rule)} is not skip, all or a number of frames`);
    }
  }
}

export function definedSizes(sizes: Partial<FieldSizes> | undefined): Partial<FieldSizes> {
  const out: { keyspaceSize?: number; keySize?: number } = {};
  if (sizes?.keyspaceSize !== undefined) out.keyspaceSize = sizes.keyspaceSize;
  if (sizes?.keySize !== undefined) out.keySize = sizes.keySize;
  return out;
}
