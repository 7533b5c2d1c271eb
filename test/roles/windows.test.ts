// Windowed keyspaces through the real write and apply path: a CommitLogWriter
// whose clock the test sets (CommitLogWriterOptions.now) writes OPS and BATCH
// records at chosen times; the worker puts each write into the period holding
// its record's writtenAt, whatever the time it applies it, and deletes the
// periods older than --keep (its own clock, the real one: the test's periods
// are a day long and placed so that its expectations hold for two days).

import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { OP_CREATE_KEYSPACE, OP_DELETE_KEY, OP_INCREMENT, OP_SET, RECORD_OPS, writeOpEntry } from '../../lib/commitlog/format.js';
import { readLogFile } from '../../lib/commitlog/reader.js';
import { CommitLogWriter } from '../../lib/commitlog/writer.js';
import { isCountdError } from '../../lib/errors.js';
import { settingsTail, type WindowSettings } from '../../lib/protocol/window-settings.js';
import { startWorker } from '../../lib/roles/worker.js';
import { Operator } from '../../lib/store/combine.js';
import { Store } from '../../lib/store/store.js';
import { periodStart } from '../../lib/store/windows.js';
import { waitUntil } from '../harness/daemon.js';
import { entries, frame, tempDataDir } from './worker-helpers.js';

const sizes = { keyspaceSize: 16, keySize: 16 };
const DAY = 86_400_000;
const DAILY: WindowSettings = { unit: 3, keep: 3, seconds: 0 };

type LoggedOp = { op: number; value: bigint; ks: string; key?: string; window?: WindowSettings };

function opsPayload(ops: LoggedOp[]): Buffer {
  const buf = Buffer.alloc(ops.length * 64);
  let p = 0;
  for (const o of ops) {
    let key: Buffer = Buffer.from(o.key ?? "");
    if (o.window !== undefined) {
      const tail = settingsTail(o.window);
      let n = tail.length;
      while (n > 0 && tail[n - 1] === 0) n--;
      key = tail.subarray(0, n);
    }
    const names = Buffer.concat([Buffer.from(o.ks), key]);
    p = writeOpEntry(buf, p, o.op, o.value, names, 0, o.ks.length, o.ks.length, key.length);
  }
  return buf.subarray(0, p);
}

describe('worker: windowed keyspaces (periods from the records\' writtenAt, expiry)', function () {
  this.timeout(30000);
  const cleanup: string[] = [];
  after(async () => {
    for (const d of cleanup) await rm(d, { recursive: true, force: true });
  });

  it('puts each write in the period of its record, applies sets and deletes there, and deletes periods past --keep', async () => {
    const dataDir = await tempDataDir(sizes, 'windows');
    cleanup.push(path.dirname(dataDir.paths.root));
    const today = periodStart(DAILY, Date.now());
    let clock = today - 10 * DAY;
    const writer = await CommitLogWriter.open({ dir: dataDir.paths.commitlog, sizes, handoverMs: 60_000, now: () => clock });
    const ops = async (list: LoggedOp[]): Promise<void> => void await writer.append(opsPayload(list), list.length, false, RECORD_OPS);
    // Ten days ago: the keyspaces are created, and `w` counts into a period that is long expired.
    await ops([
      { op: OP_CREATE_KEYSPACE, value: BigInt(Operator.sum), ks: 'w', window: DAILY },
      { op: OP_CREATE_KEYSPACE, value: BigInt(Operator.max), ks: 'm', window: DAILY },
      { op: OP_INCREMENT, value: 1n, ks: 'w', key: 'a' },
    ]);
    clock = today - DAY + 5;
    await ops([
      { op: OP_INCREMENT, value: 2n, ks: 'w', key: 'a' },
      { op: OP_INCREMENT, value: 5n, ks: 'm', key: 'a' },
      { op: OP_INCREMENT, value: 3n, ks: 'm', key: 'a' },
    ]);
    clock = today + 1;
    // Plain increments (a BATCH record) go to their record's period too.
    await writer.append(entries([frame(4n, 'w', 'a'), frame(1n, 'w', 'b'), frame(7n, 'm', 'a')]), 3);
    await ops([
      { op: OP_DELETE_KEY, value: 0n, ks: 'w', key: 'b' },
      { op: OP_SET, value: 9n, ks: 'w', key: 'c' },
    ]);
    await writer.close();
    const logged = await readLogFile(path.join(dataDir.paths.commitlog, '0000000000'), sizes);
    assert.deepEqual(logged.records.map((r) => r.writtenAt), [today - 10 * DAY, today - DAY + 5, today + 1, today + 1]);

    const store = await Store.open({ location: dataDir.paths.db, sizes, sync: false });
    try {
      const worker = await startWorker({ dataDir, store, pollMs: 5 });
      await worker.drained();
      // The worker's expiry (about once a second) deletes the period of ten days ago: keep 3 keeps today and the two days before.
      await waitUntil('the expired period to be deleted', async () => (await store.periods('w')).length === 2, 10_000, 20);
      await worker.close();
      assert.deepEqual(await store.periods('w'), [{ start: today - DAY, size: 1 }, { start: today, size: 2 }]);
      assert.deepEqual(await store.periods('m'), [{ start: today - DAY, size: 1 }, { start: today, size: 1 }]);
      const at = (ago: number) => ({ ago, now: today + 1000 });
      assert.deepEqual(await store.page('w', 0, 10, at(0)), [{ key: Buffer.from('c'), count: 9n }, { key: Buffer.from('a'), count: 4n }]);
      assert.equal(await store.get('w', 'a', at(1)), 2n);
      assert.equal(await store.get('w', 'b', at(0)), undefined);
      assert.deepEqual(await store.page('w', 0, 10, at(2)), []);
      assert.equal(await store.get('m', 'a', at(0)), 7n);
      assert.equal(await store.get('m', 'a', at(1)), 5n);
      await assert.rejects(store.get('w', 'a', at(3)), (err) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT') && /has no period --ago 3: it keeps 3 periods of day/.test(err.message));
      assert.deepEqual(
        (await store.keyspaces({ now: today + 1000 })).map((k) => [k.name.toString(), k.size]),
        [['m', 1], ['w', 2]],
      );
      for (const ks of ['w', 'm']) for (const ago of [0, 1]) assert.equal(await store.checkRankIndex(ks, at(ago)), true);
    } finally {
      await store.close();
    }
  });
});
