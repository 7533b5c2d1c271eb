// countd migrate through the real binary (bin/countd as a child process):
// summary text and JSON on stdout, progress lines on stderr (not a TTY here),
// exit codes and one-line errors.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeLegacyFixture } from '../../fixtures/make-legacy-fixture.js';
import { killAll, run } from '../cli/helpers.js';
import { FIXTURE_EXPECTED, FIXTURE_EXPECTED_WITH_LOCK, readStore, removeTempDirs, snapshotTree, tempDir } from './helpers.js';

async function fixture(options: { lock?: boolean } = {}): Promise<{ legacy: string; data: string }> {
  const root = await tempDir();
  const legacy = path.join(root, 'legacy');
  await writeLegacyFixture(legacy, options);
  return { legacy, data: path.join(root, 'data') };
}

const ORIGINAL = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../fixtures/original');

describe('countd migrate (CLI)', function () {
  after(async () => {
    await killAll();
    await removeTempDirs();
  });

  it('imports, prints a summary and progress, then says there is nothing left to import', async function () {
    const { legacy, data } = await fixture();
    const first = await run(['migrate', legacy, '--data-dir', data]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /keyspaces: imported 7 of 7/);
    assert.match(first.stdout, /frames: +7 replayed, 11 padding, 1 skipped/);
    assert.match(first.stdout, /verified: +7 keyspaces/);
    assert.match(first.stdout, /duplicate-key 1/);
    assert.match(first.stderr, /^countd migrate: import /m);
    assert.deepEqual(await readStore(data), FIXTURE_EXPECTED);
    const second = await run(['migrate', legacy, '--data-dir', data]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^nothing to import: all 7 keyspaces/);
  });

  it('--json prints the summary as one JSON object', async function () {
    const { legacy, data } = await fixture();
    const r = await run(['migrate', legacy, '--data-dir', data, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { keyspaces: { imported: number }; problems: { byKind: Record<string, number> }; verified: number };
    assert.equal(summary.keyspaces.imported, 7);
    assert.equal(summary.verified, 7);
    assert.equal(summary.problems.byKind['invalid-key'], 2);
  });

  it('--dry-run creates nothing and leaves the legacy directory as it was', async function () {
    const { legacy, data } = await fixture();
    const before = await snapshotTree(legacy);
    const r = await run(['migrate', legacy, '--data-dir', data, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^dry run: /);
    assert.match(r.stdout, /would import 7 of 7/);
    await assert.rejects(fsp.stat(data), { code: 'ENOENT' });
    assert.deepEqual(await snapshotTree(legacy), before);
  });

  it('refuses with one line and exit 1 while a legacy lock exists; --force imports', async function () {
    const { legacy, data } = await fixture({ lock: true });
    const refused = await run(['migrate', legacy, '--data-dir', data]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^countd: .*lock-0000000002.*--force[^\n]*\n$/);
    const forced = await run(['migrate', legacy, '--data-dir', data, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /0000000002: writer-in-progress, 1 of 6 frames replayed/);
    assert.deepEqual(await readStore(data), FIXTURE_EXPECTED_WITH_LOCK);
  });

  it('rejects --merge with --replace as a usage error', async function () {
    const { legacy, data } = await fixture();
    const r = await run(['migrate', legacy, '--data-dir', data, '--merge', '--replace']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--merge and --replace/);
  });

  it('--strict exits 1 on damage', async function () {
    const { legacy, data } = await fixture();
    const r = await run(['migrate', legacy, '--data-dir', data, '--strict']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^countd: --strict: the legacy directory is damaged/m);
  });

  it('a log it cannot tell: a WARNING on stderr and exit 0; --legacy-log decides it', async function () {
    const root = await tempDir();
    await promisify(execFile)('tar', ['-xzf', path.join(ORIGINAL, 'writer-mid-log.tar.gz'), '-C', root]);
    const legacy = path.join(root, 'countd');
    const r = await run(['migrate', legacy, '--data-dir', path.join(root, 'a'), '--force']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /0000000002: writer-in-progress, \d+ of 4032 frames replayed/);
    assert.match(r.stdout, /1 NOT IMPORTED/);
    assert.match(r.stdout, /^stale: +\d+ duplicate records in keyspace files, the original's normal leftovers/m);
    assert.doesNotMatch(r.stdout, /duplicate-key: /, 'stale duplicates are counted, not listed');
    assert.match(r.stderr, /^WARNING: nothing was imported from 1 commit log of the original; it may hold acknowledged writes:\n {2}0000000001: clean with a lock link and full of frames/m);
    const decided = await run(['migrate', legacy, '--data-dir', path.join(root, 'b'), '--force', '--legacy-log', '1=skip']);
    assert.equal(decided.code, 0, decided.stderr);
    assert.doesNotMatch(decided.stderr, /WARNING/);
  });

  it('--legacy-log: a malformed rule, or a log given twice, is a usage error', async function () {
    const { legacy, data } = await fixture();
    const bad = await run(['migrate', legacy, '--data-dir', data, '--legacy-log', '2=most']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--legacy-log "2=most": expected INDEX=skip, INDEX=all or INDEX=FRAMES/);
    const twice = await run(['migrate', legacy, '--data-dir', data, '--legacy-log', '2=all', '--legacy-log', '2=skip']);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /--legacy-log: log 2 given twice/);
    await assert.rejects(fsp.stat(data), { code: 'ENOENT' });
  });
});
