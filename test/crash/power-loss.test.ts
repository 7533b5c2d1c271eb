// Simulated power loss (issue 6, item 2). kill -9 lets the kernel flush
// everything the process wrote; a power cut keeps only what was made durable:
// file data after fsync/fdatasync, modes after fsync, names after an fsync of
// their directory (test/harness/fault-fileops.ts models exactly this, with
// torn sectors). Writers keep a ledger; the power is cut at a random
// operation; the surviving state is recovered the way a rebooted daemon
// would (stale locks of the previous boot freed, the worker applies every
// dirty log) and every count is checked against the ledger.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeEntry, entrySize } from '../../lib/commitlog/format.js';
import { CommitLogWriter } from '../../lib/commitlog/writer.js';
import { DataDir, openDataDir } from '../../lib/datadir/meta.js';
import { startWorker, WorkerHandle } from '../../lib/roles/worker.js';
import { startWriter } from '../../lib/roles/writer.js';
import { Store } from '../../lib/store/store.js';
import { FaultFileOps, simulateReboot } from '../harness/fault-fileops.js';
import { KeyEntry, Ledger, MAX_FRAMES_PER_KEY, describeViolations } from '../harness/ledger.js';
import { LedgerClient } from '../harness/ledger-client.js';
import { Rng, rng, seedFromEnv } from '../harness/rng.js';
import { drainAndCheck } from '../harness/verify.js';

const SIZES = { keyspaceSize: 16, keySize: 16 };

async function freshDataDir(root: string, name: string): Promise<{ dataDir: DataDir; ops: FaultFileOps }> {
  const dataDir = await openDataDir(path.join(root, name, 'data'), { create: true, sizes: SIZES });
  const ops = new FaultFileOps(undefined, { shadowDir: path.join(root, name, 'shadow') });
  return { dataDir, ops };
}

/** One sequential appender: batches of 1–8 frames over its own keys, in order, recording WIN/ERR. */
async function appender(w: CommitLogWriter, ops: FaultFileOps, ledger: Ledger, r: Rng, name: string, appends: number): Promise<void> {
  const keys: KeyEntry[] = [];
  let next = 0;
  for (let i = 0; i < 3; i++) keys.push(ledger.newKey(r.pick(['a', 'b']), `${name}.${next++}`));
  for (let n = 0; n < appends && !ops.isDead; n++) {
    const frames: Array<{ e: KeyEntry; index: number; inc: bigint }> = [];
    const count = r.int(1, 8);
    for (let i = 0; i < count; i++) {
      const slot = r.int(0, keys.length - 1);
      if (keys[slot]!.sent >= MAX_FRAMES_PER_KEY) keys[slot] = ledger.newKey(r.pick(['a', 'b']), `${name}.${next++}`);
      const e = keys[slot]!;
      const { index, increment } = ledger.nextFrame(e);
      frames.push({ e, index, inc: increment });
    }
    let size = 0;
    for (const f of frames) size += entrySize(f.e.keyspace.length, f.e.key.length);
    const buf = Buffer.alloc(size);
    let at = 0;
    for (const f of frames) at = encodeEntry(buf, at, f.inc, Buffer.from(f.e.keyspace), Buffer.from(f.e.key));
    try {
      await w.append(buf, frames.length);
      for (const f of frames) ledger.win(f.e, f.index);
    } catch {
      for (const f of frames) ledger.err(f.e, f.index);
      return; // like a connection answered ERR: the server closes it
    }
  }
}

describe('power loss (simulated: only what was fsynced survives)', function () {
  this.timeout(60_000);
  let root = '';
  const workers: WorkerHandle[] = [];
  const stores: Store[] = [];

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-powerloss-'));
  });
  after(async () => {
    for (const w of workers) await w.close().catch(() => {});
    for (const s of stores) await s.close().catch(() => {});
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('commit-log writer: every acked frame applied exactly once after a cut at a random operation (24 cuts, with and without a worker recycling logs)', async () => {
    const seed = seedFromEnv();
    const r = rng(seed);
    const totals = { acked: 0, cutsDuringWrites: 0 };
    for (let round = 0; round < 24; round++) {
      const { dataDir, ops } = await freshDataDir(root, `w${round}`);
      const ledger = new Ledger();
      const writer = await CommitLogWriter.open({ dir: dataDir.paths.commitlog, sizes: SIZES, logSize: 4096 + 1024 * r.int(1, 3), handoverMs: r.int(2, 30), fileOps: ops });
      // Half the rounds, a worker applies and recycles logs meanwhile (real file system: its fsyncs make its steps durable).
      let store: Store | undefined;
      let worker: WorkerHandle | undefined;
      if (round % 2 === 1) {
        store = await Store.open({ location: dataDir.paths.db, sizes: SIZES });
        worker = await startWorker({ dataDir, store, pollMs: 2 });
      }
      const cutAt = r.int(1, 400); // a round takes some 300-500 file operations (O_DSYNC: one per append, plus hand-overs): most cuts fall inside it, a few after it
      ops.cutAfter(cutAt);
      const work = Promise.all([0, 1, 2].map((i) => appender(writer, ops, ledger, rng(seed + round * 7 + i), `r${round}c${i}`, 40)));
      await Promise.race([ops.died, work]);
      if (ops.isDead) totals.cutsDuringWrites++;
      if (worker) await worker.close();
      if (store) await store.close();
      const survive = round % 3 === 0 ? 0 : 0.5;
      await ops.cut({ random: r.next, survive });
      simulateReboot(dataDir.paths.commitlog);
      const { figures, violations } = await drainAndCheck(dataDir.paths.root, ledger);
      totals.acked += figures.framesAcked;
      assert.equal(violations.length, 0, `seed ${seed} round ${round} (cut at op ${cutAt}, survive ${survive}):\n${describeViolations(violations)}`);
      // The pool is usable after the cut: a new writer claims, appends, hands over.
      const again = await CommitLogWriter.open({ dir: dataDir.paths.commitlog, sizes: SIZES, logSize: 8192 });
      const e = Buffer.alloc(entrySize(1, 1));
      encodeEntry(e, 0, 1n, Buffer.from('z'), Buffer.from('z'));
      await again.append(e, 1);
      await again.close();
    }
    assert.ok(totals.cutsDuringWrites >= 12, `the cut fell inside the writes in ${totals.cutsDuringWrites} of 24 rounds`);
    assert.ok(totals.acked > 0);
  });

  it('countd-write over TCP: clients\' acked frames survive a cut at a random operation (8 cuts)', async () => {
    const seed = seedFromEnv();
    const r = rng(seed);
    for (let round = 0; round < 8; round++) {
      const { dataDir, ops } = await freshDataDir(root, `tcp${round}`);
      const ledger = new Ledger();
      const server = await startWriter({ dataDir, port: 0, logSize: 8192, handoverMs: r.int(2, 30), fileOps: ops });
      const clients = [0, 1, 2].map(
        (i) => new LedgerClient({ ledger, rng: rng(seed + round * 5 + i), sizes: SIZES, port: () => (ops.isDead ? undefined : server.port), name: `t${round}c${i}`, keyspaces: ['a', 'b'], window: 8 + 8 * i }),
      );
      ops.cutAfter(r.int(20, 400));
      for (const c of clients) c.start();
      await Promise.race([ops.died, new Promise((resolve) => setTimeout(resolve, 1500))]);
      ops.powerOff();
      void server.close(); // stops listening; its disk work never completes
      await Promise.all(clients.map((c) => c.stop(0)));
      await ops.cut({ random: r.next, survive: round % 2 === 0 ? 0 : 0.5 });
      simulateReboot(dataDir.paths.commitlog);
      const { figures, violations } = await drainAndCheck(dataDir.paths.root, ledger);
      assert.equal(violations.length, 0, `seed ${seed} round ${round}:\n${describeViolations(violations)}`);
      assert.equal(clients.flatMap((c) => c.stats.protocolErrors).length, 0);
      assert.ok(figures.framesSent > 0);
    }
  });
});
