// countd migrate <legacy-dir>: import the original countd's flat-file storage
// into a countd data directory (lib/migrate/importer.ts, docs/legacy-format.md).
// Progress goes to stderr (a bar on a TTY, a line every few seconds
// otherwise); the summary goes to stdout (text, or one JSON object with --json).

import type cliProgress from 'cli-progress';
import type { Argv } from 'yargs';
import { CountdError, ErrorCodes } from '../../errors.js';
import type { MigrateProgress, MigrateSummary } from '../../migrate/importer.js';
import type { LogRule } from '../../migrate/log-states.js';
import { createLogger } from '../../util/log.js';
import { Flags, commonOptions, dataDirOf, jsonOption, sizeOptions, withOptions } from '../options.js';

export const command = 'migrate <legacy-dir>';
export const describe = "import the original countd's data directory (keyspace files and dirty commit logs) into a countd data directory";

export function builder(y: Argv): Argv {
  return withOptions(y, commonOptions, jsonOption, sizeOptions, {
    strict: { type: 'boolean', default: false, describe: 'fail on any damage in the legacy directory (nothing is imported)' },
    force: { type: 'boolean', default: false, describe: 'import although legacy lock- links exist (the original leaves them on every stop); never while a process has the directory open' },
    'legacy-log': {
      type: 'string',
      array: true,
      describe: 'INDEX=skip|all|FRAMES: replay none, all, or the first FRAMES frames of commit log INDEX, whatever its mode, lock link and content say (for a log migrate cannot tell; see docs/legacy-format.md)',
    },
    merge: { type: 'boolean', default: false, describe: 'add legacy counts to keyspaces that already exist in the data directory' },
    replace: { type: 'boolean', default: false, describe: 'delete keyspaces that already exist in the data directory, then import them' },
    'dry-run': { type: 'boolean', default: false, describe: 'print what would be imported and the problems; change nothing' },
  })
    .positional('legacy-dir', { type: 'string', describe: "the original countd's data directory (default there: /tmp/countd); only read" });
}

export async function handler(argv: Flags): Promise<void> {
  const json = argv.json === true;
  // Loaded here, not at the top: every other command would pay for them at start-up.
  const [{ migrate }, { parseLogRule }, { default: progressBars }] = await Promise.all([
    import('../../migrate/importer.js'),
    import('../../migrate/log-states.js'),
    import('cli-progress'),
  ]);
  const logRules = new Map<number, LogRule>();
  for (const text of (argv['legacy-log'] as unknown[] | undefined) ?? []) {
    const { index, rule } = parseLogRule(String(text));
    if (logRules.has(index)) throw new CountdError(ErrorCodes.INVALID_ARGUMENT, `--legacy-log: log ${index} given twice`);
    logRules.set(index, rule);
  }
  const progress = new ProgressReporter(process.stderr, progressBars);
  let summary: MigrateSummary;
  try {
    summary = await migrate({
      legacyDir: String(argv['legacy-dir']),
      dataDir: dataDirOf(argv),
      strict: argv.strict === true,
      force: argv.force === true,
      logRules,
      merge: argv.merge === true,
      replace: argv.replace === true,
      dryRun: argv['dry-run'] === true,
      sizes: {
        ...(typeof argv['keyspace-size'] === 'number' ? { keyspaceSize: argv['keyspace-size'] } : {}),
        ...(typeof argv['key-size'] === 'number' ? { keySize: argv['key-size'] } : {}),
      },
      logger: createLogger({ role: 'migrate', debug: argv.debug === true }),
      onProgress: (p) => progress.update(p),
    });
  } finally {
    progress.stop();
  }
  process.stdout.write(json ? summaryJson(summary) + '\n' : formatSummary(summary));
  // Said loudly, on stderr too: acknowledged writes of the original may be in these logs.
  if (summary.ambiguousLogs.length > 0) process.stderr.write(formatAmbiguous(summary));
  // A dry run that a real run would refuse exits non-zero too, so scripts can rely on it.
  if (summary.refused !== null) throw new CountdError(ErrorCodes.MIGRATE, `dry run: a real run would refuse: ${summary.refused}`);
}

/** A cli-progress bar on a TTY; otherwise a plain line every few seconds. */
class ProgressReporter {
  readonly #stream: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #bars: typeof cliProgress;
  #bar: cliProgress.SingleBar | undefined;
  #phase = '';
  #lastLine = 0;
  #started = Date.now();
  static readonly LINE_INTERVAL_MS = 3000;

  constructor(stream: NodeJS.WriteStream, bars: typeof cliProgress) {
    this.#stream = stream;
    this.#bars = bars;
    this.#tty = stream.isTTY === true;
  }

  update(p: MigrateProgress): void {
    if (this.#tty) {
      const total = p.phase === 'fingerprint' ? p.bytesTotal : p.recordsTotal;
      const value = p.phase === 'fingerprint' ? p.bytes : p.records;
      if (this.#phase !== p.phase) {
        this.#bar?.stop();
        this.#phase = p.phase;
        if (p.phase === 'verify') {
          this.#bar = undefined;
          this.#stream.write('verifying…\n');
          return;
        }
        this.#bar = new this.#bars.SingleBar(
          {
            stream: this.#stream,
            format: `${p.phase.padEnd(11)} [{bar}] {percentage}% | {value}/{total} ${p.phase === 'fingerprint' ? 'bytes' : 'records'} | {mb} MiB | {rate}/s | ETA {eta_formatted}`,
            hideCursor: true,
            fps: 5,
          },
          this.#bars.Presets.shades_classic,
        );
        this.#started = Date.now();
        this.#bar.start(Math.max(total, 1), 0, { mb: '0', rate: '0' });
      }
      const secs = Math.max((Date.now() - this.#started) / 1000, 0.001);
      this.#bar?.update(value, { mb: (p.bytes / 1048576).toFixed(1), rate: String(Math.round(value / secs)) });
      return;
    }
    const now = Date.now();
    if (p.phase !== this.#phase || now - this.#lastLine >= ProgressReporter.LINE_INTERVAL_MS) {
      if (p.phase !== this.#phase) this.#started = now;
      this.#phase = p.phase;
      this.#lastLine = now;
      const secs = Math.max((now - this.#started) / 1000, 0.001);
      const pct = (done: number, total: number): string => (total > 0 ? `${((100 * done) / total).toFixed(1)}%` : '-');
      const line =
        p.phase === 'verify'
          ? 'countd migrate: verifying'
          : p.phase === 'fingerprint'
            ? `countd migrate: fingerprint ${pct(p.bytes, p.bytesTotal)} (${p.bytes}/${p.bytesTotal} bytes)`
            : `countd migrate: import ${pct(p.records, p.recordsTotal)} (${p.records}/${p.recordsTotal} records, ` +
              `${(p.bytes / 1048576).toFixed(1)} MiB, ${Math.round(p.records / secs)} records/s` +
              `${p.records > 0 ? `, ETA ${Math.round(((p.recordsTotal - p.records) * secs) / p.records)} s` : ''})`;
      this.#stream.write(line + '\n');
    }
  }

  stop(): void {
    this.#bar?.stop();
    this.#bar = undefined;
  }
}

/** The warning for logs of which nothing was imported because what they hold cannot be told. */
export function formatAmbiguous(s: MigrateSummary): string {
  const lines = [`WARNING: nothing was imported from ${s.ambiguousLogs.length} commit log${s.ambiguousLogs.length === 1 ? '' : 's'} of the original; it may hold acknowledged writes:`];
  for (const l of s.ambiguousLogs) lines.push(`  ${l.log}: ${l.reason}`);
  lines.push('  Decide per log with --legacy-log INDEX=skip|all|FRAMES (rules: docs/legacy-format.md); a rerun with a rule needs --replace for the keyspaces imported now.');
  return lines.join('\n') + '\n';
}

function summaryJson(s: MigrateSummary): string {
  return JSON.stringify(s);
}

export function formatSummary(s: MigrateSummary): string {
  const k = s.keyspaces;
  const lines: string[] = [];
  const verb = s.dryRun ? 'would import' : 'imported';
  if (s.nothingToDo) {
    lines.push(`nothing to import: all ${k.alreadyImported} keyspaces of ${s.legacyDir} were imported into ${s.dataDir} before (verified ${s.verified})`);
  } else {
    lines.push(`${s.dryRun ? 'dry run: ' : ''}${s.legacyDir} -> ${s.dataDir}`);
    lines.push(
      `keyspaces: ${verb} ${k.imported} of ${k.total}` +
        (k.resumed ? `, ${k.resumed} resumed` : '') +
        (k.merged ? `, ${k.merged} merged` : '') +
        (k.replaced ? `, ${k.replaced} replaced` : '') +
        (k.alreadyImported ? `, ${k.alreadyImported} already imported` : ''),
    );
    lines.push(`keys:      ${s.keys} from keyspace files`);
    lines.push(
      `logs:      ${s.logs.replayed} replayed of ${s.logs.dirty} dirty and ${s.logs.clean} clean${s.logs.locks ? `, ${s.logs.locks} legacy lock links` : ''}` +
        (s.ambiguousLogs.length ? `; ${s.ambiguousLogs.length} NOT IMPORTED (cannot be told, see below)` : ''),
    );
    for (const l of s.legacyLogs) if (l.state !== 'applied' && l.state !== 'dirty') lines.push(`  ${l.log}: ${l.state}, ${l.replayed} of ${l.frames} frames replayed`);
    lines.push(`frames:    ${s.frames.replayed} replayed, ${s.frames.padding} padding, ${s.frames.skipped} skipped`);
    if (!s.dryRun) lines.push(`verified:  ${s.verified} keyspaces (keys and sum of counts read back)`);
    lines.push(`time:      ${(s.elapsedMs / 1000).toFixed(1)} s, ${s.recordsPerSecond} records/s`);
  }
  const kinds = Object.entries(s.problems.byKind);
  if (kinds.length === 0) lines.push('problems:  none');
  else {
    lines.push(`problems:  ${kinds.map(([kind, n]) => `${kind} ${n}`).join(', ')}`);
    for (const p of s.problems.details) lines.push(`  ${p.kind}: ${p.source}${p.offset === undefined ? '' : ` @${p.offset}`}: ${p.detail}`);
  }
  const stale = s.problems.byKind['duplicate-key'];
  if (stale) {
    lines.push(`stale:     ${stale} duplicate records in keyspace files, the original's normal leftovers (its storage re-sorts by inserting); the first record of each key is its count`);
  }
  if (s.conflicts.length > 0) lines.push(`conflicts: ${s.conflicts.map((c) => `${c.keyspace} (${c.reason})`).join(', ')}`);
  return lines.join('\n') + '\n';
}
