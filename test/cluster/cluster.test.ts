// The cluster (docs/cluster.md) against real servers: a 3-node nats-server
// cluster with JetStream (R3) on loopback ports picked at run time, and three
// `countd start --nats` nodes. Writes go to every node under load; one countd
// node is killed with SIGKILL, then one nats-server; at the end everything is
// stopped and started again. After each step every key written is read
// through the surviving nodes and checked against the writers' ledger: no
// acknowledged increment lost, none applied twice.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { DaemonRunner, killAllDaemons, waitUntil } from '../harness/daemon.js';
import { describeViolations, Ledger } from '../harness/ledger.js';
import { LedgerClient } from '../harness/ledger-client.js';
import { NatsCluster } from '../harness/nats-cluster.js';
import { rng, seedFromEnv } from '../harness/rng.js';

const SIZES = { keyspaceSize: 16, keySize: 16 };
const KEYSPACES = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
/** The documented failover bound (docs/cluster.md): a dead node's keyspaces are readable elsewhere within it. */
const FAILOVER_MS = 15_000;

function wins(clients: LedgerClient[]): number {
  return clients.reduce((n, c) => n + c.stats.wins, 0);
}

/** Every key of the ledger read through `readPort`; the ledger's check of those counts. */
async function checkThrough(readPort: number, ledger: Ledger) {
  const client = new Client({ host: '127.0.0.1', readPort, ...SIZES });
  try {
    const counts = new Map<string, bigint | undefined>();
    for (const e of ledger.keys.values()) counts.set(`${e.keyspace}\0${e.key}`, await client.get(e.keyspace, e.key));
    return ledger.check((ks, key) => counts.get(`${ks}\0${key}`));
  } finally {
    await client.close();
  }
}

describe('cluster on NATS JetStream (3 nats-server, 3 countd nodes)', function () {
  this.timeout(180_000);
  let root: string;
  let nats: NatsCluster | undefined;
  const nodes: DaemonRunner[] = [];
  const clients: LedgerClient[] = [];
  const seed = seedFromEnv();
  const ledger = new Ledger();

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-cluster-'));
    nats = await NatsCluster.start(root);
    for (let i = 0; i < 3; i++) {
      nodes.push(new DaemonRunner(path.join(root, `countd-${i}`), ['--nats', nats.urls, '--keyspace-size', '16', '--key-size', '16', '--handover-ms', '100']));
    }
    for (const n of nodes) await n.start(60_000);
  });

  after(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop(0)));
    await killAllDaemons();
    await nats?.stopAll();
    await fsp.rm(root, { recursive: true, force: true });
  });

  function load(name: string, node: DaemonRunner, i: number): LedgerClient {
    const c = new LedgerClient({ ledger, rng: rng(seed + i), sizes: SIZES, port: () => node.writePort, name, keyspaces: KEYSPACES, window: 32 });
    clients.push(c);
    c.start();
    return c;
  }

  async function stopLoad(): Promise<void> {
    const stopped = clients.splice(0);
    await Promise.all(stopped.map((c) => c.stop()));
    assert.deepEqual(stopped.flatMap((c) => c.stats.protocolErrors), [], 'no protocol errors');
  }

  async function expectExact(readPort: number, what: string, timeoutMs: number): Promise<void> {
    let last = '';
    await waitUntil(what, async () => {
      const { figures, violations } = await checkThrough(readPort, ledger).catch((err: unknown) => ({ figures: undefined, violations: [{ why: String(err) }] as never[] }));
      last = `seed ${seed}: ${JSON.stringify(figures)}\n${describeViolations(violations)}`;
      return violations.length === 0 && figures !== undefined;
    }, timeoutMs, 200).catch((err: unknown) => {
      const warnings = nodes.map((n, i) => `node ${i}: ${n.stderr.split('\n').filter((l) => /warn|error|gone|live/.test(l)).slice(-12).join('\n  ')}`).join('\n');
      throw new Error(`${(err as Error).message}\n${last}\n${warnings}`);
    });
  }

  it('kill -9 of a countd node under load: no acknowledged increment lost or doubled; its keyspaces readable from the others within 15 s', async () => {
    const [a, b, c] = nodes as [DaemonRunner, DaemonRunner, DaemonRunner];
    const viaB = load('b1', b, 1);
    load('a1', a, 2);
    load('c1', c, 3);
    await waitUntil('WINs through every node', () => clients.every((x) => x.stats.wins >= 300), 60_000);
    await b.kill('daemon');
    const killedAt = Date.now();
    const before = wins(clients);
    await waitUntil('writes go on through the other nodes', () => wins(clients) >= before + 300, 30_000);
    await stopLoad();
    assert.ok(viaB.stats.wins >= 300);
    // Every key, the killed node's included, read through node a and through node c.
    await expectExact(a.readPort!, 'every key exact through node a', Math.max(1000, FAILOVER_MS - (Date.now() - killedAt)));
    await expectExact(c.readPort!, 'every key exact through node c', 5000);
  });

  it('kill -9 of a nats-server under load: writes go on; once it is back, nothing lost or doubled', async () => {
    const [a, , c] = nodes as [DaemonRunner, DaemonRunner, DaemonRunner];
    load('a2', a, 4);
    load('c2', c, 5);
    await waitUntil('WINs', () => wins(clients) >= 300, 30_000);
    await nats!.kill(2);
    const before = wins(clients);
    await waitUntil('writes go on with 2 of 3 nats-servers', () => wins(clients) >= before + 500, 60_000);
    await stopLoad();
    // The server comes back (as an operator would bring it); applies resume once JetStream
    // answers again (docs/cluster.md, "Losing a nats-server").
    await nats!.start(2);
    await expectExact(a.readPort!, 'every key exact through node a', 90_000);
  });

  it('everything stopped and started again: the state is intact on every node', async () => {
    for (const n of nodes) await n.stop();
    await nats!.stopAll();
    for (let i = 0; i < 3; i++) await nats!.start(i);
    for (const n of nodes) await n.start(60_000);
    for (const n of nodes) await expectExact(n.readPort!, 'every key exact after the restart', 60_000);
    const { figures } = await checkThrough(nodes[0]!.readPort!, ledger);
    assert.ok(figures.framesAcked > 1500, `enough acknowledged frames to mean something: ${JSON.stringify(figures)}`);
  });
});
