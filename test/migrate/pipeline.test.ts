// The import pipeline (lib/migrate/apply-pipeline.ts): the next batch or
// keyspace is read while the Store writes the last one, and a keyspace is
// verified as soon as its last batch commits. Whatever is in flight when the
// run stops, a rerun must import every record and frame exactly once.
// Also the fingerprint of a new one-batch keyspace file, taken from the
// import's own read rather than a separate pass (docs/legacy-format.md).

import assert from 'node:assert/strict';
import { promises as fsp, appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { keyspaceRecord, legacyFrame, writeLegacyFixture } from '../../fixtures/make-legacy-fixture.js';
import { isCountdError, ErrorCodes } from '../../lib/errors.js';
import { migrate, type MigrateOptions } from '../../lib/migrate/importer.js';
import { FIXTURE_EXPECTED, readStore, removeTempDirs, tempDir } from './helpers.js';

function run(legacy: string, data: string, extra: Partial<MigrateOptions> = {}) {
  return migrate({ legacyDir: legacy, dataDir: data, ...extra });
}

async function fixture(): Promise<{ legacy: string; data: string }> {
  const root = await tempDir();
  const legacy = path.join(root, 'legacy');
  await writeLegacyFixture(legacy);
  return { legacy, data: path.join(root, 'data') };
}

describe('countd migrate (library): pipelined import', function () {
  after(removeTempDirs);

  it('a crash after any apply, the next batch or keyspace already in the making: the rerun imports everything exactly once', async function () {
    this.timeout(30_000);
    // Batches of 2 records: keyspaces of one and of several batches, applies back to back.
    const options = { batchRecords: 2 };
    const probe = await fixture();
    let total = 0;
    await run(probe.legacy, probe.data, { ...options, afterApply: () => void total++ });
    assert.ok(total >= 9, `expected several applies, got ${total}`);
    for (let crashAt = 1; crashAt <= total; crashAt++) {
      const { legacy, data } = await fixture();
      let applies = 0;
      await assert.rejects(
        run(legacy, data, {
          ...options,
          afterApply: () => {
            if (++applies === crashAt) throw new Error(`crash after apply ${crashAt}`);
          },
        }),
        new RegExp(`crash after apply ${crashAt}$`),
      );
      assert.equal(applies, crashAt, 'nothing is applied after the failed apply');
      const second = await run(legacy, data, options);
      assert.equal(second.verified, 7, `crash after apply ${crashAt}`);
      assert.deepEqual(await readStore(data), FIXTURE_EXPECTED, `crash after apply ${crashAt}`);
      assert.equal((await run(legacy, data)).nothingToDo, true);
    }
  });

  it('verifies every keyspace, those verified while later ones were imported included', async function () {
    const root = await tempDir();
    const legacy = path.join(root, 'legacy');
    for (let k = 0; k < 12; k++) {
      await fsp.mkdir(path.join(legacy, `ks${k}`), { recursive: true });
      const records = Array.from({ length: 5 + k }, (_, i) => keyspaceRecord(BigInt(100 - i), `key${i}`));
      await fsp.writeFile(path.join(legacy, `ks${k}`, 'keyspace'), Buffer.concat(records));
    }
    await fsp.writeFile(path.join(legacy, '0000000000'), Buffer.concat([legacyFrame(3n, 'ks4', 'key0'), legacyFrame(2n, 'ks9', 'only-in-log')]));
    await fsp.chmod(path.join(legacy, '0000000000'), 0o400);
    const summary = await run(legacy, path.join(root, 'data'), { batchRecords: 4 });
    assert.equal(summary.verified, 12);
    const got = await readStore(path.join(root, 'data'));
    assert.equal(Object.keys(got).length, 12);
    assert.equal(got.ks4!.key0, 103n);
    assert.equal(got.ks9!['only-in-log'], 2n);
    assert.equal(Object.keys(got.ks11!).length, 16);
  });
});

describe('countd migrate (library): fingerprints taken while importing', function () {
  after(removeTempDirs);

  async function twoKeyspaces(): Promise<{ legacy: string; data: string; b: string }> {
    const root = await tempDir();
    const legacy = path.join(root, 'legacy');
    for (const ks of ['a', 'b']) {
      await fsp.mkdir(path.join(legacy, ks), { recursive: true });
      await fsp.writeFile(path.join(legacy, ks, 'keyspace'), Buffer.concat([keyspaceRecord(3n, 'x'), keyspaceRecord(2n, 'y'), keyspaceRecord(1n, 'z')]));
    }
    return { legacy, data: path.join(root, 'data'), b: path.join(legacy, 'b', 'keyspace') };
  }

  /** onProgress hook: run `change` once, while keyspace `a` is imported (after the scan, before `b` is read). */
  function whileImportingA(change: () => void): MigrateOptions['onProgress'] {
    let done = false;
    return (p) => {
      if (p.phase === 'import' && p.records > 0 && !done) {
        done = true;
        change();
      }
    };
  }

  it('a one-batch file that grows past one batch before it is read: stops before writing it; the rerun imports it whole', async function () {
    const { legacy, data, b } = await twoKeyspaces();
    const grow = whileImportingA(() => appendFileSync(b, Buffer.concat([keyspaceRecord(0n, 'v'), keyspaceRecord(-1n, 'w')])));
    try {
      await run(legacy, data, { batchRecords: 3, onProgress: grow });
      assert.fail('expected the run to stop');
    } catch (err) {
      assert.ok(isCountdError(err), String(err));
      assert.equal(err.code, ErrorCodes.MIGRATE);
      assert.match(err.message, /b\/keyspace changed while it was being imported/);
    }
    assert.deepEqual(await readStore(data), { a: { x: 3n, y: 2n, z: 1n } });
    const second = await run(legacy, data, { batchRecords: 3 });
    assert.equal(second.keyspaces.imported, 1);
    assert.deepEqual((await readStore(data)).b, { x: 3n, y: 2n, z: 1n, v: 0n, w: -1n });
    assert.equal((await run(legacy, data, { batchRecords: 3 })).nothingToDo, true);
  });

  it('a one-batch file rewritten before it is read is imported as read, and its mark matches it afterwards', async function () {
    const { legacy, data, b } = await twoKeyspaces();
    const rewrite = whileImportingA(() => writeFileSync(b, Buffer.concat([keyspaceRecord(30n, 'x'), keyspaceRecord(20n, 'y'), keyspaceRecord(10n, 'q')])));
    await run(legacy, data, { batchRecords: 3, onProgress: rewrite });
    assert.deepEqual((await readStore(data)).b, { x: 30n, y: 20n, q: 10n });
    const second = await run(legacy, data);
    assert.equal(second.nothingToDo, true, 'the mark holds the fingerprint of the bytes imported');
    // A change after the import is still a conflict.
    appendFileSync(b, keyspaceRecord(1n, 'r'));
    await assert.rejects(run(legacy, data), /"b" \(imported before from other legacy files\)/);
  });
});
