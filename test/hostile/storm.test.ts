// Hostile clients (issue 6, item 6), part 2: 1,000 concurrent connections
// that stay idle, stop in the middle of a frame, or send one byte a second;
// and clients that flood frames without ever reading a reply. With a short
// idle timeout: idle and slow connections are closed, the server's memory
// (RSS of its processes) stays bounded, and an honest client is unaffected
// (its writes go on being acknowledged and end up exact).

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeFrame } from '../../lib/protocol/write-frame.js';
import { DaemonRunner, killAllDaemons, waitUntil } from '../harness/daemon.js';
import { Probe, rssBytes } from '../harness/hostile.js';
import { Ledger, describeViolations } from '../harness/ledger.js';
import { LedgerClient, sleep } from '../harness/ledger-client.js';
import { rng, seedFromEnv } from '../harness/rng.js';
import { drainAndCheck } from '../harness/verify.js';

const SIZES = { keyspaceSize: 16, keySize: 16 };
const MiB = 1024 * 1024;
/** Bound on each daemon process's resident memory during the storm. */
const RSS_BOUND = 300 * MiB;

describe('hostile clients: connection storms and slow clients', function () {
  this.timeout(60_000);
  let root = '';
  let daemon: DaemonRunner;
  const probes: Probe[] = [];
  const clients: LedgerClient[] = [];

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-storm-'));
    daemon = new DaemonRunner(path.join(root, 'data'), ['--keyspace-size', '16', '--key-size', '16', '--handover-ms', '50', '--idle-timeout', '700']);
    await daemon.start();
  });
  after(async () => {
    for (const p of probes) p.destroy();
    await Promise.all(clients.map((c) => c.stop(0)));
    await killAllDaemons();
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('1,000 idle, half-frame and one-byte-a-second connections plus 4 non-reading floods: all idle ones closed, memory bounded, the honest client exact', async () => {
    const seed = seedFromEnv();
    const r = rng(seed);
    const pids = await daemon.pids();
    const processes = [pids.supervisor, pids.writer!, pids.store!];
    const baseline = processes.map(rssBytes);
    let peak = [...baseline];
    const sampler = setInterval(() => {
      peak = processes.map((pid, i) => Math.max(peak[i]!, rssBytes(pid)));
    }, 50);

    const ledger = new Ledger();
    const honest = new LedgerClient({ ledger, rng: rng(seed + 1), sizes: SIZES, port: () => daemon.writePort, name: 'honest', keyspaces: ['fair'], window: 8 });
    clients.push(honest);
    honest.start();

    try {
      // 1,000 connections: 800 to the write port, 200 to the read port.
      const storm: Array<{ probe: Probe; kind: string }> = [];
      for (let i = 0; i < 1000; i++) {
        const write = i < 800;
        const probe = await Probe.connect(write ? daemon.writePort! : daemon.readPort!);
        probes.push(probe);
        const kind = r.pick(['idle', 'half', 'slow']);
        if (kind === 'half') void probe.write(Buffer.alloc(write ? 20 : 10, 1));
        storm.push({ probe, kind });
      }
      // Slow clients: one byte a second, for as long as the server keeps them.
      const slow = storm.filter((s) => s.kind === 'slow');
      const drip = (async () => {
        for (let t = 0; t < 8 && slow.some((s) => !s.probe.closed); t++) {
          for (const s of slow) if (!s.probe.closed) s.probe.socket.write(Buffer.from([1]));
          await sleep(1000);
        }
      })();
      // Floods: frames as fast as the socket takes them, replies never read.
      const floods = await Promise.all([0, 1, 2, 3].map(() => Probe.connect(daemon.writePort!)));
      probes.push(...floods);
      for (const f of floods) f.socket.pause();
      const chunk = Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodeFrame(1n, 'flood', `f${i % 50}`, SIZES)));
      let flooded = 0;
      const flooding = Promise.all(
        floods.map(async (f) => {
          for (let i = 0; i < 200 && !f.closed; i++) {
            if (!f.socket.write(chunk)) await Promise.race([new Promise((resolve) => f.socket.once('drain', resolve)), sleep(2000)]);
            flooded += 1000;
          }
        }),
      );
      const winsBefore = honest.stats.wins;
      await waitUntil('the server to close every idle, half-frame and slow connection', () => storm.every((s) => s.probe.closed), 20_000, 50);
      assert.ok(storm.every((s) => s.probe.closedByServer), 'every storm connection was closed by the server');
      const winsDuringStorm = honest.stats.wins - winsBefore;
      assert.ok(winsDuringStorm > 0, 'the honest client was acknowledged while 1,000 hostile connections were open');
      // The floods still hold their connections, unread: the honest client keeps being served.
      const winsAfterStorm = honest.stats.wins;
      await waitUntil('honest WINs beside the floods', () => honest.stats.wins >= winsAfterStorm + 100 || undefined, 30_000, 20);
      assert.ok(floods.every((f) => !f.closed), 'flood connections are throttled, not dropped');
      await Promise.race([flooding, sleep(5000)]);
      for (const f of floods) f.destroy();
      await drip;
      console.log(
        `      RSS (MiB) supervisor/writer/store: baseline ${baseline.map((b) => (b / MiB).toFixed(0)).join('/')}, peak ${peak.map((b) => (b / MiB).toFixed(0)).join('/')}; ${flooded} flood frames sent unread`,
      );
    } finally {
      clearInterval(sampler);
    }
    peak.forEach((p, i) => assert.ok(p < RSS_BOUND, `process ${processes[i]} peaked at ${(p / MiB).toFixed(0)} MiB`));
    assert.deepEqual(await daemon.pids(), pids, 'no process of the daemon died');

    await honest.stop();
    assert.deepEqual(honest.stats.protocolErrors, []);
    await daemon.stop();
    const { figures, violations } = await drainAndCheck(daemon.dataDir, ledger);
    assert.equal(violations.length, 0, describeViolations(violations));
    assert.equal(figures.framesAcked, figures.framesSent, 'every honest frame was acknowledged');
  });
});
