// countd migrate on directories written by the ORIGINAL countd itself
// (fixtures/original/<shape>.tar.gz, made by fixtures/make-original-fixtures.sh
// with the original's writer, worker and countd-test-correctness client), each
// compared key by key with its truth (<shape>.truth.json: what the client sent
// and the writer acknowledged). Also the refusals around the original's lock
// links and the --legacy-log rules.

import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ErrorCodes } from '../../lib/errors.js';
import { migrate, type MigrateOptions, type MigrateSummary } from '../../lib/migrate/importer.js';
import type { LogRule } from '../../lib/migrate/log-states.js';
import { readStore, rejectsWith, removeTempDirs, tempDir } from './helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const ORIGINAL = path.join(ROOT, 'fixtures', 'original');
const FRAME = 520;

interface Truth {
  runs: string[];
  keys: number;
  reusedLog?: { log: number; newFrames: number };
  keyspaces: Record<string, Record<string, number>>;
}

type Counts = Record<string, Record<string, bigint>>;

/** Extract a shape (tar keeps the 0200/0400 modes and the lock hard links git would lose). */
async function shape(name: string): Promise<{ legacy: string; data: string; truth: Truth }> {
  const root = await tempDir();
  await promisify(execFile)('tar', ['-xzf', path.join(ORIGINAL, `${name}.tar.gz`), '-C', root]);
  const truth = JSON.parse(await fsp.readFile(path.join(ORIGINAL, `${name}.truth.json`), 'utf8')) as Truth;
  return { legacy: path.join(root, 'countd'), data: path.join(root, 'data'), truth };
}

function run(legacy: string, data: string, extra: Partial<MigrateOptions> = {}): Promise<MigrateSummary> {
  return migrate({ legacyDir: legacy, dataDir: data, ...extra });
}

/** Per key: what the log's first `frames` frames add (parsed here, independently of lib/migrate). */
async function logDeltas(file: string, frames = Infinity): Promise<Counts> {
  const bytes = await fsp.readFile(file);
  const out: Counts = {};
  const name = (at: number): string => {
    const end = bytes.indexOf(0, at);
    return bytes.toString('latin1', at, end < 0 || end > at + 256 ? at + 256 : end);
  };
  for (let i = 0; i < Math.min(frames, Math.floor(bytes.length / FRAME)); i++) {
    const inc = bytes.readBigInt64LE(i * FRAME);
    if (inc === 0n) continue;
    const ks = name(i * FRAME + 8);
    const key = name(i * FRAME + 264);
    (out[ks] ??= {})[key] = (out[ks][key] ?? 0n) + inc;
  }
  return out;
}

function truthCounts(truth: Truth): Counts {
  const out: Counts = {};
  for (const [ks, keys] of Object.entries(truth.keyspaces)) out[ks] = Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, BigInt(v)]));
  return out;
}

/** Keys whose count differs from `expected(ks, key)`, over the union of both sides' keys. */
function mismatches(actual: Counts, truth: Counts, expected: (ks: string, key: string, t: bigint) => bigint = (_ks, _k, t) => t): string[] {
  const out: string[] = [];
  for (const ks of new Set([...Object.keys(actual), ...Object.keys(truth)])) {
    for (const key of new Set([...Object.keys(actual[ks] ?? {}), ...Object.keys(truth[ks] ?? {})])) {
      const want = expected(ks, key, truth[ks]?.[key] ?? 0n);
      // A key the database does not hold counts 0 (the truth has no key at 0).
      const got = actual[ks]?.[key] ?? 0n;
      if (got !== want) out.push(`${ks}/${key}: got ${String(got)}, want ${want}`);
    }
  }
  return out;
}

function stateOf(s: MigrateSummary, log: string): string | undefined {
  return s.legacyLogs.find((l) => l.log === log)?.state;
}

describe('countd migrate on data the original countd wrote', function () {
  this.timeout(60_000);
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await removeTempDirs();
  });

  it('clean stop (Ctrl-C, worker idle): no lock link, every key exact, stale duplicates only counted', async function () {
    const { legacy, data, truth } = await shape('clean-stop');
    const summary = await run(legacy, data);
    assert.equal(summary.logs.locks, 0);
    assert.deepEqual(summary.ambiguousLogs, []);
    assert.deepEqual(mismatches(await readStore(data), truthCounts(truth)), []);
    assert.ok((summary.problems.byKind['duplicate-key'] ?? 0) > 0, 'the original leaves stale duplicate records');
    assert.equal(summary.problems.details.filter((p) => p.kind === 'duplicate-key').length, 0, 'counted, not listed');
    assert.equal(summary.problems.damage, 0);
  });

  it("writer mid-log: refuses the stale lock links saying so, then with --force replays the writer's log: every key exact", async function () {
    const { legacy, data, truth } = await shape('writer-mid-log');
    await rejectsWith(run(legacy, data), ErrorCodes.MIGRATE, /lock-0000000002.*no process has a file of it open.*stale.*--force/);
    await assert.rejects(fsp.stat(data), { code: 'ENOENT' });
    const summary = await run(legacy, data, { force: true });
    assert.equal(stateOf(summary, '0000000002'), 'writer-in-progress');
    const writerLog = summary.legacyLogs.find((l) => l.log === '0000000002')!;
    assert.ok(writerLog.replayed > 0 && writerLog.replayed < writerLog.frames);
    assert.deepEqual(mismatches(await readStore(data), truthCounts(truth)), []);
  });

  it('worker mid-apply: imports nothing of the log being applied, says so; the truth lies between skip and --legacy-log all', async function () {
    const { legacy, data, truth } = await shape('worker-mid-apply');
    const summary = await run(legacy, data, { force: true });
    assert.equal(stateOf(summary, '0000000001'), 'interrupted-apply');
    assert.ok(summary.ambiguousLogs.some((l) => l.log === '0000000001'));
    assert.ok(summary.problems.byKind['ambiguous-log']! >= 1);
    const skipped = await readStore(data);
    const log1 = await logDeltas(path.join(legacy, '0000000001'));
    const t = truthCounts(truth);
    // Keys the log does not name are exact; the others lack at most the log's frames.
    assert.deepEqual(
      mismatches(skipped, t, (ks, key, want) => (log1[ks]?.[key] === undefined ? want : skipped[ks]?.[key] ?? 0n)),
      [],
    );
    let short = 0;
    for (const [ks, keys] of Object.entries(log1)) {
      for (const [key, d] of Object.entries(keys)) {
        const got = skipped[ks]?.[key] ?? 0n;
        const want = t[ks]?.[key] ?? 0n;
        assert.ok(got <= want && want <= got + d, `${ks}/${key}: ${got} <= ${want} <= ${got} + ${d}`);
        if (got < want) short++;
      }
    }
    assert.ok(short > 0, 'the worker was killed before applying all of log 1');
    const data2 = path.join(path.dirname(data), 'data-all');
    const all = await run(legacy, data2, { force: true, logRules: new Map<number, LogRule>([[1, 'all']]) });
    assert.deepEqual(all.ambiguousLogs, []);
    const replayed = await readStore(data2);
    assert.deepEqual(mismatches(replayed, t, (ks, key) => (skipped[ks]?.[key] ?? 0n) + (log1[ks]?.[key] ?? 0n)), []);
  });

  it('reused log: imports nothing of it by default and says so; --legacy-log 0=FRAMES with the frames the new writer wrote is exact', async function () {
    const { legacy, data, truth } = await shape('reused-log');
    const reused = truth.reusedLog!;
    assert.ok(reused.newFrames > 0);
    const summary = await run(legacy, data, { force: true });
    assert.equal(stateOf(summary, '0000000000'), 'ambiguous');
    assert.equal(stateOf(summary, '0000000002'), 'writer-in-progress', "the first writer's log, stranded by its stale lock link");
    const fresh = await logDeltas(path.join(legacy, '0000000000'), reused.newFrames);
    const t = truthCounts(truth);
    assert.deepEqual(mismatches(await readStore(data), t, (ks, key, want) => want - (fresh[ks]?.[key] ?? 0n)), []);
    // A rerun with the rule changes what the keyspaces are made of: refused, then --replace.
    // Log 1 is the worker's last applied log (ambiguous too): the operator says so.
    assert.equal(stateOf(summary, '0000000001'), 'ambiguous');
    const rules = new Map<number, LogRule>([
      [0, reused.newFrames],
      [1, 'skip'],
    ]);
    await rejectsWith(run(legacy, data, { force: true, logRules: rules }), ErrorCodes.MIGRATE, /--replace/);
    const replaced = await run(legacy, data, { force: true, logRules: rules, replace: true });
    assert.deepEqual(replaced.ambiguousLogs, []);
    assert.deepEqual(mismatches(await readStore(data), t), []);
  });

  describe('refusals', function () {
    it('refuses, even with --force, while a process has a file of the directory open, naming it', async function () {
      const { legacy, data } = await shape('writer-mid-log');
      const fh = await fsp.open(path.join(legacy, '0000000002'), 'r');
      const child = spawn('sleep', ['600'], { stdio: [fh.fd, 'ignore', 'ignore'] });
      children.push(child);
      await new Promise((resolve) => child.once('spawn', resolve));
      await fh.close();
      await rejectsWith(run(legacy, data, { force: true }), ErrorCodes.LOCKED, new RegExp(`pid ${child.pid} \\(sleep 600\\) has 0000000002 open`));
      child.kill('SIGKILL');
      await assert.rejects(fsp.stat(data), { code: 'ENOENT' });
    });

    it("names the original's processes when they run but hold nothing in the directory", async function () {
      const { legacy, data } = await shape('writer-mid-log');
      // A process whose command line is the original's writer's (python running .../bin/countd-write).
      const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)', '/opt/countd-original/bin/countd-write'], { stdio: 'ignore', argv0: 'python2.7' });
      children.push(child);
      await new Promise((resolve) => child.once('spawn', resolve));
      await rejectsWith(run(legacy, data), ErrorCodes.MIGRATE, new RegExp(`processes of the original run \\([^)]*pid ${child.pid}\\b[^)]*\\) but hold nothing in it`));
      child.kill('SIGKILL');
    });

    it('--legacy-log: an index with no log, or more frames than the log has, is refused before anything is written', async function () {
      const { legacy, data } = await shape('writer-mid-log');
      await rejectsWith(run(legacy, data, { force: true, logRules: new Map<number, LogRule>([[9, 'all']]) }), ErrorCodes.INVALID_ARGUMENT, /no commit log 0000000009/);
      await rejectsWith(run(legacy, data, { force: true, logRules: new Map<number, LogRule>([[2, 5000]]) }), ErrorCodes.INVALID_ARGUMENT, /has only 4032 frames/);
      await rejectsWith(run(legacy, data, { force: true, logRules: [[2, 'all']] as unknown as Map<number, LogRule> }), ErrorCodes.INVALID_ARGUMENT, /logRules must be a Map/);
      await rejectsWith(run(legacy, data, { force: true, logRules: new Map([[2, 'most']]) as unknown as Map<number, LogRule> }), ErrorCodes.INVALID_ARGUMENT, /not skip, all or a number/);
      await assert.rejects(fsp.stat(data), { code: 'ENOENT' });
    });

    it('--legacy-log N=skip leaves out even a log migrate would replay', async function () {
      const { legacy, data, truth } = await shape('writer-mid-log');
      const summary = await run(legacy, data, { force: true, logRules: new Map<number, LogRule>([[2, 'skip']]) });
      assert.equal(summary.legacyLogs.find((l) => l.log === '0000000002')!.replayed, 0);
      const writer = await logDeltas(path.join(legacy, '0000000002'));
      assert.deepEqual(mismatches(await readStore(data), truthCounts(truth), (ks, key, want) => want - (writer[ks]?.[key] ?? 0n)), []);
      assert.ok(Object.keys(writer).length > 0);
    });
  });

  it('every fixture frame count is whole: the logs are the 4,032-frame files the original preallocates', async function () {
    const { legacy } = await shape('writer-mid-log');
    for (const name of (await fsp.readdir(legacy)).filter((n) => /^\d{10}$/.test(n))) {
      assert.equal((await fsp.stat(path.join(legacy, name))).size, 4032 * FRAME, name);
    }
  });
});
