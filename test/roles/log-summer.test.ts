// The worker's summing thread (lib/roles/work/): it must report every log
// exactly as the worker needs to mark it, sum exactly what a direct read
// sums, and lose a whole session, never part of one, if the thread dies.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { forEachEntry } from '../../lib/commitlog/format.js';
import { readLogFile } from '../../lib/commitlog/reader.js';
import { CountdError } from '../../lib/errors.js';
import { INT64_MAX } from '../../lib/protocol/fields.js';
import { LogSummer } from '../../lib/roles/work/log-summer.js';
import { IncrementBatch } from '../../lib/store/increment-batch.js';
import { frame, tempDataDir, writeFrames, type Frame } from './worker-helpers.js';

const sizes = { keyspaceSize: 16, keySize: 16 };

async function dirtyLogs(dir: string): Promise<Array<{ index: number; path: string }>> {
  const out: Array<{ index: number; path: string }> = [];
  for (const name of (await fsp.readdir(dir)).sort()) {
    if (!/^\d{10}$/.test(name)) continue;
    const file = path.join(dir, name);
    if (((await fsp.stat(file)).mode & 0o777) === 0o400) out.push({ index: Number(name), path: file });
  }
  return out;
}

function listing(batch: IncrementBatch): string[] {
  const bytes = batch.keyBytes;
  const out: string[] = [];
  for (const g of batch.keyspaces()) for (const p of g.items) out.push(`${g.name.toString('latin1')}/${bytes.subarray(p.keyStart, p.keyStart + p.keyLength).toString('latin1')}=${p.delta}`);
  return out;
}

describe('LogSummer (the worker summing thread)', function () {
  this.timeout(20000);
  const roots: string[] = [];
  const summers: LogSummer[] = [];
  after(async () => {
    for (const s of summers) await s.close();
    for (const r of roots) await fsp.rm(r, { recursive: true, force: true });
  });

  async function setup(frames: Frame[]) {
    const dataDir = await tempDataDir(sizes, 'summer');
    roots.push(path.dirname(dataDir.paths.root));
    await writeFrames(dataDir, frames, { logSize: 16 * 1024, perAppend: 37 });
    const logs = await dirtyLogs(dataDir.paths.commitlog);
    const summer = new LogSummer(dataDir.sizes);
    summers.push(summer);
    return { dataDir, logs, summer };
  }

  const frames: Frame[] = [];
  for (let i = 0; i < 3000; i++) frames.push(frame(BigInt((i % 7) - 3), `ks${i % 3}`, `key${(i * 7919) % 500}`));
  frames.push(frame(INT64_MAX, 'big', 'k'), frame(INT64_MAX, 'big', 'k'));

  it('sums several chunks of logs exactly as reading them directly does', async () => {
    const { logs, summer } = await setup(frames);
    assert.ok(logs.length >= 4, `${logs.length} logs`);
    const direct = new IncrementBatch();
    let directFrames = 0;
    for (const log of logs) {
      const contents = await readLogFile(log.path, sizes);
      for (const r of contents.records) forEachEntry(r.payload, (inc, ks, key) => direct.add(ks, key, inc));
      directFrames += contents.frames;
    }
    await summer.begin();
    const half = Math.floor(logs.length / 2);
    const a = await summer.add(logs.slice(0, half).map((l) => ({ ...l, mark: null })));
    const b = await summer.add(logs.slice(half).map((l) => ({ ...l, mark: null })));
    const outcomes = [...a.logs, ...b.logs];
    assert.deepEqual(outcomes.map((o) => [o.index, o.status]), logs.map((l) => [l.index, 'apply']));
    assert.equal(outcomes.reduce((n, o) => n + o.frames, 0), directFrames);
    assert.equal(directFrames, frames.length);
    assert.equal(b.keys, direct.keys);
    const summed = await summer.finish();
    assert.deepEqual(listing(summed), listing(direct));
    assert.ok(listing(summed).includes(`big/k=${2n * INT64_MAX}`));
  });

  it('skips a log whose generation is its mark, and reports missing, empty and header-damaged logs', async () => {
    const { dataDir, logs, summer } = await setup(frames.slice(0, 1200));
    const [first, second] = logs;
    assert.ok(second !== undefined, `${logs.length} logs`);
    const generation = (await readLogFile(first!.path, sizes)).generation!;
    const mark = Buffer.alloc(8);
    mark.writeBigUInt64LE(generation, 0);
    const zeroed = path.join(dataDir.paths.commitlog, 'zeroed');
    await fsp.writeFile(zeroed, Buffer.alloc(8192));
    // A copy of the first log with its header damaged: salvaged records of a use the mark says was applied.
    const damaged = path.join(dataDir.paths.commitlog, 'damaged');
    const bytes = await fsp.readFile(first!.path);
    bytes[33] = bytes[33]! ^ 0xff;
    await fsp.writeFile(damaged, bytes);
    await summer.begin();
    const result = await summer.add([
      { ...first!, mark },
      { index: 999, path: path.join(dataDir.paths.commitlog, 'missing'), mark: null },
      { index: 998, path: zeroed, mark: null },
      { index: 997, path: damaged, mark },
      { ...second!, mark: Buffer.alloc(8) },
    ]);
    assert.deepEqual(result.logs.map((o) => o.status), ['already-applied', 'unreadable', 'empty', 'quarantine', 'apply']);
    assert.equal(result.logs[3]!.salvage, 'already-applied');
    assert.equal(result.logs[3]!.salvageFrom, 'header-field');
    assert.equal(result.logs[3]!.generation, generation.toString());
    assert.match(result.logs[1]!.error ?? '', /missing|ENOENT|no such file/i);
    assert.equal(result.logs[0]!.generation, generation.toString());
    const only = new IncrementBatch();
    for (const r of (await readLogFile(second!.path, sizes)).records) forEachEntry(r.payload, (inc, ks, key) => only.add(ks, key, inc));
    assert.deepEqual(listing(await summer.finish()), listing(only));
  });

  it('fails the whole session when the thread dies, and works again afterwards', async () => {
    const { logs, summer } = await setup(frames.slice(0, 1200));
    assert.ok(logs.length >= 2, `${logs.length} logs`);
    await summer.begin();
    await summer.add(logs.slice(0, 1).map((l) => ({ ...l, mark: null })));
    await summer.thread!.terminate();
    await assert.rejects(summer.add(logs.slice(1, 2).map((l) => ({ ...l, mark: null }))), (err: unknown) => err instanceof CountdError && err.code === 'COUNTD_IO_ERROR');
    await assert.rejects(summer.finish(), (err: unknown) => err instanceof CountdError && /lost its batch/.test(err.message));
    // A new session on a new thread.
    await summer.begin();
    const again = await summer.add(logs.map((l) => ({ ...l, mark: null })));
    assert.ok(again.logs.every((o) => o.status === 'apply'));
    assert.equal((await summer.finish()).keys, again.keys);
  });
});
