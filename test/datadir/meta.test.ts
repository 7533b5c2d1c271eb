import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDataDir } from '../../lib/datadir/meta.js';
import { isCountdError } from '../../lib/errors.js';
import { FaultFileOps } from '../harness/fault-fileops.js';

describe('data directory meta file', () => {
  let root: string;
  beforeEach(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-meta-'));
  });
  afterEach(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });

  const rejects = (p: Promise<unknown>, code: string, message: RegExp) =>
    assert.rejects(p, (err: unknown) => isCountdError(err) && err.code === code && message.test(err.message));

  it('creates a new directory with the default sizes, and reopens it', async () => {
    const dir = path.join(root, 'new');
    const made = await openDataDir(dir);
    assert.deepEqual(made.sizes, { keyspaceSize: 256, keySize: 256 });
    assert.ok((await fsp.stat(made.paths.commitlog)).isDirectory());
    const again = await openDataDir(dir, { create: false, sizes: { keyspaceSize: 256 } });
    assert.equal(again.meta.created, made.meta.created);
  });

  it('fsyncs the parent of every directory it creates: the data directory (and missing parents) and commitlog/', async () => {
    const escape = (p: string): RegExp => new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
    const dir = path.join(root, 'a', 'b');
    // Each directory fsync it must do, made to fail in turn: the open fails, so the fsync is on its path.
    for (const parent of [root, path.join(root, 'a'), dir]) {
      await fsp.rm(path.join(root, 'a'), { recursive: true, force: true });
      const ops = new FaultFileOps();
      ops.fail('fsyncDir', 'EIO', { path: escape(parent) });
      await assert.rejects(openDataDir(dir, { dirOps: ops }), (err: unknown) => isCountdError(err) && err.code === 'COUNTD_IO_ERROR', parent);
      assert.deepEqual(ops.injected.map((f) => f.file), [parent]);
    }
    await fsp.rm(path.join(root, 'a'), { recursive: true, force: true });
    const ops = new FaultFileOps();
    await openDataDir(dir, { dirOps: ops });
    assert.equal(ops.calls.get('fsyncDir'), 3, 'root (for a), a (for b), b (for commitlog)');
    // Reopening creates nothing and fsyncs nothing.
    const again = new FaultFileOps();
    await openDataDir(dir, { dirOps: again });
    assert.equal(again.calls.get('fsyncDir') ?? 0, 0);
    // A lost commitlog/ is created again, durably.
    await fsp.rm(path.join(dir, 'commitlog'), { recursive: true });
    const lost = new FaultFileOps();
    lost.fail('fsyncDir', 'EIO', { path: escape(dir) });
    await assert.rejects(openDataDir(dir, { dirOps: lost }), (err: unknown) => isCountdError(err) && err.code === 'COUNTD_IO_ERROR');
  });

  it('records non-default sizes and refuses to open with others (COUNTD_DATA_DIR_MISMATCH)', async () => {
    await openDataDir(root, { sizes: { keyspaceSize: 32, keySize: 16 } });
    assert.deepEqual((await openDataDir(root)).sizes, { keyspaceSize: 32, keySize: 16 });
    await rejects(openDataDir(root, { sizes: { keySize: 256 } }), 'COUNTD_DATA_DIR_MISMATCH', /created with keySize 16, not 256/);
  });

  it('refuses another format version', async () => {
    await openDataDir(root);
    await fsp.writeFile(path.join(root, 'COUNTD'), JSON.stringify({ format: 'countd', version: 2, keyspaceSize: 256, keySize: 256 }));
    await rejects(openDataDir(root), 'COUNTD_DATA_DIR_MISMATCH', /format version 2/);
  });

  it('reports a meta file that is not JSON, or not countd\'s, as corruption', async () => {
    await fsp.writeFile(path.join(root, 'COUNTD'), '{nope');
    await rejects(openDataDir(root), 'COUNTD_CORRUPTION', /not valid JSON/);
    await fsp.writeFile(path.join(root, 'COUNTD'), JSON.stringify({ format: 'other' }));
    await rejects(openDataDir(root), 'COUNTD_CORRUPTION', /not a countd meta file/);
    await fsp.writeFile(path.join(root, 'COUNTD'), JSON.stringify({ format: 'countd', version: 1, keyspaceSize: 0, keySize: 256 }));
    await rejects(openDataDir(root), 'COUNTD_CORRUPTION', /invalid field sizes/);
  });

  it('names countd migrate for a directory of the original countd (logs or keyspace files)', async () => {
    await fsp.writeFile(path.join(root, '0000000000'), Buffer.alloc(16));
    await rejects(openDataDir(root), 'COUNTD_LEGACY_DATA_DIR', /countd migrate/);
    const other = path.join(root, 'ks-dir');
    await fsp.mkdir(path.join(other, 'pages'), { recursive: true });
    await fsp.writeFile(path.join(other, 'pages', 'keyspace'), Buffer.alloc(264));
    await rejects(openDataDir(other), 'COUNTD_LEGACY_DATA_DIR', /countd migrate/);
  });

  it('refuses a non-empty directory that is not countd\'s, a file, and a missing directory without create', async () => {
    await fsp.writeFile(path.join(root, 'notes.txt'), 'hello');
    await rejects(openDataDir(root), 'COUNTD_NO_DATA_DIR', /not a countd data directory/);
    await rejects(openDataDir(path.join(root, 'notes.txt')), 'COUNTD_NO_DATA_DIR', /not a directory/);
    await rejects(openDataDir(path.join(root, 'missing'), { create: false }), 'COUNTD_NO_DATA_DIR', /does not exist/);
  });

  it('lets a second opener in while the first is still creating the directory (countd-write and countd-worker started together)', async () => {
    for (let i = 0; i < 10; i++) {
      const dir = path.join(root, `race-${i}`);
      const first = openDataDir(dir);
      // Start the second opener as soon as anything shows in the directory: it
      // must see an empty directory or a complete one, never a half-made one.
      let entries: string[] = [];
      while (entries.length === 0) entries = await fsp.readdir(dir).catch(() => []);
      const [a, b] = await Promise.all([first, openDataDir(dir)]);
      assert.deepEqual(a.sizes, b.sizes);
      assert.deepEqual((await fsp.readdir(dir)).sort(), ['COUNTD', 'commitlog'], 'no temp file left behind');
    }
  });

  it('lets a second opener in when the first finishes between its two looks (meta, then listing)', async () => {
    for (let i = 0; i < 10; i++) {
      const dir = path.join(root, `late-${i}`);
      await fsp.mkdir(dir);
      const second = openDataDir(dir);
      const first = openDataDir(dir);
      const [a, b] = await Promise.all([first, second]);
      assert.deepEqual(a.sizes, b.sizes);
    }
    // The window itself, made deterministic: meta absent at the first look, present at the listing.
    const dir = path.join(root, 'window');
    await fsp.mkdir(dir);
    const made = openDataDir(path.join(root, 'window-src'));
    await made;
    const realReadFile = fsp.readFile;
    let looks = 0;
    (fsp as { readFile: typeof fsp.readFile }).readFile = (async (...args: Parameters<typeof fsp.readFile>) => {
      if (String(args[0]) === path.join(dir, 'COUNTD') && looks++ === 0) {
        // First look: no meta yet; then the "other opener" completes the directory.
        await fsp.copyFile(path.join(root, 'window-src', 'COUNTD'), path.join(dir, 'COUNTD'));
        await fsp.mkdir(path.join(dir, 'commitlog'));
        throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      }
      return realReadFile(...args);
    }) as typeof fsp.readFile;
    try {
      const opened = await openDataDir(dir);
      assert.deepEqual(opened.sizes, { keyspaceSize: 256, keySize: 256 });
      assert.equal(looks, 2, 'it looked at the meta file again');
    } finally {
      (fsp as { readFile: typeof fsp.readFile }).readFile = realReadFile;
    }
  });

  it('lets several openers create one directory at the same time', async () => {
    const dir = path.join(root, 'together');
    const opened = await Promise.all([openDataDir(dir), openDataDir(dir), openDataDir(dir), openDataDir(dir)]);
    for (const d of opened) assert.deepEqual(d.sizes, { keyspaceSize: 256, keySize: 256 });
    assert.deepEqual((await fsp.readdir(dir)).sort(), ['COUNTD', 'commitlog']);
  });
});
