// Sets and deletes end to end (issue 17): the client library against a real
// daemon (bin/countd start), a seeded sequence of increments, sets, key
// deletes and keyspace deletes, pipelined on one connection, compared with a
// plain in-order model; the store child is killed with SIGKILL between
// rounds (after their acknowledgements, before or while the worker applies
// them) and restarted by the supervisor: each operation counts exactly once.

import assert from 'node:assert/strict';
import { Client } from '../../lib/client/client.js';
import { ErrorCodes, isCountdError } from '../../lib/errors.js';
import { Daemon, killAll, removeDir, startDaemon, tempDir, waitFor } from '../cli/helpers.js';
import { random } from '../store/helpers.js';

type Space = Map<string, bigint>;

async function snapshot(client: Client, names: string[]): Promise<Record<string, Array<[string, bigint]>>> {
  const out: Record<string, Array<[string, bigint]>> = {};
  for (const ks of names) {
    const entries: Array<[string, bigint]> = [];
    for await (const e of client.dump(ks, { pageSize: 50 })) entries.push([e.key.toString(), e.count]);
    if (entries.length > 0) out[ks] = entries;
  }
  return out;
}

function expected(model: Map<string, Space>): Record<string, Array<[string, bigint]>> {
  const out: Record<string, Array<[string, bigint]>> = {};
  for (const [ks, space] of [...model].sort()) {
    if (space.size === 0) continue;
    out[ks] = [...space].sort((a, b) => (a[1] !== b[1] ? (a[1] > b[1] ? -1 : 1) : Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0]))));
  }
  return out;
}

describe('Client: sets and deletes against a real daemon', function () {
  this.timeout(90_000);
  let dir: string;
  let daemon: Daemon;
  let client: Client;

  before(async () => {
    dir = await tempDir('lifecycle');
    ({ daemon } = await startDaemon(dir));
    client = await Client.connect({ dataDir: dir });
  });

  after(async () => {
    await client?.close();
    await daemon?.stop();
    await killAll();
    await removeDir(dir);
  });

  it('a seeded mix, pipelined, with the store child killed (-9) between rounds, matches the in-order model exactly', async () => {
    const rand = random(17);
    const names = ['s1', 's2', 's3'];
    const model = new Map<string, Space>(names.map((n) => [n, new Map()]));
    for (let round = 0; round < 6; round++) {
      const calls: Array<Promise<void>> = [];
      for (let i = 0; i < 300; i++) {
        const ks = names[Math.floor(rand() * names.length)]!;
        const key = `k${Math.floor(rand() * 40)}`;
        const space = model.get(ks)!;
        const r = rand();
        if (r < 0.6) {
          const by = Math.floor(rand() * 9) - 3;
          calls.push(client.increment(ks, key, by));
          if (by !== 0) space.set(key, (space.get(key) ?? 0n) + BigInt(by));
        } else if (r < 0.8) {
          const to = Math.floor(rand() * 1000) - 200;
          calls.push(client.set(ks, key, to));
          space.set(key, BigInt(to));
        } else if (r < 0.99) {
          calls.push(client.deleteKey(ks, key));
          space.delete(key);
        } else {
          calls.push(client.deleteKeyspace(ks));
          space.clear();
        }
      }
      await Promise.all(calls);
      if (round % 2 === 1) {
        const { store } = await daemon.children();
        assert.ok(store !== undefined, 'the store child runs');
        process.kill(store, 'SIGKILL');
        await waitFor('a new store child', async () => {
          const now = (await daemon.children()).store;
          return now !== undefined && now !== store ? now : undefined;
        }, 20_000);
      }
    }
    const want = expected(model);
    const text = (v: unknown): string => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
    // The restarted store child serves the read port anew: read through a fresh client (daemon.json).
    const read = async (): Promise<Record<string, Array<[string, bigint]>> | undefined> => {
      const reader = await Client.connect({ dataDir: dir });
      try {
        return await snapshot(reader, names);
      } catch {
        return undefined;
      } finally {
        await reader.close();
      }
    };
    let last: unknown;
    await waitFor('every operation applied', async () => {
      last = await read();
      return text(last) === text(want) ? true : undefined;
    }, 30_000).catch(() => {});
    assert.deepEqual(last, want);
  });

  it('createKeyspace: max keeps the best value written, min the least, set the last; a create replaces what the name held', async () => {
    await client.increment('best', 'old', 5);
    await client.createKeyspace('best', { op: 'max' });
    await client.createKeyspace('least', { op: 'min' });
    await client.createKeyspace('last', { op: 'set' });
    for (const v of [5, 3, 9, -2, 9, 4]) {
      await Promise.all([client.increment('best', 'alice', v), client.increment('least', 'alice', v), client.increment('last', 'alice', v)]);
    }
    await client.increment('best', 'bob', -7);
    const read = async (ks: string): Promise<Array<[string, bigint]>> => (await client.page(ks, 0, 10)).map((e) => [e.key.toString(), e.count]);
    await waitFor('the writes applied', async () => ((await read('last')).length === 1 && (await read('last'))[0]![1] === 4n && (await read('best')).length === 2 ? true : undefined));
    assert.deepEqual(await read('best'), [['alice', 9n], ['bob', -7n]]);
    assert.deepEqual(await read('least'), [['alice', -2n]]);
    assert.deepEqual(await read('last'), [['alice', 4n]]);
    await assert.rejects(client.createKeyspace('x', { op: 'avg' as 'max' }), (err: unknown) => isCountdError(err) && err.code === ErrorCodes.INVALID_ARGUMENT);
  });

  it('set and delete validate before sending: a count outside int64, a key too long', async () => {
    await assert.rejects(client.set('s1', 'k', 2n ** 63n), (err: unknown) => isCountdError(err) && err.code === ErrorCodes.INVALID_ARGUMENT);
    await assert.rejects(client.deleteKey('s1', 'x'.repeat(300)), (err: unknown) => isCountdError(err) && err.code === ErrorCodes.INVALID_ARGUMENT);
  });
});
