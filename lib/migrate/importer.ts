// `countd migrate`: import the original countd's flat-file storage (a legacy
// directory) into a countd data directory. The formats and the import design
// are in docs/legacy-format.md.
//
// The import works per legacy keyspace ("unit"): its keyspace file plus the
// frames that name it of every log replayed (log-states.ts decides which logs,
// and how much of each). A unit is applied in batches of
// `batchRecords` file records; each batch is ONE Store.apply together with the
// unit's mark (marks.ts), which records how far the file got. The log frames
// and `done` go with the last batch. So a crash leaves every unit either
// untouched, done, or with a mark saying exactly which records are in, and a
// rerun resumes after them: each record is applied exactly once.
//
// The legacy directory is only read (scan.ts, read-chunks.ts open O_RDONLY).

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { escapeName } from '../util/escape.js';
import { dataDirPaths, type DataDirPaths } from '../datadir/layout.js';
import { openDataDir, readMeta } from '../datadir/meta.js';
import { CountdError, ErrorCodes, errnoCode, invalidArgument, isCountdError, translateFsError } from '../errors.js';
import { checkFieldSizes, DEFAULT_FIELD_SIZES, type FieldSizes } from '../protocol/fields.js';
import { Store } from '../store/store.js';
import { DEFAULT_COUNT_CACHE_BYTES } from '../store/schema.js';
import { silentLogger, type Logger } from '../util/log.js';
import { fingerprintFile } from './fingerprint.js';
import { addDeltas, saturate } from '../store/combine.js';
import { KEYSPACE_RECORD_SIZE } from './legacy-format.js';
import { keyspaceFileRelativePath, newTotals, readKeyspaceFile, type KeyspaceFileTotals } from './keyspace-file.js';
import { encodeMark, keyspaceMarkName, readKeyspaceMark, type KeyspaceMark } from '../store/marks.js';
import { ApplyPipeline } from './apply-pipeline.js';
import { readBack, VerifyQueue } from './verify.js';
import { ProblemLog, isDamage, type ProblemKind } from './problems.js';
import { scanLegacyDir, type LegacyKeyspaceFile, type LegacyLayout } from './scan.js';
import { checkDirectories, checkLegacyLocks } from './lock-check.js';
import { checkLogRules, definedSizes, newSummary, type MigrateOptions, type MigrateProgress, type MigrateSummary } from './summary.js';
import { decideLayoutLogs, planLogs } from './log-plan.js';
import type { LogDecision } from './log-states.js';
import { addRecord, changedWhileRead, newMark, unitFingerprint, type Unit } from './unit.js';

export type { MigrateOptions, MigrateProgress, MigrateSummary, ConflictReason, KeyspaceReport } from './summary.js';

export const DEFAULT_BATCH_RECORDS = 100_000;
const VERIFY_CONCURRENCY = 4;

/** Import a legacy directory. See docs/legacy-format.md; returns what was done. */
export async function migrate(options: MigrateOptions): Promise<MigrateSummary> {
  if (options === null || typeof options !== 'object') throw invalidArgument('migrate options must be an object');
  if (typeof options.legacyDir !== 'string' || options.legacyDir === '') throw invalidArgument('legacyDir must be a non-empty string');
  if (typeof options.dataDir !== 'string' || options.dataDir === '') throw invalidArgument('dataDir must be a non-empty string');
  if (options.merge && options.replace) throw invalidArgument('--merge and --replace exclude each other');
  const batchRecords = options.batchRecords ?? DEFAULT_BATCH_RECORDS;
  if (!Number.isSafeInteger(batchRecords) || batchRecords < 1) throw invalidArgument(`batchRecords must be a positive integer, got ${String(batchRecords)}`);
  if (options.logRules !== undefined) checkLogRules(options.logRules);
  if (options.sizes !== undefined) checkFieldSizes({ ...DEFAULT_FIELD_SIZES, ...definedSizes(options.sizes) });
  return new Migration(options, batchRecords).run();
}

class Migration {
  readonly #o: MigrateOptions;
  readonly #batchRecords: number;
  readonly #logger: Logger;
  readonly #legacyDir: string;
  readonly #paths: DataDirPaths;
  readonly #problems: ProblemLog;
  /** Where the keyspace-file reader of the import pass reports (a scratch log after a --strict pass). */
  #fileProblems: ProblemLog;
  #store: Store | undefined;
  #pipeline: ApplyPipeline | undefined;
  #verifyQueue: VerifyQueue | undefined;
  #sizes: FieldSizes = DEFAULT_FIELD_SIZES;
  readonly #started = Date.now();
  readonly #progress: MigrateProgress = { phase: 'fingerprint', records: 0, recordsTotal: 0, bytes: 0, bytesTotal: 0 };
  readonly #summary: MigrateSummary;

  constructor(options: MigrateOptions, batchRecords: number) {
    this.#o = options;
    this.#batchRecords = batchRecords;
    this.#logger = options.logger ?? silentLogger;
    this.#legacyDir = path.resolve(options.legacyDir);
    this.#paths = dataDirPaths(options.dataDir);
    this.#problems = new ProblemLog(options.onProblem);
    this.#fileProblems = this.#problems;
    this.#summary = newSummary(options.dryRun === true, this.#legacyDir, this.#paths.root);
  }

  async run(): Promise<MigrateSummary> {
    await checkDirectories(this.#legacyDir, this.#paths);
    const layout = await scanLegacyDir(this.#legacyDir, this.#problems);
    this.#summary.logs = { dirty: layout.dirtyLogs.length, clean: layout.cleanLogs.length, locks: layout.locks.length, replayed: 0 };
    await checkLegacyLocks(this.#legacyDir, layout.locks, this.#o.force === true, this.#problems);
    const decisions = await decideLayoutLogs(layout, this.#o.logRules ?? new Map());
    try {
      await this.#openTarget(layout);
      const units = await this.#plan(layout, decisions);
      this.#summary.keyspaces.total = units.length;
      this.#collectConflicts(units);
      if (this.#summary.refused !== null && !this.#summary.dryRun) {
        throw new CountdError(ErrorCodes.MIGRATE, this.#summary.refused);
      }
      const todo = units.filter((u) => u.action !== 'already-imported' && u.action !== 'refused');
      this.#progress.recordsTotal = todo.reduce((n, u) => n + Math.floor((u.file?.size ?? 0) / KEYSPACE_RECORD_SIZE) + u.logs.reduce((m, l) => m + l.contribution.frames, 0), 0);
      this.#progress.bytesTotal = todo.reduce((n, u) => n + (u.file?.size ?? 0), 0);
      if (this.#o.strict && !this.#summary.dryRun) await this.#strictCheck(todo);
      this.#progress.phase = 'import';
      this.#progress.records = 0;
      this.#progress.bytes = 0;
      this.#pipeline = new ApplyPipeline(this.#summary.dryRun ? undefined : this.#store);
      if (!this.#summary.dryRun) this.#verifyQueue = new VerifyQueue(this.#store!, VERIFY_CONCURRENCY);
      for (const unit of todo) await this.#importUnit(unit);
      await this.#pipeline.drain();
      if (this.#summary.dryRun && this.#o.strict && this.#problems.damage > 0 && this.#summary.refused === null) {
        this.#summary.refused = `--strict: the legacy directory is damaged (${this.#problems.damage} problems); nothing would be imported`;
      }
      if (!this.#summary.dryRun) {
        this.#progress.phase = 'verify';
        this.#emitProgress();
        // Keyspaces imported now were queued as their last batch committed; the rest were done earlier.
        const todoSet = new Set(todo);
        await this.#verify(units.filter((u) => u.action !== 'refused' && !todoSet.has(u)));
      }
      this.#summary.nothingToDo = todo.length === 0 && this.#summary.refused === null;
    } finally {
      // Nothing may read or write once the store is closed: settle what is in flight (its error, if any, came second).
      await this.#pipeline?.settle();
      await this.#verifyQueue?.settle();
      await this.#store?.close().catch((err: unknown) => this.#logger.warn('closing the store failed', { error: String(err) }));
    }
    return this.#finish();
  }

  // ---------------------------------------------------------------- setup

  /** Open the target; a dry run creates nothing and opens the database only if it exists. */
  async #openTarget(layout: LegacyLayout): Promise<void> {
    if (this.#summary.dryRun) {
      const meta = await readMeta(this.#paths);
      if (meta === undefined) {
        const entries = await fsp.readdir(this.#paths.root).catch((err: unknown) => {
          if (errnoCode(err) === 'ENOENT') return [] as string[];
          throw translateFsError(err, `read ${this.#paths.root}`);
        });
        // Not a countd directory and not empty: let openDataDir say why.
        if (entries.length > 0) await openDataDir(this.#paths.root, { create: false });
        this.#sizes = checkFieldSizes({ ...DEFAULT_FIELD_SIZES, ...definedSizes(this.#o.sizes) });
        return;
      }
      this.#sizes = { keyspaceSize: meta.keyspaceSize, keySize: meta.keySize };
      const hasDb = await fsp.stat(this.#paths.db).then(() => true, () => false);
      if (hasDb) this.#store = await Store.open({ location: this.#paths.db, sizes: this.#sizes, logger: this.#logger });
      return;
    }
    const dir = await openDataDir(this.#paths.root, { create: true, sizes: definedSizes(this.#o.sizes) });
    this.#sizes = dir.sizes;
    // The Store's count cache spares an apply reading back the keys of earlier applies. Only a
    // keyspace file of more than one batch has those (its later batches follow its earlier ones;
    // the log frames join the last batch): without one, keeping every imported key in the cache
    // costs about 1 us a key and saves nothing.
    const multiBatch = layout.keyspaceFiles.some((f) => Math.floor(f.size / KEYSPACE_RECORD_SIZE) > this.#batchRecords);
    this.#store = await Store.open({
      location: dir.paths.db,
      sizes: dir.sizes,
      logger: this.#logger,
      countCacheBytes: multiBatch ? DEFAULT_COUNT_CACHE_BYTES : 0,
    });
  }

  /** Read the dirty logs, fingerprint the keyspace files, and decide what to do with every keyspace. */
  async #plan(layout: LegacyLayout, decisions: LogDecision[]): Promise<Unit[]> {
    const units = new Map<string, Unit>();
    const unitOf = (name: Buffer): Unit => {
      const id = name.toString('latin1');
      let u = units.get(id);
      if (u === undefined) {
        u = { name, label: escapeName(name), file: undefined, fileFingerprint: null, logs: [], unit: '', action: 'import', mark: undefined, mode: 'new', exists: false };
        units.set(id, u);
      }
      return u;
    };
    const logs = await planLogs(decisions, this.#sizes, this.#problems);
    this.#progress.bytesTotal = layout.keyspaceFiles.reduce((n, f) => n + f.size, 0) + logs.replay.reduce((n, c) => n + c.log.size, 0);
    this.#summary.legacyLogs = logs.reports;
    this.#summary.ambiguousLogs = logs.ambiguous;
    this.#summary.logs.replayed = logs.replay.length;
    for (const contents of logs.replay) {
      const log = contents.log;
      this.#summary.frames.padding += contents.padding;
      this.#summary.frames.skipped += contents.skipped;
      for (const contribution of contents.keyspaces.values()) unitOf(contribution.keyspace).logs.push({ contents, contribution });
      this.#advance(0, log.size);
    }
    for (const file of layout.keyspaceFiles) {
      if (file.name.length > this.#sizes.keyspaceSize) {
        this.#problems.add({
          kind: 'keyspace-too-long',
          source: file.label,
          detail: `keyspace name of ${file.name.length} bytes does not fit the target's ${this.#sizes.keyspaceSize}; keyspace skipped`,
        });
        this.#advance(0, file.size);
        continue;
      }
      unitOf(file.name).file = file;
    }
    const existing = new Set<string>();
    if (this.#store) for (const ks of await this.#store.keyspaces()) if (ks.size > 0) existing.add(ks.name.toString('latin1'));
    const list = [...units.values()].sort((a, b) => a.name.compare(b.name));
    for (const u of list) {
      u.mark = this.#store ? await this.#readMark(u) : undefined;
      u.exists = existing.has(u.name.toString('latin1'));
      const file = u.file;
      if (file !== undefined) {
        if (u.mark === undefined && !u.exists && Math.floor(file.size / KEYSPACE_RECORD_SIZE) <= this.#batchRecords) {
          // Nothing to compare it with, and the one write that carries the mark follows the one
          // read of the file: the import pass fingerprints the very bytes it imports (#fingerprinted).
          this.#advance(0, file.size);
        } else {
          u.fileFingerprint = await fingerprintFile(file.path, keyspaceFileRelativePath(file), file.size, file.label, (n) => this.#advance(0, n));
        }
      }
      u.unit = unitFingerprint(u);
      if (u.mark !== undefined && u.mark.unit === u.unit) {
        u.action = u.mark.done ? 'already-imported' : 'resume';
        if (u.mark.done) this.#summary.keyspaces.alreadyImported++;
        u.mode = u.mark.mode;
        continue;
      }
      if (u.mark !== undefined) u.conflict = 'changed';
      else if (u.exists) u.conflict = 'exists';
      if (u.conflict === undefined) continue;
      if (this.#o.merge) {
        u.action = 'merge';
        u.mode = 'merge';
      } else if (this.#o.replace) {
        u.action = 'replace';
        u.mode = 'replace';
      } else {
        u.action = 'refused';
      }
    }
    return list;
  }

  /** A mark that cannot be read stops the run (marks.ts), except under --replace, which rewrites it. */
  async #readMark(u: Unit): Promise<KeyspaceMark | undefined> {
    try {
      return await readKeyspaceMark(this.#store!, u.name);
    } catch (err) {
      if (!this.#o.replace || !(isCountdError(err, ErrorCodes.CORRUPTION) || isCountdError(err, ErrorCodes.DATA_DIR_MISMATCH))) throw err;
      u.conflict = 'changed';
      return undefined;
    }
  }

  #collectConflicts(units: Unit[]): void {
    for (const u of units) if (u.conflict !== undefined) this.#summary.conflicts.push({ keyspace: u.label, reason: u.conflict });
    const refused = units.filter((u) => u.action === 'refused');
    if (refused.length === 0) return;
    const names = refused.slice(0, 5).map((u) => `${JSON.stringify(u.label)} (${u.conflict === 'changed' ? 'imported before from other legacy files' : 'already exists'})`);
    this.#summary.refused =
      `${refused.length} keyspace${refused.length === 1 ? '' : 's'} of the legacy directory already in ${this.#paths.root} and not from this migration: ` +
      `${names.join(', ')}${refused.length > 5 ? ', …' : ''}; pass --merge to add the legacy counts to them or --replace to replace them`;
  }

  /** --strict: read everything first; any damage refuses the whole migration before anything is written. */
  async #strictCheck(todo: Unit[]): Promise<void> {
    for (const u of todo) if (u.file) for await (const records of readKeyspaceFile(u.file, this.#sizes, this.#problems, newTotals())) void records;
    if (this.#problems.damage > 0) {
      const kinds = Object.entries(this.#problems.byKind())
        .filter(([k]) => isDamage(k as ProblemKind))
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      throw new CountdError(ErrorCodes.MIGRATE, `--strict: the legacy directory is damaged (${kinds}); nothing was imported (rerun without --strict to skip the damage)`);
    }
    // The import pass reads the files again and would report the same notices: count them once.
    this.#fileProblems = new ProblemLog();
  }

  // ---------------------------------------------------------------- import

  /**
   * Read one keyspace into the pipeline's batches. Returns once its last
   * batch is SUBMITTED: the next keyspace is read while the Store writes it.
   * Once that batch commits, the keyspace is queued for verification.
   */
  async #importUnit(u: Unit): Promise<void> {
    const s = this.#summary.keyspaces;
    s.imported++;
    if (u.action === 'resume') s.resumed++;
    if (u.action === 'merge') s.merged++;
    if (u.action === 'replace') s.replaced++;
    const store = this.#store;
    const mark = u.action === 'resume' ? { ...u.mark!, at: new Date().toISOString() } : await this.#freshMark(u);
    if (!this.#summary.dryRun && store && this.#createsKeyspace(u, mark)) {
      await this.#createUnit(u, mark, store);
      return;
    }
    const apply = this.#applier(u, mark);
    const totals = newTotals();
    if (u.file) await this.#importFile(u, u.file, mark, totals, apply);
    // The log frames, then `done`, in the last batch.
    const { logSum, logOnlyKeys } = this.#addLogFrames(u, totals);
    const frames = u.logs.reduce((n, l) => n + l.contribution.frames, 0);
    mark.expect = { keys: totals.keys + logOnlyKeys, sum: (totals.sum + logSum).toString(), frames, records: totals.records };
    await apply(totals.records, true);
  }

  /** The first mark of a unit imported afresh; for --merge and --replace, the database made ready for it. */
  async #freshMark(u: Unit): Promise<KeyspaceMark> {
    const mark = newMark(u);
    const store = this.#store;
    if (this.#summary.dryRun || !store) return mark;
    if (u.action === 'merge' || u.action === 'replace') {
      // Rare paths: let the keyspaces before this one finish first (and stop here if one failed).
      await this.#pipeline!.drain();
    }
    if (u.action === 'merge') {
      const { keys, sum } = await readBack(store, u.name);
      mark.base = { keys, sum: sum.toString() };
    }
    if (u.action === 'replace') {
      // Delete and claim the keyspace in one batch: a crash after it resumes as our own import.
      await store.deleteKeyspace(u.name, [{ name: keyspaceMarkName(u.name), value: encodeMark(mark) }]);
    }
    return mark;
  }

  /**
   * One Store.apply per batch, the unit's mark with it. The mark is encoded
   * once the apply before has committed (pipeline.submit), so it carries that
   * apply's saturation.
   */
  #applier(u: Unit, mark: KeyspaceMark): (next: number, done: boolean) => Promise<void> {
    const markName = keyspaceMarkName(u.name);
    return (next, done) =>
      this.#pipeline!.submit(
        () => {
          mark.next = next;
          mark.done = done;
          return [{ name: markName, value: encodeMark(mark) }];
        },
        (result) => {
          if (result.saturated > 0 && !mark.saturated) {
            this.#problems.add({ kind: 'saturated', source: u.label, detail: `${result.saturated} counts clamped to the signed 64-bit range; the sum cannot be verified` });
          }
          mark.saturated ||= result.saturated > 0;
          this.#o.afterApply?.({ keyspace: u.name, next, done });
          if (done) this.#verifyQueue?.add(u.name, u.label);
        },
      );
  }

  /** The unit's keyspace file from the mark's `next` on, into batches of batchRecords records (each applied but the last). */
  async #importFile(u: Unit, file: LegacyKeyspaceFile, mark: KeyspaceMark, totals: KeyspaceFileTotals, apply: (next: number, done: boolean) => Promise<void>): Promise<void> {
    const dry = this.#summary.dryRun;
    const resumeAt = mark.next;
    let boundary = (Math.floor(resumeAt / this.#batchRecords) + 1) * this.#batchRecords;
    let pendingRecords = 0;
    const deferred = u.fileFingerprint === null;
    const seen = { bytes: 0, records: 0 };
    for await (const records of readKeyspaceFile(file, this.#sizes, this.#fileProblems, totals)) {
      for (const r of records) {
        if (r.index < resumeAt) continue;
        if (deferred && r.index >= this.#batchRecords) throw changedWhileRead(file);
        if (r.index >= boundary) {
          // Every record before this batch boundary is in the batch (or was skipped as damage).
          const at = Math.floor(r.index / this.#batchRecords) * this.#batchRecords;
          if (pendingRecords > 0) await apply(at, false);
          pendingRecords = 0;
          boundary = at + this.#batchRecords;
        }
        if (!dry) addRecord(this.#pipeline!.batch, u.name, r.key, r.count);
        pendingRecords++;
        this.#summary.keys++;
      }
      this.#fileProgress(file, totals, seen);
    }
    this.#fileRead(u, mark, totals, deferred);
  }

  /** The unit's log frames into the current batch: their sum, and how many of their keys the file did not have. */
  #addLogFrames(u: Unit, totals: KeyspaceFileTotals): { logSum: bigint; logOnlyKeys: number } {
    let logSum = 0n;
    let logOnlyKeys = 0;
    const logKeys = new Set<string>();
    for (const { contribution } of u.logs) {
      for (const [id, d] of contribution.deltas) {
        if (!logKeys.has(id)) {
          logKeys.add(id);
          if (!totals.seen.has(id)) logOnlyKeys++;
        }
        if (!this.#summary.dryRun) addRecord(this.#pipeline!.batch, u.name, d.key, d.delta);
        logSum += d.delta;
      }
      this.#summary.frames.replayed += contribution.frames;
      this.#advance(contribution.frames, 0);
    }
    return { logSum, logOnlyKeys };
  }

  /** Progress for the records of a keyspace file read since `seen` (updated). */
  #fileProgress(file: LegacyKeyspaceFile, totals: KeyspaceFileTotals, seen: { bytes: number; records: number }): void {
    const bytes = Math.min(file.size, totals.records * KEYSPACE_RECORD_SIZE) - seen.bytes;
    seen.bytes += bytes;
    this.#advance(totals.records - seen.records, bytes);
    seen.records = totals.records;
  }

  /** A keyspace file read to its end: take its fingerprint (deferred) or check it against the planned one. */
  #fileRead(u: Unit, mark: KeyspaceMark, totals: KeyspaceFileTotals, deferred: boolean): void {
    if (deferred) this.#fingerprinted(u, mark, totals.fingerprint!);
    if (totals.fingerprint !== u.fileFingerprint) throw changedWhileRead(u.file!);
  }

  /**
   * A unit whose file was not fingerprinted in the plan (#plan: no mark, a
   * new keyspace, one batch): its fingerprint is that of the bytes just read
   * and imported, set before the one write that carries the mark. A file
   * that changed since the scan is imported as read, and the next run sees
   * its current fingerprint differ from the mark's: a conflict, as when it
   * changes after an import.
   */
  #fingerprinted(u: Unit, mark: KeyspaceMark, fingerprint: string): void {
    u.fileFingerprint = fingerprint;
    u.unit = unitFingerprint(u);
    mark.file = fingerprint;
    mark.unit = u.unit;
  }

  /**
   * Whether unit `u` is imported with ONE Store.createKeyspace: its keyspace
   * is new to the database (not --merge, nothing of it committed yet) and its
   * file fits one batch, so the single write carries everything and `done`,
   * exactly as the single apply it replaces. (Decided from the plan, not by
   * asking the Store: that would wait for the write in flight.)
   */
  #createsKeyspace(u: Unit, mark: KeyspaceMark): boolean {
    // A resumed keyspace may have been written to since the run that started it: apply on top.
    if (u.action === 'resume' || u.mode === 'merge' || mark.next !== 0) return false;
    if (u.file !== undefined && Math.floor(u.file.size / KEYSPACE_RECORD_SIZE) > this.#batchRecords) return false;
    // --replace deleted it just now (in the batch that wrote the mark); otherwise it did not exist.
    return u.action === 'replace' || !u.exists;
  }

  /**
   * Import a new keyspace that fits one batch: its final counts (file count
   * plus log deltas, clamped to the signed 64-bit range as Store.apply
   * would) and its `done` mark in one Store.createKeyspace.
   */
  async #createUnit(u: Unit, mark: KeyspaceMark, store: Store): Promise<void> {
    const pipeline = this.#pipeline!;
    const deferred = u.file !== undefined && u.fileFingerprint === null;
    const totals = newTotals();
    const keys: Buffer[] = [];
    const counts: bigint[] = [];
    if (u.file) {
      const seen = { bytes: 0, records: 0 };
      // `fresh` chunks: the keys are kept (as views) until the write.
      for await (const records of readKeyspaceFile(u.file, this.#sizes, this.#fileProblems, totals, true)) {
        if (deferred && totals.records > this.#batchRecords) throw changedWhileRead(u.file);
        for (const r of records) {
          keys.push(r.key);
          counts.push(r.count);
        }
        this.#summary.keys += records.length;
        this.#fileProgress(u.file, totals, seen);
      }
      this.#fileRead(u, mark, totals, deferred);
    }

    let logSum = 0n;
    let logOnlyKeys = 0;
    /** Positions in keys/counts of every key a log frame touches. */
    const touched = new Map<string, number>();
    for (const { contribution } of u.logs) {
      for (const [id, d] of contribution.deltas) {
        let at = touched.get(id) ?? totals.seen.get(id);
        if (at === undefined) {
          at = keys.push(d.key) - 1;
          counts.push(0n);
          logOnlyKeys++;
        }
        touched.set(id, at);
        counts[at] = addDeltas(counts[at]!, d.delta); // clamped once below, as an apply would
        logSum += d.delta;
      }
      this.#summary.frames.replayed += contribution.frames;
      this.#advance(contribution.frames, 0);
    }
    let saturated = 0;
    for (const at of touched.values()) {
      const c = counts[at]!;
      counts[at] = saturate(c);
      if (counts[at] !== c) saturated++;
    }
    if (saturated > 0) {
      this.#problems.add({ kind: 'saturated', source: u.label, detail: `${saturated} counts clamped to the signed 64-bit range; the sum cannot be verified` });
    }
    const frames = u.logs.reduce((n, l) => n + l.contribution.frames, 0);
    mark.expect = { keys: totals.keys + logOnlyKeys, sum: (totals.sum + logSum).toString(), frames, records: totals.records };
    mark.next = totals.records;
    mark.done = true;
    mark.saturated = saturated > 0;
    const marks = [{ name: keyspaceMarkName(u.name), value: encodeMark(mark) }];
    const committed = (): void => {
      this.#o.afterApply?.({ keyspace: u.name, next: mark.next, done: true });
      this.#verifyQueue?.add(u.name, u.label);
    };
    if (keys.length === 0) {
      // Nothing to create (an empty or wholly damaged file): the mark alone, through the pipeline's (empty) batch.
      await pipeline.submit(() => marks, committed);
      return;
    }
    await pipeline.submitWrite(() => store.createKeyspace(u.name, keys, counts, marks).then(committed));
  }

  // ---------------------------------------------------------------- verify

  /** Queue `units` for verification (after the ones queued during the import), wait for all, and fail on any mismatch. */
  async #verify(units: Unit[]): Promise<void> {
    const queue = this.#verifyQueue!;
    for (const u of units) queue.add(u.name, u.label);
    await queue.finish();
    this.#summary.verified = queue.verified;
    const failures = queue.failures;
    if (failures.length > 0) {
      throw new CountdError(
        ErrorCodes.MIGRATE,
        `verification failed for ${failures.length} keyspace${failures.length === 1 ? '' : 's'}: ${failures.slice(0, 5).join('; ')}${failures.length > 5 ? '; …' : ''}`,
      );
    }
  }

  // ---------------------------------------------------------------- reporting

  #advance(records: number, bytes: number): void {
    this.#progress.records += records;
    this.#progress.bytes += bytes;
    if (this.#progress.phase === 'import') {
      this.#summary.records += records;
      this.#summary.bytes += bytes;
    }
    this.#emitProgress();
  }

  #emitProgress(): void {
    this.#o.onProgress?.({ ...this.#progress });
  }

  #finish(): MigrateSummary {
    const problems = this.#problems;
    const s = this.#summary;
    s.problems = { damage: problems.damage, byKind: problems.byKind(), details: problems.details };
    s.elapsedMs = Date.now() - this.#started;
    s.recordsPerSecond = s.elapsedMs > 0 ? Math.round((s.records * 1000) / s.elapsedMs) : 0;
    return s;
  }
}
