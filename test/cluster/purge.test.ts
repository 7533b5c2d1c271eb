// Purging the stream below the snapshots (docs/cluster.md, "Snapshots and
// purge") against real servers: a 3-node nats-server cluster (R3) and one
// countd node with `--nats-purge always`, snapshotting every 500 ms under a
// load of increments, until the stream holds far fewer messages than it was
// ever given (purged). The node is killed with SIGKILL under load, and a node
// with an empty database takes every partition: it can only be exact by
// restoring each partition from its latest snapshot plus the stream after it
// (what lies below was purged). Every key is read through it and checked
// against the writers' ledger: no acknowledged increment lost or doubled.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { connectCluster } from '../../lib/cluster/nats.js';
import { STREAM } from '../../lib/cluster/partition.js';
import { DaemonRunner, killAllDaemons, waitUntil } from '../harness/daemon.js';
import { describeViolations, Ledger } from '../harness/ledger.js';
import { LedgerClient } from '../harness/ledger-client.js';
import { NatsCluster } from '../harness/nats-cluster.js';
import { rng, seedFromEnv } from '../harness/rng.js';

const SIZES = { keyspaceSize: 16, keySize: 16 };
const KEYSPACES = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];

describe('cluster: purging the stream below the snapshots (3 nats-server, --nats-purge always)', function () {
  this.timeout(180_000);
  let root: string;
  let nats: NatsCluster | undefined;
  const seed = seedFromEnv();
  const ledger = new Ledger();
  const nodeArgs = (): string[] => ['--nats', nats!.urls, '--keyspace-size', '16', '--key-size', '16', '--handover-ms', '100', '--nats-snapshot-ms', '500', '--nats-purge', 'always', '--metrics-port', '0'];

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-purge-'));
    nats = await NatsCluster.start(root);
  });

  after(async () => {
    await killAllDaemons();
    await nats?.stopAll();
    await fsp.rm(root, { recursive: true, force: true });
  });

  /** The stream's state: messages kept and the last sequence stored. */
  async function streamState(): Promise<{ messages: number; lastSeq: number }> {
    const conn = await connectCluster({ servers: nats!.urls.split(','), replicas: 3, name: 'purge test' });
    try {
      const { state } = await conn.jsm.streams.info(STREAM);
      return { messages: state.messages, lastSeq: state.last_seq };
    } finally {
      await conn.close();
    }
  }

  // Not with a nats-server killed and brought back meanwhile: on 2.9.10 that lost acknowledged increments of
  // other partitions (2.9 replays filtered purges unfiltered), which is why --nats-purge auto does not purge on 2.9.
  it('a node with an empty database restores every partition from its snapshot plus the stream left after the purge, exactly', async () => {
    await purgeKillRestore('1');
  });

  async function purgeKillRestore(run: string): Promise<void> {
    const a = new DaemonRunner(path.join(root, `countd-${run}a`), nodeArgs());
    await a.start(60_000);
    const clients = [0, 1].map((i) => new LedgerClient({ ledger, rng: rng(seed + 10 * Number(run) + i), sizes: SIZES, port: () => a.writePort, name: `w${run}-${i}`, keyspaces: KEYSPACES, window: 32 }));
    for (const c of clients) c.start();
    let state = await streamState();
    const from = state.lastSeq;
    try {
      // Purged: most of what was ever stored is gone from the stream, while the writes go on.
      await waitUntil('the stream purged below the snapshots', async () => {
        state = await streamState();
        return state.lastSeq >= from + 400 && state.messages < (state.lastSeq - from) / 2;
      }, 120_000, 500);
      const wins = clients.reduce((n, c) => n + c.stats.wins, 0);
      await waitUntil('more WINs after the purge', () => clients.reduce((n, c) => n + c.stats.wins, 0) >= wins + 300, 60_000);
      await a.kill('daemon');
    } finally {
      await Promise.all(clients.map((c) => c.stop()));
    }
    assert.deepEqual(clients.flatMap((c) => c.stats.protocolErrors), [], 'no protocol errors');

    const after = await streamState();
    assert.ok(after.messages < after.lastSeq, `the stream keeps ${after.messages} of the ${after.lastSeq} messages it was given: a replay from the start is impossible`);
    const b = new DaemonRunner(path.join(root, `countd-${run}b`), nodeArgs());
    await b.start(60_000);
    const client = new Client({ host: '127.0.0.1', readPort: b.readPort!, ...SIZES });
    let last = '';
    try {
      await waitUntil('every key exact through the fresh node', async () => {
        const counts = new Map<string, bigint | undefined>();
        try {
          for (const e of ledger.keys.values()) counts.set(`${e.keyspace}\0${e.key}`, await client.get(e.keyspace, e.key));
        } catch (err) {
          last = String(err);
          return false;
        }
        const { figures, violations } = ledger.check((ks, key) => counts.get(`${ks}\0${key}`));
        last = `seed ${seed}: ${JSON.stringify(figures)}\n${describeViolations(violations)}`;
        return violations.length === 0;
      }, 60_000, 250).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}\n${last}\n${b.stderr.split('\n').filter((l) => /warn|error|restored|applying/.test(l)).slice(-30).join('\n')}`);
      });
    } finally {
      await client.close();
    }
    const text = await (await fetch(`http://127.0.0.1:${b.record!.metricsPort!}/metrics`)).text();
    const restores = text.split('\n').filter((l) => l.startsWith('countd_cluster_restores_total')).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    assert.ok(restores >= 1, `the fresh node restored from snapshots: ${b.stderr.split('\n').filter((l) => /restored|applying/.test(l)).join('\n')}`);
    await b.stop();
  }
});
