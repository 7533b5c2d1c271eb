// countd migrate through the library function: every kind of damage, the
// dirty/clean log rule, idempotence, crash-resume, --merge/--replace, refusals,
// --dry-run and --strict, and that the legacy directory is never modified.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { writeLegacyFixture, keyspaceRecord, legacyFrame } from '../../fixtures/make-legacy-fixture.js';
import { writeDaemonRecord } from '../../lib/datadir/daemon-record.js';
import { openDataDir } from '../../lib/datadir/meta.js';
import { ErrorCodes } from '../../lib/errors.js';
import { migrate, type MigrateOptions } from '../../lib/migrate/importer.js';
import { keyspaceMarkName } from '../../lib/store/marks.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { selfIdentity } from '../../lib/util/proc.js';
import { FIXTURE_EXPECTED, FIXTURE_EXPECTED_WITH_LOCK, readStore, rejectsWith, removeTempDirs, snapshotTree, tempDir } from './helpers.js';

const SIZES = { keyspaceSize: 256, keySize: 256 };

async function fixture(options: { lock?: boolean } = {}): Promise<{ legacy: string; data: string }> {
  const root = await tempDir();
  const legacy = path.join(root, 'legacy');
  await writeLegacyFixture(legacy, options);
  return { legacy, data: path.join(root, 'data') };
}

/** Put counts into a data directory as if an earlier countd had them. */
async function seed(data: string, keyspace: string, counts: Record<string, bigint>): Promise<void> {
  const dir = await openDataDir(data, { create: true });
  const store = await Store.open({ location: dir.paths.db, sizes: dir.sizes });
  const batch = new IncrementBatch();
  for (const [k, v] of Object.entries(counts)) batch.add(Buffer.from(keyspace), Buffer.from(k), v);
  await store.apply(batch);
  await store.close();
}

function run(legacy: string, data: string, extra: Partial<MigrateOptions> = {}) {
  return migrate({ legacyDir: legacy, dataDir: data, ...extra });
}

describe('countd migrate (library)', function () {
  after(removeTempDirs);

  describe('the fixture', function () {
    it('imports keyspace files and dirty logs, skipping and reporting every kind of damage', async function () {
      const { legacy, data } = await fixture();
      const summary = await run(legacy, data);
      assert.deepEqual(await readStore(data), FIXTURE_EXPECTED);
      assert.deepEqual(summary.problems.byKind, {
        'duplicate-key': 1,
        'empty-file': 1,
        'invalid-frame': 1,
        'invalid-key': 2,
        'log-mode': 1,
        'no-keyspace-file': 1,
        'out-of-order': 1,
        'partial-frame': 1,
        'partial-record': 1,
        'stray-file': 3,
      });
      assert.equal(summary.problems.damage, 11, 'out-of-order and duplicate-key are notices, not damage');
      assert.equal(summary.keyspaces.total, 7);
      assert.equal(summary.keyspaces.imported, 7);
      assert.equal(summary.keys, 11);
      assert.deepEqual(summary.logs, { dirty: 2, clean: 1, locks: 0, replayed: 2 });
      assert.deepEqual(summary.frames, { replayed: 7, padding: 11, skipped: 1 });
      assert.equal(summary.verified, 7);
      assert.equal(summary.nothingToDo, false);
    });

    it('keeps the first record of a duplicate key and imports a zero count', async function () {
      const { legacy, data } = await fixture();
      await run(legacy, data);
      const fruit = (await readStore(data)).fruit!;
      assert.equal(fruit.banana, 30n);
      assert.equal(fruit.date, 0n);
      assert.equal(fruit.fig, undefined, 'the partial record is not imported');
    });

    it('replays dirty (0400) logs only: not clean (0200) ones nor other modes', async function () {
      const { legacy, data } = await fixture();
      const summary = await run(legacy, data);
      assert.equal((await readStore(data)).fruit!.apple, 56n);
      const mode = summary.problems.details.find((p) => p.kind === 'log-mode');
      assert.equal(mode?.source, '0000000003');
    });

    it('leaves the legacy directory byte-for-byte and mode-for-mode unchanged', async function () {
      const { legacy, data } = await fixture({ lock: true });
      const before = await snapshotTree(legacy);
      assert.equal(before['/0000000000']?.startsWith('file 400 '), true);
      assert.equal(before['/0000000002']?.startsWith('file 200 nlink 2 '), true);
      await run(legacy, data, { dryRun: true, force: true });
      await run(legacy, data, { force: true });
      await run(legacy, data, { force: true });
      assert.deepEqual(await snapshotTree(legacy), before);
    });

    it('skips names that do not fit a data directory with smaller field sizes', async function () {
      const { legacy, data } = await fixture();
      const summary = await run(legacy, data, { sizes: { keyspaceSize: 64, keySize: 32 } });
      const got = await readStore(data, { keyspaceSize: 64, keySize: 32 });
      assert.equal(got['l'.repeat(100)], undefined);
      assert.deepEqual(got['long-keys'], { short: 1n });
      assert.deepEqual(got.fruit, FIXTURE_EXPECTED.fruit);
      assert.equal(summary.problems.byKind['keyspace-too-long'], 1);
      assert.equal(summary.problems.byKind['key-too-long'], 1);
    });
  });

  describe('idempotence and crashes', function () {
    it('a second run imports nothing and says so', async function () {
      const { legacy, data } = await fixture();
      await run(legacy, data);
      const second = await run(legacy, data);
      assert.equal(second.nothingToDo, true);
      assert.equal(second.keyspaces.imported, 0);
      assert.equal(second.keyspaces.alreadyImported, 7);
      assert.equal(second.keys, 0);
      assert.equal(second.frames.replayed, 0);
      assert.equal(second.verified, 7);
      assert.deepEqual(await readStore(data), FIXTURE_EXPECTED);
    });

    it('resumes after a crash mid-file without counting anything twice', async function () {
      const root = await tempDir();
      const legacy = path.join(root, 'legacy');
      const data = path.join(root, 'data');
      await fsp.mkdir(path.join(legacy, 'big'), { recursive: true });
      const records = Array.from({ length: 10 }, (_, i) => keyspaceRecord(BigInt(100 - i), `k${i}`));
      records.splice(5, 0, keyspaceRecord(1n, 'k0')); // a duplicate across batches
      await fsp.writeFile(path.join(legacy, 'big', 'keyspace'), Buffer.concat(records));
      await fsp.writeFile(path.join(legacy, '0000000000'), Buffer.concat([legacyFrame(1n, 'big', 'k9'), legacyFrame(5n, 'big', 'new')]), { mode: 0o400 });
      await fsp.chmod(path.join(legacy, '0000000000'), 0o400);
      let applies = 0;
      await assert.rejects(
        run(legacy, data, {
          batchRecords: 3,
          afterApply: () => {
            if (++applies === 2) throw new Error('simulated crash');
          },
        }),
        /simulated crash/,
      );
      const partial = await readStore(data);
      assert.equal(Object.keys(partial.big!).length, 5, 'two batches of 3 records, one of them the duplicate');
      const second = await run(legacy, data, { batchRecords: 4 });
      assert.equal(second.keyspaces.resumed, 1);
      const expected: Record<string, bigint> = {};
      for (let i = 0; i < 10; i++) expected[`k${i}`] = BigInt(100 - i);
      expected.k9 = 92n;
      expected.new = 5n;
      assert.deepEqual((await readStore(data)).big, expected);
      assert.equal(second.problems.byKind['duplicate-key'], 1);
      assert.equal((await run(legacy, data)).nothingToDo, true);
    });

    it('a crash between keyspaces: the rerun imports the rest, log frames exactly once', async function () {
      const { legacy, data } = await fixture();
      let applies = 0;
      await assert.rejects(run(legacy, data, { afterApply: () => { if (++applies === 3) throw new Error('crash'); } }), /crash/);
      await run(legacy, data);
      await run(legacy, data);
      assert.deepEqual(await readStore(data), FIXTURE_EXPECTED);
    });
  });

  describe('keyspaces that exist in the data directory', function () {
    it('refuses without --merge or --replace, importing nothing', async function () {
      const { legacy, data } = await fixture();
      await seed(data, 'fruit', { apple: 10n, kiwi: 4n });
      await rejectsWith(run(legacy, data), ErrorCodes.MIGRATE, /"fruit" \(already exists\).*--merge.*--replace/);
      assert.deepEqual(await readStore(data), { fruit: { apple: 10n, kiwi: 4n } });
    });

    it('--merge adds the legacy counts', async function () {
      const { legacy, data } = await fixture();
      await seed(data, 'fruit', { apple: 10n, kiwi: 4n });
      const summary = await run(legacy, data, { merge: true });
      assert.equal(summary.keyspaces.merged, 1);
      assert.deepEqual((await readStore(data)).fruit, { ...FIXTURE_EXPECTED.fruit, apple: 66n, kiwi: 4n });
      assert.equal((await run(legacy, data)).nothingToDo, true, 'a merged keyspace is ours afterwards');
    });

    it('--merge resumes after a crash with the base it recorded, counting nothing twice', async function () {
      const { legacy, data } = await fixture();
      await seed(data, 'fruit', { apple: 10n, kiwi: 4n });
      let applies = 0;
      // Batches of 2 records: fruit's file takes 3 applies; crash after its first.
      const crashAfterFruitBatch = (info: { keyspace: Buffer }): void => {
        if (info.keyspace.toString() === 'fruit' && ++applies === 1) throw new Error('crash');
      };
      await assert.rejects(run(legacy, data, { merge: true, batchRecords: 2, afterApply: crashAfterFruitBatch }), /crash/);
      const summary = await run(legacy, data, { batchRecords: 2 }); // no --merge needed: the keyspace is ours now
      assert.equal(summary.keyspaces.resumed, 1);
      assert.deepEqual((await readStore(data)).fruit, { ...FIXTURE_EXPECTED.fruit, apple: 66n, kiwi: 4n });
    });

    it('--replace deletes the keyspace first', async function () {
      const { legacy, data } = await fixture();
      await seed(data, 'fruit', { apple: 10n, kiwi: 4n });
      const summary = await run(legacy, data, { replace: true });
      assert.equal(summary.keyspaces.replaced, 1);
      assert.deepEqual(await readStore(data), FIXTURE_EXPECTED);
    });

    it('rejects --merge with --replace', async function () {
      const { legacy, data } = await fixture();
      await rejectsWith(run(legacy, data, { merge: true, replace: true }), ErrorCodes.INVALID_ARGUMENT);
    });

    it('treats a legacy file changed since its import as a conflict', async function () {
      const { legacy, data } = await fixture();
      await run(legacy, data);
      const file = path.join(legacy, 'scores', 'keyspace');
      await fsp.appendFile(file, keyspaceRecord(1n, 'dave'));
      await rejectsWith(run(legacy, data), ErrorCodes.MIGRATE, /"scores" \(imported before from other legacy files\)/);
      await run(legacy, data, { replace: true });
      assert.deepEqual((await readStore(data)).scores, { ...FIXTURE_EXPECTED.scores, dave: 1n });
    });
  });

  describe('--dry-run and --strict', function () {
    it('--dry-run reports what would be imported and creates nothing', async function () {
      const { legacy, data } = await fixture();
      const summary = await run(legacy, data, { dryRun: true });
      assert.equal(summary.dryRun, true);
      assert.equal(summary.keyspaces.imported, 7);
      assert.equal(summary.keys, 11);
      assert.equal(summary.frames.replayed, 7);
      assert.equal(summary.problems.damage, 11);
      assert.equal(summary.verified, 0);
      await assert.rejects(fsp.stat(data), { code: 'ENOENT' });
    });

    it('--dry-run on an existing data directory predicts a refusal and changes no count', async function () {
      const { legacy, data } = await fixture();
      await seed(data, 'fruit', { apple: 10n });
      const summary = await run(legacy, data, { dryRun: true });
      assert.match(summary.refused ?? '', /fruit/);
      assert.deepEqual(summary.conflicts, [{ keyspace: 'fruit', reason: 'exists' }]);
      assert.deepEqual(await readStore(data), { fruit: { apple: 10n } });
    });

    it('--strict refuses a damaged directory before writing anything', async function () {
      const { legacy, data } = await fixture();
      await rejectsWith(run(legacy, data, { strict: true }), ErrorCodes.MIGRATE, /--strict.*invalid-key 2/);
      assert.deepEqual(await readStore(data), {});
    });

    it('--strict imports a directory without damage', async function () {
      const root = await tempDir();
      const legacy = path.join(root, 'legacy');
      await fsp.mkdir(path.join(legacy, 'ok'), { recursive: true });
      await fsp.writeFile(path.join(legacy, 'ok', 'keyspace'), Buffer.concat([keyspaceRecord(3n, 'a'), keyspaceRecord(5n, 'b')]));
      const summary = await run(legacy, path.join(root, 'data'), { strict: true });
      assert.equal(summary.problems.damage, 0);
      assert.equal(summary.problems.byKind['out-of-order'], 1);
      assert.deepEqual(await readStore(path.join(root, 'data')), { ok: { a: 3n, b: 5n } });
    });
  });

  describe('refusals', function () {
    it('refuses while a legacy lock link exists, unless --force', async function () {
      const { legacy, data } = await fixture({ lock: true });
      await rejectsWith(run(legacy, data), ErrorCodes.MIGRATE, /lock-0000000002.*--force/);
      await assert.rejects(fsp.stat(data), { code: 'ENOENT' });
      const summary = await run(legacy, data, { force: true });
      assert.equal(summary.problems.byKind['legacy-lock'], 1);
      assert.equal(summary.logs.locks, 1);
      // With its lock link, clean log 2 (a frame, then zeros) is the writer's log in progress: replayed.
      assert.equal(summary.problems.byKind['writer-log'], 1);
      assert.deepEqual(await readStore(data), FIXTURE_EXPECTED_WITH_LOCK);
    });

    it('refuses while a daemon runs on the data directory', async function () {
      const { legacy, data } = await fixture();
      const dir = await openDataDir(data, { create: true });
      await writeDaemonRecord(dir.paths, { ...selfIdentity(), listen: '127.0.0.1', writePort: 1, readPort: 2, startedAt: new Date().toISOString() });
      await rejectsWith(run(legacy, data), ErrorCodes.ALREADY_RUNNING, new RegExp(`pid ${process.pid}.*stop it`));
      await fsp.unlink(dir.paths.daemonRecord);
    });

    it('refuses while another process holds the database (COUNTD_LOCKED backstop)', async function () {
      const { legacy, data } = await fixture();
      const dir = await openDataDir(data, { create: true });
      const holder = await Store.open({ location: dir.paths.db, sizes: SIZES });
      try {
        await rejectsWith(run(legacy, data), ErrorCodes.LOCKED);
      } finally {
        await holder.close();
      }
    });

    it('refuses a data directory inside the legacy directory', async function () {
      const { legacy } = await fixture();
      await rejectsWith(run(legacy, path.join(legacy, 'new')), ErrorCodes.INVALID_ARGUMENT, /inside/);
      await assert.rejects(fsp.stat(path.join(legacy, 'new')), { code: 'ENOENT' });
    });

    it('refuses a legacy directory that does not exist', async function () {
      const root = await tempDir();
      await rejectsWith(run(path.join(root, 'nope'), path.join(root, 'data')), ErrorCodes.INVALID_ARGUMENT, /does not exist/);
    });
  });
});

describe('countd migrate (library): verification and saturation', function () {
  after(removeTempDirs);

  it('fails with COUNTD_MIGRATE when the data read back differs from the legacy source', async function () {
    const { legacy, data } = await fixture();
    await run(legacy, data);
    // Someone changes an imported keyspace behind the migration's back.
    const dir = await openDataDir(data, { create: false });
    const store = await Store.open({ location: dir.paths.db, sizes: dir.sizes });
    const batch = new IncrementBatch();
    batch.add(Buffer.from('fruit'), Buffer.from('apple'), 1n);
    await store.apply(batch);
    await store.close();
    await rejectsWith(run(legacy, data), ErrorCodes.MIGRATE, /verification failed for 1 keyspace: "fruit": counts sum to 109 read back, expected 108/);
  });

  it('reports counts clamped to the signed 64-bit range and still verifies the keys', async function () {
    const root = await tempDir();
    const legacy = path.join(root, 'legacy');
    await fsp.mkdir(path.join(legacy, 'big'), { recursive: true });
    const max = 2n ** 63n - 1n;
    await fsp.writeFile(path.join(legacy, 'big', 'keyspace'), Buffer.concat([keyspaceRecord(max, 'top'), keyspaceRecord(1n, 'low')]));
    await fsp.writeFile(path.join(legacy, '0000000007'), legacyFrame(10n, 'big', 'top'));
    await fsp.chmod(path.join(legacy, '0000000007'), 0o400);
    const summary = await run(legacy, path.join(root, 'data'));
    assert.equal(summary.problems.byKind.saturated, 1);
    assert.equal(summary.verified, 1);
    assert.deepEqual(await readStore(path.join(root, 'data')), { big: { top: max, low: 1n } });
  });
});

describe('countd migrate (library): a mark that cannot be read is an error, never "absent"', function () {
  after(removeTempDirs);

  /** Import the fixture, then overwrite the mark of keyspace fruit with `value`. */
  async function withMark(value: Buffer): Promise<{ legacy: string; data: string }> {
    const { legacy, data } = await fixture();
    await run(legacy, data);
    const dir = await openDataDir(data, { create: false });
    const store = await Store.open({ location: dir.paths.db, sizes: dir.sizes });
    await store.apply(new IncrementBatch(), [{ name: keyspaceMarkName(Buffer.from('fruit')), value }]);
    await store.close();
    return { legacy, data };
  }

  it('a mark that is not JSON: COUNTD_CORRUPTION naming the mark and its bytes; --merge adds nothing twice', async function () {
    const { legacy, data } = await withMark(Buffer.from('{"v":1,"unit":'));
    const markName = keyspaceMarkName(Buffer.from('fruit'));
    const hex = Buffer.from('{"v":1,"unit":').toString('hex');
    await rejectsWith(run(legacy, data), ErrorCodes.CORRUPTION, new RegExp(`mark ${markName} is corrupt \\(not JSON; 14 bytes: ${hex}\\)`));
    // Read as "absent", --merge would add fruit's legacy counts a second time.
    await rejectsWith(run(legacy, data, { merge: true }), ErrorCodes.CORRUPTION, /corrupt/);
    assert.deepEqual(await readStore(data), FIXTURE_EXPECTED);
  });

  it('an empty mark, and a mark with a field out of range: COUNTD_CORRUPTION', async function () {
    const empty = await withMark(Buffer.alloc(0));
    await rejectsWith(run(empty.legacy, empty.data), ErrorCodes.CORRUPTION, /not JSON; 0 bytes: \)/);
    const mark = { v: 1, keyspace: 'fruit', unit: 'a'.repeat(64), file: null, logs: [], mode: 'new', base: null, next: -1, done: false, expect: null, saturated: false, at: '' };
    const bad = await withMark(Buffer.from(JSON.stringify(mark)));
    await rejectsWith(run(bad.legacy, bad.data), ErrorCodes.CORRUPTION, /'next' is not a record number/);
  });

  it('a mark of another version: COUNTD_DATA_DIR_MISMATCH with its bytes', async function () {
    const { legacy, data } = await withMark(Buffer.from('{"v":2}'));
    await rejectsWith(run(legacy, data), ErrorCodes.DATA_DIR_MISMATCH, /has version 2 \(7 bytes: 7b2276223a327d\), this countd reads version 1/);
  });

  it('--replace imports the keyspace again over a corrupt mark, exactly once', async function () {
    const { legacy, data } = await withMark(Buffer.from([0xff, 0x00, 0x01]));
    const summary = await run(legacy, data, { replace: true });
    assert.equal(summary.keyspaces.replaced, 1);
    assert.deepEqual(await readStore(data), FIXTURE_EXPECTED);
    const again = await run(legacy, data);
    assert.equal(again.nothingToDo, true);
  });
});
