// countd-read and the periods of windowed keyspaces (read extensions version
// 2): get, rank, around, dense, count and page-at of a period; n = -3 for a period not
// kept, on a connection that stays open; and the page cache, whose answers
// for the current period must change when the clock moves to the next one
// even though no write changed the store.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FieldSizes } from '../../lib/protocol/fields.js';
import { encodeReadRequest, type ReadRequestInput } from '../../lib/protocol/read-request.js';
import { parseWindow } from '../../lib/protocol/window-settings.js';
import { ReaderHandle, startReader } from '../../lib/roles/reader.js';
import { Operator } from '../../lib/store/combine.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { periodStart } from '../../lib/store/windows.js';
import { waitUntil } from '../harness/daemon.js';
import { RawReadClient } from './reader-helpers.js';

const sizes: FieldSizes = { keyspaceSize: 16, keySize: 16 };
const DAY = 86_400_000;

describe('countd-read: periods of windowed keyspaces (version 2)', function () {
  this.timeout(20_000);
  let dir: string;
  let store: Store;
  let reader: ReaderHandle;
  const clients: RawReadClient[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'countd-test-reader-periods-'));
    store = await Store.open({ location: path.join(dir, 'db'), sizes, sync: false });
    reader = await startReader({ store, sizes, port: 0 });
  });
  after(async () => {
    for (const c of clients) c.close();
    await reader.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const extended = async (): Promise<RawReadClient> => {
    const c = await RawReadClient.connect(reader.port, sizes);
    clients.push(c);
    c.send('hello', encodeReadRequest({ op: 'hello' }, sizes));
    assert.deepEqual((await c.waitFor(1))[0], { op: 'hello', status: 'ok', version: 2n });
    c.responses.length = 0;
    return c;
  };
  const ask = async (c: RawReadClient, reqs: ReadRequestInput[]) => {
    const before = c.responses.length;
    for (const r of reqs) c.send(r.op, encodeReadRequest(r, sizes));
    return (await c.waitFor(before + reqs.length)).slice(before);
  };

  it('reads today and yesterday of a daily keyspace; --ago 3 of keep 3, and --ago 1 of a plain keyspace, are n = -3 on an open connection', async () => {
    const daily = parseWindow('day', 3);
    const batch = new IncrementBatch(store.operators(), store.windows());
    batch.createKeyspace(Buffer.from('daily'), Operator.max, 0, daily);
    const write = (at: number, key: string, value: bigint): void => {
      batch.writtenAt = at;
      batch.add(Buffer.from('daily'), Buffer.from(key), value);
    };
    batch.writtenAt = 0;
    batch.add(Buffer.from('plain'), Buffer.from('k'), 1n);
    for (;;) {
      const t0 = Date.now();
      write(t0, 'ann', 12n);
      write(t0, 'bob', 30n);
      write(t0 - DAY, 'ann', 50n);
      await store.apply(batch);
      const c = await extended();
      const rs = await ask(c, [
        { op: 'page', keyspace: 'daily', offset: 0, length: 10 },
        { op: 'page', keyspace: 'daily', offset: 0, length: 10, ago: 1 },
        { op: 'get', keyspace: 'daily', key: 'ann', ago: 1 },
        { op: 'rank', keyspace: 'daily', key: 'ann' },
        { op: 'around', keyspace: 'daily', key: 'ann', length: 3, ago: 2 },
        { op: 'get', keyspace: 'daily', key: 'ann', ago: 3 },
        { op: 'page', keyspace: 'plain', offset: 0, length: 10, ago: 1 },
        { op: 'get', keyspace: 'plain', key: 'k' },
      ]);
      // The clock crossed midnight (UTC) while the test ran: its expectations name other days. Once more.
      if (periodStart(daily, Date.now()) !== periodStart(daily, t0)) {
        batch.clear();
        continue;
      }
      const entries = (r: (typeof rs)[number]) => (r.status === 'ok' && 'entries' in r ? r.entries.map((e) => [e.key.toString(), e.count]) : r.status);
      assert.deepEqual(entries(rs[0]!), [['bob', 30n], ['ann', 12n]]);
      assert.deepEqual(entries(rs[1]!), [['ann', 50n]]);
      assert.deepEqual(entries(rs[2]!), [['ann', 50n]]);
      assert.deepEqual(rs[3], { op: 'rank', status: 'ok', first: 1n, entries: [{ key: Buffer.from('ann'), count: 12n }] });
      assert.deepEqual(rs[4], { op: 'around', status: 'ok', first: 0n, entries: [] });
      assert.deepEqual(rs.slice(5, 7).map((r) => r.status), ['period-not-kept', 'period-not-kept']);
      assert.deepEqual(entries(rs[7]!), [['k', 1n]]);
      assert.equal(c.closed, false);
      return;
    }
  });

  it('the page cache keys a windowed keyspace\'s pages by period: the next period is read when the clock reaches it, no write needed', async () => {
    const second = parseWindow('1s', 2);
    const batch = new IncrementBatch(store.operators(), store.windows());
    batch.createKeyspace(Buffer.from('fast'), Operator.sum, 0, second);
    const t0 = Date.now();
    batch.writtenAt = t0;
    batch.add(Buffer.from('fast'), Buffer.from('x'), 1n);
    await store.apply(batch);
    const c = await extended();
    const page = { op: 'page', keyspace: 'fast', offset: 0, length: 10 } as const;
    const first = await ask(c, [page, page]);
    // Both answered in t0's second (the usual case) or, if the clock moved on, the later ones are empty: never x after its second.
    const stillFirst = periodStart(second, Date.now()) === periodStart(second, t0);
    if (stillFirst) assert.deepEqual(first.map((r) => r.status === 'ok' && 'entries' in r && r.entries.length), [1, 1]);
    await waitUntil('the next second', () => periodStart(second, Date.now()) > periodStart(second, t0), 5000, 5);
    const [now, before] = await ask(c, [page, { ...page, ago: 1 }]);
    assert.deepEqual(now, { op: 'page', status: 'ok', entries: [] });
    if (periodStart(second, Date.now()) === periodStart(second, t0) + 1000) {
      assert.deepEqual(before, { op: 'page', status: 'ok', entries: [{ key: Buffer.from('x'), count: 1n }] });
    }
  });

  it('dense and count of a period, and settings carrying a window: a windowed keyspace that ranks ties first', async () => {
    const daily = parseWindow('day', 2);
    for (;;) {
      const t0 = Date.now();
      const first = new IncrementBatch(store.operators(), store.windows());
      first.createKeyspace(Buffer.from('best'), Operator.max, 1, daily);
      first.writtenAt = t0 - DAY;
      first.add(Buffer.from('best'), Buffer.from('zed'), 50n);
      await store.apply(first);
      // A later apply: amy reaches 50 after zed, so ranks after it in yesterday's period (ties first).
      const second = new IncrementBatch(store.operators(), store.windows());
      second.writtenAt = t0 - DAY;
      second.add(Buffer.from('best'), Buffer.from('amy'), 50n);
      second.writtenAt = t0;
      second.add(Buffer.from('best'), Buffer.from('amy'), 7n);
      await store.apply(second);
      const c = await extended();
      const rs = await ask(c, [
        { op: 'dense', keyspace: 'best', key: 'amy', ago: 1 },
        { op: 'dense', keyspace: 'best', key: 'amy' },
        { op: 'count', keyspace: 'best', min: 50n, ago: 1 },
        { op: 'count', keyspace: 'best', min: -(2n ** 63n) },
        { op: 'count', keyspace: 'best', min: 0n, ago: 2 },
        { op: 'settings', offset: 0, length: 100 },
      ]);
      if (periodStart(daily, Date.now()) !== periodStart(daily, t0)) continue; // midnight passed: once more
      assert.deepEqual(rs[0], { op: 'dense', status: 'ok', rank: 1n, dense: 0n, entries: [{ key: Buffer.from('amy'), count: 50n }] });
      assert.deepEqual(rs[1], { op: 'dense', status: 'ok', rank: 0n, dense: 0n, entries: [{ key: Buffer.from('amy'), count: 7n }] });
      assert.deepEqual(rs.slice(2, 4), [
        { op: 'count', status: 'ok', keys: 2n },
        { op: 'count', status: 'ok', keys: 1n },
      ]);
      assert.equal(rs[4]!.status, 'period-not-kept');
      const settings = rs[5]!.status === 'ok' && 'keyspaces' in rs[5]! ? rs[5]!.keyspaces : [];
      const best = settings.find((k) => k.name.toString() === 'best') as { size: bigint; settings: Buffer } | undefined;
      // Operator max, ties first, unit day, keep 2; its size is its current period's.
      assert.equal(best?.settings.toString('hex'), '02010300' + '00000002' + '0000000000000000');
      assert.equal(best?.size, 1n);
      assert.equal(c.closed, false);
      return;
    }
  });
});
