// A data directory written by countd 0.4.0 (fixtures/v0.4.0/datadir.tar.gz,
// made by fixtures/v0.4.0/make-datadir.mjs with the code of commit 499d1e5):
// it opens, is upgraded in place (store format 1 -> 2, docs/storage-format.md
// "Upgrades") with every count intact, the upgrade runs once, an unknown
// newer version is refused, and the daemon runs on it.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { Client } from '../../lib/client/client.js';
import { ErrorCodes, isCountdError } from '../../lib/errors.js';
import { DEFAULT_FIELD_SIZES } from '../../lib/protocol/fields.js';
import { VERSION_KEY } from '../../lib/store/encoding.js';
import { Store } from '../../lib/store/store.js';
import { ROOT, countd, killAll, startDaemon, waitFor } from '../cli/helpers.js';
import { recordingLogger, removeDir, tempDir, type LogLine } from './helpers.js';

const FIXTURE = path.join(ROOT, 'fixtures', 'v0.4.0', 'datadir.tar.gz');

function unpack(): string {
  const dir = tempDir();
  execFileSync('tar', ['-xzf', FIXTURE, '-C', dir]);
  return dir;
}

async function versionRecord(db: string): Promise<unknown> {
  const level = new ClassicLevel<Buffer, Buffer>(db, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await level.open();
  try {
    return JSON.parse((await level.get(VERSION_KEY))!.toString('utf8'));
  } finally {
    await level.close();
  }
}

async function expectWritten(store: Store): Promise<void> {
  assert.deepEqual(
    (await store.keyspaces()).map((k) => [k.name.toString(), k.size]),
    [
      ['exact', 2],
      ['many', 282],
      ['pages', 3],
    ],
  );
  assert.deepEqual(
    (await store.page('pages', 0, 10)).map((e) => [e.key.toString(), e.count]),
    [
      ['home', 7n],
      ['about', 3n],
      ['blog', 3n],
    ],
  );
  assert.equal(await store.get('exact', Buffer.from([0x80, 0xff, 0x41])), 2n ** 60n + 1n);
  assert.equal(await store.get('exact', 'neg'), -5n);
  const many = await store.page('many', 0, 1000);
  assert.equal(many.length, 282);
  for (const e of many) assert.equal(e.count, BigInt(Number(e.key.toString().slice(1)) % 17));
  assert.equal(await store.checkRankIndex('many'), true);
}

describe('upgrading a data directory written by countd 0.4.0', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  after(async () => {
    await killAll();
    dirs.forEach(removeDir);
  });

  it('the fixture is store format 1; it opens, is upgraded in place to 2 once, and reads every count as 0.4.0 wrote it', async () => {
    const dir = unpack();
    dirs.push(dir);
    const db = path.join(dir, 'db');
    assert.deepEqual(await versionRecord(db), { format: 'countd-store', version: 1 });
    const lines: LogLine[] = [];
    let store = await Store.open({ location: db, sizes: DEFAULT_FIELD_SIZES, logger: recordingLogger(lines) });
    await expectWritten(store);
    await store.close();
    assert.equal(lines.filter((l) => l.message === 'store format upgraded in place').length, 1);
    assert.deepEqual(await versionRecord(db), { format: 'countd-store', version: 2 });
    lines.length = 0;
    store = await Store.open({ location: db, sizes: DEFAULT_FIELD_SIZES, logger: recordingLogger(lines) });
    await expectWritten(store);
    await store.close();
    assert.equal(lines.filter((l) => l.message === 'store format upgraded in place').length, 0, 'the upgrade does not run twice');
  });

  it('a version this countd has no step for is refused with COUNTD_DATA_DIR_MISMATCH, unchanged', async () => {
    const dir = unpack();
    dirs.push(dir);
    const db = path.join(dir, 'db');
    const level = new ClassicLevel<Buffer, Buffer>(db, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await level.open();
    await level.put(VERSION_KEY, Buffer.from(JSON.stringify({ format: 'countd-store', version: 3 })));
    await level.close();
    await assert.rejects(Store.open({ location: db, sizes: DEFAULT_FIELD_SIZES }), (err: unknown) => isCountdError(err) && err.code === ErrorCodes.DATA_DIR_MISMATCH);
    assert.deepEqual(await versionRecord(db), { format: 'countd-store', version: 3 });
  });

  it('countd start runs on it: reads, increments, sets and a max keyspace', async () => {
    const dir = unpack();
    dirs.push(dir);
    assert.ok(fs.existsSync(path.join(dir, 'COUNTD')));
    const { daemon } = await startDaemon(dir);
    const client = await Client.connect({ dataDir: dir });
    try {
      assert.equal(await client.get('pages', 'home'), 7n);
      await client.increment('pages', 'home', 1);
      await client.set('pages', 'blog', 10);
      await client.createKeyspace('board', { op: 'max' });
      await client.increment('board', 'a', 3);
      await client.increment('board', 'a', 2);
      await waitFor('the writes applied', async () => ((await client.get('board', 'a')) === 3n && (await client.get('pages', 'blog')) === 10n ? true : undefined));
      assert.equal(await client.get('pages', 'home'), 8n);
    } finally {
      await client.close();
      await daemon.stop();
    }
    // With the daemon stopped, countd keyspaces --json reads the database: the declared operator shows.
    const listed = await countd(dir, 'keyspaces', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(listed.stdout.trim().split('\n'), [
      '{"keyspace": "board", "keys": 1, "op": "max", "ties": "key"}',
      '{"keyspace": "exact", "keys": 2}',
      '{"keyspace": "many", "keys": 282}',
      '{"keyspace": "pages", "keys": 3}',
    ]);
  });
});
