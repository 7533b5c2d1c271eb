// Hostile clients (issue 6, item 6), part 1: a seeded fuzzer sends malformed,
// truncated, misaligned, split and random write frames and read requests
// over many connections to the real daemon while honest clients write and
// read. The server never crashes (no child restarts), never applies a
// malformed frame, answers BAD or n = -1 exactly as docs/protocol.md says, and
// the honest clients' results are exact.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { DaemonRunner, killAllDaemons, waitUntil } from '../harness/daemon.js';
import { EVIL, fuzzRead, fuzzWrite, WriteFuzzOutcome } from '../harness/hostile.js';
import { Ledger, describeViolations } from '../harness/ledger.js';
import { LedgerClient } from '../harness/ledger-client.js';
import { rng, seedFromEnv } from '../harness/rng.js';
import { drainAndCheck } from '../harness/verify.js';

const SIZES = { keyspaceSize: 16, keySize: 16 };
const HONEST = ['alpha', 'beta'];
const PAGE_LIMIT = 500;

describe('hostile clients: fuzzed frames and requests', function () {
  this.timeout(60_000);
  let root = '';
  let daemon: DaemonRunner;
  const clients: LedgerClient[] = [];

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-fuzz-'));
    daemon = new DaemonRunner(path.join(root, 'data'), [
      '--keyspace-size', '16', '--key-size', '16', '--handover-ms', '20', '--page-limit', String(PAGE_LIMIT), '--idle-timeout', '3000',
    ]);
    await daemon.start();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.stop(0)));
    await killAllDaemons();
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('never crashes, never applies a malformed frame, answers BAD / n = -1 / n = -2 exactly; honest writers and readers exact', async () => {
    const seed = seedFromEnv();
    const pidsBefore = await daemon.pids();
    const ledger = new Ledger();
    for (let i = 0; i < 3; i++) {
      clients.push(new LedgerClient({ ledger, rng: rng(seed + 100 + i), sizes: SIZES, port: () => daemon.writePort, name: `h${i}`, keyspaces: HONEST, window: 16 }));
    }
    for (const c of clients) c.start();

    const writeOutcomes: WriteFuzzOutcome[] = [];
    const readProblems: string[] = [];
    const kinds = new Map<string, number>();
    // 600 hostile connections, 30 at a time.
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < 600) {
        const id = next++;
        const sub = rng(seed + 1000 + id);
        if (sub.chance(0.6)) {
          const o = await fuzzWrite(daemon.writePort!, sub, SIZES, id);
          writeOutcomes.push(o);
          kinds.set(`write:${o.kind}`, (kinds.get(`write:${o.kind}`) ?? 0) + 1);
        } else {
          const o = await fuzzRead(daemon.readPort!, sub, SIZES, [...HONEST, EVIL, 'nothing'], PAGE_LIMIT);
          readProblems.push(...o.problems);
          kinds.set(`read:${o.kind}`, (kinds.get(`read:${o.kind}`) ?? 0) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: 30 }, lane));
    const context = `seed ${seed} (replay: COUNTD_SEED=${seed}); kinds ${JSON.stringify(Object.fromEntries(kinds))}`;
    assert.deepEqual(writeOutcomes.flatMap((o) => o.problems), [], context);
    assert.deepEqual(readProblems, [], context);
    console.log(`      ${writeOutcomes.length} hostile write and ${600 - writeOutcomes.length} hostile read connections: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);

    // Honest writers stop (every frame answered); the worker applies everything.
    await Promise.all(clients.map((c) => c.stop()));
    assert.deepEqual(clients.flatMap((c) => c.stats.protocolErrors), [], context);
    const pidsAfter = await daemon.pids();
    assert.deepEqual(pidsAfter, pidsBefore, 'no process of the daemon died or was restarted');

    // Honest readers: once applied, pages through the read port are exactly the ledger's counts in rank order.
    const expected = new Map<string, Array<{ key: string; count: bigint }>>();
    for (const e of ledger.keys.values()) {
      if (e.acked !== e.sent) assert.fail(`honest frame unanswered: ${e.keyspace}/${e.key} sent ${e.sent}, acked ${e.acked}`);
      if (e.acked === 0) continue;
      const list = expected.get(e.keyspace) ?? [];
      list.push({ key: e.key, count: (1n << BigInt(e.acked)) - 1n });
      expected.set(e.keyspace, list);
    }
    const reader = new Client({ readPort: daemon.readPort!, keyspaceSize: 16, keySize: 16 });
    try {
      for (const ks of HONEST) {
        const want = (expected.get(ks) ?? []).sort((a, b) => (a.count !== b.count ? (a.count > b.count ? -1 : 1) : Buffer.compare(Buffer.from(a.key), Buffer.from(b.key))));
        const total = want.reduce((s, e) => s + e.count, 0n);
        const got = await waitUntil(`keyspace ${ks} fully applied`, async () => {
          const all = [];
          for await (const e of reader.dump(ks, { pageSize: PAGE_LIMIT })) all.push(e);
          return all.reduce((s, e) => s + e.count, 0n) === total ? all : undefined;
        }, 30_000, 50);
        assert.deepEqual(got.map((e) => ({ key: e.key.toString('latin1'), count: e.count })), want, `keyspace ${ks}`);
      }
    } finally {
      await reader.close();
    }

    await daemon.stop();
    const evil: Array<{ key: string; count: bigint }> = [];
    let keyspaces: string[] = [];
    const { violations } = await drainAndCheck(daemon.dataDir, ledger, async (store) => {
      keyspaces = (await store.keyspaces()).map((k) => k.name.toString('latin1'));
      for await (const e of store.iterate(EVIL)) evil.push({ key: e.key.toString('latin1'), count: e.count });
    });
    assert.equal(violations.length, 0, describeViolations(violations));
    // Nothing but the honest keyspaces and the fuzzers' one exists: no malformed name was ever applied.
    assert.deepEqual(keyspaces.sort(), [...HONEST, EVIL].filter((k) => k === EVIL ? evil.length > 0 : expected.has(k)).sort(), context);
    const counts = new Map(evil.map((e) => [e.key, e.count]));
    const allowed = new Set<string>();
    for (const o of writeOutcomes) {
      for (const [key, want] of o.expect) {
        allowed.add(key);
        const got = counts.get(key) ?? 0n;
        if (want.exact !== undefined) assert.equal(got, want.exact, `${o.kind} #${o.id}: ${EVIL}/${key} = ${got}, expected ${want.exact}; ${context}`);
        if (want.atMost !== undefined) assert.ok(got <= want.atMost, `${o.kind} #${o.id}: ${EVIL}/${key} = ${got} > ${want.atMost} sent`);
      }
    }
    for (const key of counts.keys()) assert.ok(allowed.has(key), `${EVIL}/${key} exists but no fuzzer wrote it validly: a malformed frame was applied`);
  });
});
