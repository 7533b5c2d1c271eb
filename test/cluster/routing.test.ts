// Reads routed to a partition's owner (lib/cluster/routed-store.ts) with real
// stores and real read ports: a "routing" reader on one store forwards to an
// owner's reader on another, as a cluster node's read port does to a peer's.
// The owner table is the test's (what Ownership#ownerOf answers), so a dead
// owner and the move of its lease are set exactly: an owner whose read port
// refuses is waited through until the partition's owner changes, never failed
// at once; a partition this node has just taken is read once it is caught
// up; the wait ends at its bound; the period of a windowed keyspace's read
// goes along.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { ErrorCodes } from '../../lib/errors.js';
import type { NodeInfo } from '../../lib/cluster/ownership.js';
import { Router } from '../../lib/cluster/routed-store.js';
import { partitionOf } from '../../lib/cluster/partition.js';
import type { FieldSizes } from '../../lib/protocol/fields.js';
import { parseWindow } from '../../lib/protocol/window-settings.js';
import { type ReaderHandle, startReader } from '../../lib/roles/reader.js';
import { Operator } from '../../lib/store/combine.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { periodStart } from '../../lib/store/windows.js';
import { freePort } from '../harness/idem-loop.js';

const sizes: FieldSizes = { keyspaceSize: 16, keySize: 16 };
const DAY = 86_400_000;

describe('cluster: reads routed to the owner, through a failover', function () {
  this.timeout(30_000);
  let dir: string;
  let ownerStore: Store;
  let localStore: Store;
  let ownerReader: ReaderHandle;
  let dead: NodeInfo;
  let owner: NodeInfo;
  const self: NodeInfo = { id: 'self', read: 'unused' };
  /** The owner table: partition -> node. */
  let table: NodeInfo | undefined;
  /** Whether this node serves the partitions it owns (restored and caught up: Applier#serving). */
  let serving = true;
  let router: Router;
  let routing: ReaderHandle;
  let client: Client;

  const write = async (store: Store, rows: Array<[string, string, bigint]>): Promise<void> => {
    const batch = new IncrementBatch(store.operators(), store.windows());
    for (const [ks, key, n] of rows) batch.add(Buffer.from(ks), Buffer.from(key), n);
    await store.apply(batch);
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'countd-test-routing-'));
    ownerStore = await Store.open({ location: path.join(dir, 'owner'), sizes, sync: false });
    localStore = await Store.open({ location: path.join(dir, 'local'), sizes, sync: false });
    await write(ownerStore, [['scores', 'ann', 7n], ['scores', 'bob', 3n]]);
    await write(localStore, [['scores', 'ann', 100n]]);
    ownerReader = await startReader({ store: ownerStore, sizes, port: 0 });
    owner = { id: 'owner', read: `127.0.0.1:${ownerReader.port}` };
    // A port bound then released: nothing listens there, as at a killed node's read port.
    dead = { id: 'dead', read: `127.0.0.1:${await freePort()}` };
  });

  beforeEach(async () => {
    table = owner;
    serving = true;
    router = new Router({ self: self.id, ownerOf: () => table, local: localStore, serving: () => serving, sizes, waitMs: 3000 });
    routing = await startReader({ store: localStore, sizes, port: 0, route: (ks) => router.route(partitionOf(ks)) });
    client = new Client({ host: '127.0.0.1', readPort: routing.port, ...sizes });
  });

  afterEach(async () => {
    await client.close();
    await routing.close();
    await router.close();
  });

  after(async () => {
    await ownerReader.close();
    await ownerStore.close();
    await localStore.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a read of a partition another node owns is answered by that node', async () => {
    assert.equal(await client.get('scores', 'ann'), 7n);
    assert.deepEqual((await client.rank('scores', 'bob'))?.rank, 1n);
    assert.equal(await client.count('scores'), 2n);
  });

  it('an owner whose read port refuses (killed): the read waits until the partition moves, then the new owner answers', async () => {
    table = dead;
    let moved = false;
    const timer = setTimeout(() => {
      moved = true;
      table = owner;
    }, 500);
    try {
      assert.equal(await client.get('scores', 'ann'), 7n);
      assert.ok(moved, 'answered by the new owner, after the move');
    } finally {
      clearTimeout(timer);
    }
  });

  it('the partition moves to this node: the read is answered from its own store', async () => {
    table = dead;
    const timer = setTimeout(() => (table = self), 300);
    try {
      assert.equal(await client.get('scores', 'ann'), 100n);
    } finally {
      clearTimeout(timer);
    }
  });

  it('a partition this node has just taken is read here only once it is restored and caught up: the read waits for that', async () => {
    table = self;
    serving = false;
    let caughtUp = false;
    const timer = setTimeout(() => {
      caughtUp = true;
      serving = true;
    }, 300);
    try {
      assert.equal(await client.get('scores', 'ann'), 100n);
      assert.ok(caughtUp, 'answered once the partition was caught up');
    } finally {
      clearTimeout(timer);
    }
  });

  it('an owner that stays unreachable past the bound: the read gets no answer (its connection is closed), the next read is answered once the partition moved', async () => {
    table = dead;
    await assert.rejects(client.get('scores', 'ann'), (err: { code?: string }) => err.code === ErrorCodes.CONNECTION);
    table = owner;
    assert.equal(await client.get('scores', 'ann'), 7n);
  });

  it('the period of a windowed keyspace goes to the owner, and a period it does not keep is n = -3 on a connection that stays open', async () => {
    for (;;) {
      const t0 = Date.now();
      const batch = new IncrementBatch(ownerStore.operators(), ownerStore.windows());
      batch.createKeyspace(Buffer.from('daily'), Operator.sum, 0, parseWindow('day', 2));
      batch.writtenAt = t0;
      batch.add(Buffer.from('daily'), Buffer.from('ann'), 5n);
      batch.writtenAt = t0 - DAY;
      batch.add(Buffer.from('daily'), Buffer.from('ann'), 40n);
      await ownerStore.apply(batch);
      const today = await client.get('daily', 'ann');
      const yesterday = await client.get('daily', 'ann', { ago: 1 });
      await assert.rejects(client.get('daily', 'ann', { ago: 2 }), (err: Error & { code?: string }) => err.code === ErrorCodes.INVALID_ARGUMENT && /no period --ago 2/.test(err.message));
      // The clock crossed midnight (UTC) meanwhile: the periods named are others. Once more.
      if (periodStart(parseWindow('day', 2), Date.now()) !== periodStart(parseWindow('day', 2), t0)) continue;
      assert.deepEqual([today, yesterday], [5n, 40n]);
      assert.equal(await client.get('scores', 'ann'), 7n, 'the connection is still usable');
      return;
    }
  });
});
