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

  /** SIGKILL the daemon's store child and wait until the supervisor has started another. */
  const killStoreChild = async (): Promise<void> => {
    const { store } = await daemon.children();
    assert.ok(store !== undefined, 'the store child runs');
    process.kill(store, 'SIGKILL');
    await waitFor('a new store child', async () => {
      const now = (await daemon.children()).store;
      return now !== undefined && now !== store ? now : undefined;
    }, 20_000);
  };

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
      if (round % 2 === 1) await killStoreChild();
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

  it('--ties first with the store child killed (-9) after each round is acknowledged: exact counts, and equal counts rank by the round that last changed them', async () => {
    // Every op changes its key's count (increments of 1 … 3, or a delete), so
    // a key's last op is when it reached its count. Each round is applied
    // (read back) before the next is sent: a key last changed in an earlier
    // round must rank before an equal count changed later. Within a round
    // the applies' boundaries are the worker's, so no order is asserted.
    const rand = random(41);
    await client.createKeyspace('tf', { ties: 'first' });
    const counts = new Map<string, bigint>();
    const changed = new Map<string, number>();
    let acrossRounds = 0;
    const want = (): Array<[string, bigint]> => [...counts].sort((a, b) => (a[1] !== b[1] ? (a[1] > b[1] ? -1 : 1) : 0));
    const read = async (): Promise<Array<[string, bigint]> | undefined> => {
      const reader = await Client.connect({ dataDir: dir });
      try {
        const out: Array<[string, bigint]> = [];
        for await (const e of reader.dump('tf', { pageSize: 50 })) out.push([e.key.toString(), e.count]);
        return out;
      } catch {
        return undefined;
      } finally {
        await reader.close();
      }
    };
    const sameCounts = (got: Array<[string, bigint]> | undefined): boolean => {
      if (got === undefined || got.length !== counts.size) return false;
      return got.every(([k, c]) => counts.get(k) === c);
    };
    for (let round = 0; round < 5; round++) {
      const calls: Array<Promise<void>> = [];
      // 40 new keys a round, named so that later rounds sort first by key bytes (as --ties key would rank
      // them), with counts 1 … 3 (many ties across rounds); then ops on keys of any round so far.
      const fresh = Array.from({ length: 40 }, (_, i) => `k${9 - round}-${i}`);
      for (let i = 0; i < 120; i++) {
        const pool = [...counts.keys()];
        const key = i < fresh.length ? fresh[i]! : pool[Math.floor(rand() * pool.length)]!;
        if (i >= fresh.length && rand() < 0.1) {
          calls.push(client.deleteKey('tf', key));
          counts.delete(key);
        } else {
          const by = 1 + Math.floor(rand() * (i < fresh.length ? 3 : 2));
          calls.push(client.increment('tf', key, by));
          counts.set(key, (counts.get(key) ?? 0n) + BigInt(by));
        }
        changed.set(key, round);
      }
      await Promise.all(calls);
      await killStoreChild();
      let got: Array<[string, bigint]> | undefined;
      await waitFor('the round applied', async () => ((got = await read()), sameCounts(got) ? true : undefined), 30_000).catch(() => {});
      assert.deepEqual(
        got?.map(([k, c]) => [k, c]).sort(),
        want().sort(),
        `round ${round}: counts`,
      );
      for (let i = 1; i < got!.length; i++) {
        const [a, ca] = got![i - 1]!;
        const [b, cb] = got![i]!;
        if (ca !== cb) continue;
        assert.ok(changed.get(a)! <= changed.get(b)!, `round ${round}: ${a} (changed in round ${changed.get(a)}) ranks before ${b} (round ${changed.get(b)}) at count ${ca}`);
        if (changed.get(a)! < changed.get(b)!) acrossRounds++;
      }
    }
    // The order was put to the test: equal counts reached in different rounds, whose key bytes say the opposite.
    assert.ok(acrossRounds >= 20, `only ${acrossRounds} equal counts from different rounds`);
  });

  it('set and delete validate before sending: a count outside int64, a key too long', async () => {
    await assert.rejects(client.set('s1', 'k', 2n ** 63n), (err: unknown) => isCountdError(err) && err.code === ErrorCodes.INVALID_ARGUMENT);
    await assert.rejects(client.deleteKey('s1', 'x'.repeat(300)), (err: unknown) => isCountdError(err) && err.code === ErrorCodes.INVALID_ARGUMENT);
  });
});
