// The store on a real full disk (a small tmpfs): LevelDB reports ENOSPC as
// COUNTD_NO_SPACE, and keeps the error of a compaction that failed for want
// of space even once space is back, until reopen() (issue 15, item 4).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCodes, isCountdError } from '../../lib/errors.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { SmallFs } from '../harness/small-fs.js';

const SIZES = { keyspaceSize: 16, keySize: 16 };

describe('store on a full disk', function () {
  this.timeout(60_000);
  let root = '';
  let small: SmallFs | undefined;
  let store: Store | undefined;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'countd-test-store-full-'));
  });
  afterEach(async () => {
    await store?.close().catch(() => {});
    store = undefined;
    small?.unmount();
    small = undefined;
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('reopen() clears the error LevelDB keeps after a compaction ran out of space; nothing committed is lost', async () => {
    small = SmallFs.mount(path.join(root, 'db'), '16m');
    // The smallest write buffer: memtables are compacted into tables often, so the disk fills during one.
    store = await Store.open({ location: path.join(root, 'db', 'db'), sizes: SIZES, writeBufferSize: 64 * 1024 });
    let next = 0;
    const committed = new Set<string>();
    const batch = (n: number): { batch: IncrementBatch; keys: string[] } => {
      const b = new IncrementBatch();
      const keys: string[] = [];
      for (let i = 0; i < n; i++) {
        const key = `k${next++}`;
        b.add(Buffer.from('ks'), Buffer.from(key), 1n);
        keys.push(key);
      }
      return { batch: b, keys };
    };
    // Whether ENOSPC first hits the log (.log: the write fails, nothing sticks) or
    // a compaction (.ldb: LevelDB keeps the error) depends on when the background
    // compaction runs. A log failure frees one chunk of filler and reopens, as the
    // worker does (a failed log write may leave a torn record that later writes to
    // the same log would follow); writing goes on, so the disk fills again, until a
    // compaction is the one that runs out of space.
    const CHUNK = 256 * 1024;
    const fillers: string[] = [];
    while (small.free() > 2 * 1024 * 1024 + CHUNK) fillers.push(small.fill(`filler-${fillers.length}`, small.free() - CHUNK));
    fillers.push(small.fill(`filler-${fillers.length}`, 2 * 1024 * 1024));
    let failure: unknown;
    const logFailures: string[] = [];
    for (let i = 0; i < 400 && failure === undefined; i++) {
      const b = batch(2000);
      try {
        await store.apply(b.batch);
        for (const k of b.keys) committed.add(k);
      } catch (err) {
        assert.ok(isCountdError(err, ErrorCodes.NO_SPACE), `expected COUNTD_NO_SPACE, got ${String(err)}`);
        if (!/\.log\b/.test((err as Error).message) || fillers.length === 0) failure = err;
        else {
          logFailures.push((err as Error).message);
          fs.rmSync(fillers.pop()!);
          await store.reopen();
        }
      }
    }
    assert.ok(isCountdError(failure, ErrorCodes.NO_SPACE), `expected COUNTD_NO_SPACE, got ${String(failure)} after ${logFailures.length} log failures`);
    for (const f of fillers) fs.rmSync(f);
    // Space is back, but LevelDB still fails writes if its error came from a compaction (a table file).
    let sticky = false;
    try {
      await store.apply(batch(10).batch);
    } catch (err) {
      sticky = isCountdError(err, ErrorCodes.NO_SPACE) && /\.ldb/.test((err as Error).message);
    }
    assert.match((failure as Error).message, /\.ldb/, `the disk filled during a compaction (a table file), not: ${(failure as Error).message}`);
    assert.ok(sticky, 'the compaction error is kept after space is back, until reopen');
    await store.reopen();
    const after = batch(500);
    await store.apply(after.batch);
    for (const k of after.keys) committed.add(k);
    assert.equal(await store.size('ks'), (await store.keyspaces()).find((k) => k.name.toString() === 'ks')!.size);
    for (const k of committed) assert.equal(await store.get('ks', k), 1n, k);
    assert.ok(await store.checkRankIndex('ks'));
  });
});
