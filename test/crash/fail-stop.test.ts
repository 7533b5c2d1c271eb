// Fail-stop on I/O errors (issue 6, item 4): a write or fdatasync of the
// commit log failing (EIO, ENOSPC) under load through the real write server;
// a worker whose database writes fail; and a real full disk (a small tmpfs
// mounted on the commit-log directory). Checked with the ledger: no WIN for
// data that was not made durable (ERR to the clients concerned, never
// applied), the writer stops using a log that failed, every WIN is applied
// exactly once, a worker leaves logs dirty while it cannot apply them.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs, { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SEAL_RECORD_SIZE, encodeEntry, entrySize } from '../../lib/commitlog/format.js';
import { lockName, parsePoolName } from '../../lib/commitlog/filenames.js';
import { CommitLogWriter, DURABILITY_MODES } from '../../lib/commitlog/writer.js';
import { openDataDir } from '../../lib/datadir/meta.js';
import { CountdError, ErrorCodes } from '../../lib/errors.js';
import { startWorker } from '../../lib/roles/worker.js';
import { startWriter, WriterHandle } from '../../lib/roles/writer.js';
import { Store } from '../../lib/store/store.js';
import { waitUntil } from '../harness/daemon.js';
import { FaultFileOps } from '../harness/fault-fileops.js';
import { Ledger, describeViolations } from '../harness/ledger.js';
import { LedgerClient } from '../harness/ledger-client.js';
import { rng, seedFromEnv } from '../harness/rng.js';
import { drainAndCheck } from '../harness/verify.js';

const SIZES = { keyspaceSize: 16, keySize: 16 };

/** The generation bytes of a log's header (read from its bytes): which use of the file it is in. */
function generationOf(bytes: Buffer): Buffer {
  return bytes.subarray(24, 32);
}

/** Where two images of a log differ: [first, last] byte offsets, or null if they are equal. */
function changedSpan(a: Buffer, b: Buffer): [number, number] | null {
  let first = -1;
  let last = -1;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return first < 0 ? null : [first, last];
}

function wins(clients: LedgerClient[]): number {
  return clients.reduce((n, c) => n + c.stats.wins, 0);
}

describe('fail-stop on I/O errors', function () {
  this.timeout(40_000);
  let root = '';
  const servers: WriterHandle[] = [];
  const clients: LedgerClient[] = [];
  let mounted: string | undefined;

  beforeEach(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-failstop-'));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop(0)));
    // Bounded: a test that failed midway must not keep the mount below alive.
    await Promise.race([Promise.all(servers.splice(0).map((s) => s.close().catch(() => {}))), new Promise((resolve) => setTimeout(resolve, 5000))]);
    if (mounted) {
      try {
        execFileSync('umount', [mounted]);
      } catch {
        execFileSync('umount', ['-l', mounted]);
      }
      mounted = undefined;
    }
    await fsp.rm(root, { recursive: true, force: true });
  });

  for (const durability of DURABILITY_MODES) {
    it(`EIO/ENOSPC in the log write or fdatasync under load: ERR to the clients concerned, never applied, the failed log is retired, every WIN applied once (durability ${durability})`, async () => {
      const seed = seedFromEnv();
      const r = rng(seed);
      const dataDir = await openDataDir(path.join(root, 'data'), { create: true, sizes: SIZES });
      const ops = new FaultFileOps();
      const server = await startWriter({ dataDir, port: 0, logSize: 16384, handoverMs: 50, fileOps: ops, durability });
      servers.push(server);
      const ledger = new Ledger();
      for (let i = 0; i < 4; i++) {
        clients.push(new LedgerClient({ ledger, rng: rng(seed + 1 + i), sizes: SIZES, port: () => server.port, name: `c${i}`, keyspaces: ['a', 'b'], window: 8 + 8 * i }));
      }
      for (const c of clients) c.start();
      // The failed log's bytes at the very moment of each fault (ops.injected[i] ↔ atFault[i]).
      const atFault: Buffer[] = [];
      ops.onFault = (fault) => {
        atFault.push(fs.readFileSync(fault.file!));
      };
      const faults = 6;
      for (let f = 0; f < faults; f++) {
        // Some successful commits between two faults, so that each fault hits a log in use.
        const before = wins(clients);
        await waitUntil('WINs between faults', () => wins(clients) >= before + r.int(20, 200), 10_000);
        // Under O_DSYNC a failed sync is a write that fails after its bytes reached the file ("landed").
        const fault = r.pick(durability === 'dsync' ? (['pwritev', 'pwritev landed'] as const) : (['pwritev', 'fdatasync'] as const));
        ops.fail(fault === 'pwritev landed' ? 'pwritev' : fault, r.pick(['EIO', 'ENOSPC']), { path: /\/\d{10}$/, landed: fault === 'pwritev landed' });
        await waitUntil('the fault to be hit', () => ops.injected.length > f, 10_000);
        const failedLog = path.basename(ops.injected[f]!.file!);
        // The writer stops using that log at once, and writes go on elsewhere.
        const after = wins(clients);
        await waitUntil('WINs after the fault', () => wins(clients) >= after + 20, 10_000);
        // The failed use is retired: handed over (or released) in the background, so waited for.
        // A log released clean (the fault hit its header, or it held no WIN) may be claimed again: that is a new use, with a new generation.
        const file = path.join(dataDir.paths.commitlog, failedLog);
        const retired = await waitUntil(`log ${failedLog} to leave the use that failed`, () => {
          const locked = fs.existsSync(path.join(dataDir.paths.commitlog, lockName(Number(failedLog))));
          const bytes = fs.readFileSync(file);
          const sameUse = generationOf(bytes).equals(generationOf(atFault[f]!));
          return !locked || !sameUse ? { sameUse, bytes } : undefined;
        });
        // Used no more since the fault: at most the SEAL that cuts the failed record off was written to it.
        if (retired.sameUse) {
          const span = changedSpan(atFault[f]!, retired.bytes);
          assert.ok(span === null || span[1] - span[0] < SEAL_RECORD_SIZE, `log ${failedLog} was written at ${String(span)} after the fault: still in use`);
        }
      }
      await Promise.all(clients.map((c) => c.stop()));
      await server.close();
      const { figures, violations } = await drainAndCheck(dataDir.paths.root, ledger);
      const context = `seed ${seed}: ${JSON.stringify(figures)}\n${describeViolations(violations)}`;
      assert.deepEqual(clients.flatMap((c) => c.stats.protocolErrors), [], context);
      assert.equal(violations.length, 0, context);
      assert.ok(figures.framesErr > 0, `no client was answered ERR: ${context}`);
      assert.ok(clients.reduce((n, c) => n + c.stats.sessions, 0) > clients.length, 'clients answered ERR were disconnected and reconnected');
    });
  }

  it('a worker that cannot write to the database leaves the logs dirty, retries with backoff, then applies each exactly once', async () => {
    const dataDir = await openDataDir(path.join(root, 'data'), { create: true, sizes: SIZES });
    const ledger = new Ledger();
    const writer = await CommitLogWriter.open({ dir: dataDir.paths.commitlog, sizes: SIZES, logSize: 8192 });
    for (let n = 0; n < 40; n++) {
      const e = ledger.newKey('ks', `k${n}`);
      for (let j = 0; j < 5; j++) {
        const { index, increment } = ledger.nextFrame(e);
        const buf = Buffer.alloc(entrySize(2, e.key.length));
        encodeEntry(buf, 0, increment, Buffer.from('ks'), Buffer.from(e.key));
        await writer.append(buf, 1);
        ledger.win(e, index);
      }
    }
    await writer.close();
    const logs = fs.readdirSync(dataDir.paths.commitlog).filter((n) => parsePoolName(n).kind === 'log');
    assert.ok(logs.length > 2);

    const store = await Store.open({ location: dataDir.paths.db, sizes: SIZES });
    let failing = true;
    let attempts = 0;
    let dirtyWhileFailing = true;
    const modes = (): number[] => logs.map((n) => fs.statSync(path.join(dataDir.paths.commitlog, n)).mode & 0o777);
    const flaky = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'apply') {
          return (...args: Parameters<Store['apply']>) => {
            attempts++;
            if (failing) {
              if (modes().some((m) => m !== 0o400)) dirtyWhileFailing = false;
              return Promise.reject(new CountdError(ErrorCodes.DATABASE, 'injected: database write failed'));
            }
            return target.apply(...args);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const worker = await startWorker({ dataDir, store: flaky, pollMs: 5 });
    try {
      await waitUntil('four failed attempts', () => attempts >= 4, 15_000);
      assert.ok(dirtyWhileFailing, 'every log stays dirty (0400) while the database cannot be written');
      assert.deepEqual(modes(), logs.map(() => 0o400));
      failing = false;
      await worker.drained();
    } finally {
      await worker.close();
      await store.close();
    }
    assert.deepEqual(modes(), logs.map(() => 0o200), 'applied logs are released clean');
    const { violations } = await drainAndCheck(dataDir.paths.root, ledger);
    assert.equal(violations.length, 0, describeViolations(violations));
  });

  it('a real full disk (4 MiB tmpfs on the commit-log directory, nearly filled): ERR, no WIN lost, and writes succeed again once space is freed', async function () {
    const dataDir = await openDataDir(path.join(root, 'data'), { create: true, sizes: SIZES });
    const dir = dataDir.paths.commitlog;
    fs.mkdirSync(dir, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { stdio: 'pipe' });
      mounted = dir;
    } catch (err) {
      // Never skipped: a disk-full test that did not run must not pass.
      throw new Error(`cannot mount a tmpfs (${(err as Error).message.split('\n')[0]}): this test needs root and mount(8), as in CI`);
    }
    // Leave room for a few 64 KiB logs only.
    const filler = path.join(dir, 'filler');
    const free = (): number => {
      const s = fs.statfsSync(dir);
      return s.bavail * s.bsize;
    };
    fs.writeFileSync(filler, Buffer.alloc(free() - 300 * 1024));
    const seed = seedFromEnv();
    const server = await startWriter({ dataDir, port: 0, logSize: 64 * 1024, handoverMs: 30 });
    servers.push(server);
    const ledger = new Ledger();
    for (let i = 0; i < 3; i++) {
      clients.push(new LedgerClient({ ledger, rng: rng(seed + i), sizes: SIZES, port: () => server.port, name: `f${i}`, keyspaces: ['a'], window: 32 }));
    }
    for (const c of clients) c.start();
    await waitUntil('an ERR from the full disk', () => clients.some((c) => c.stats.errs > 0), 20_000);
    const winsAtFull = wins(clients);
    // Free the space: writes succeed again.
    fs.rmSync(filler);
    await waitUntil('WINs after space was freed', () => wins(clients) >= winsAtFull + 100, 20_000);
    await Promise.all(clients.map((c) => c.stop()));
    await server.close();
    servers.length = 0;
    const { figures, violations } = await drainAndCheck(dataDir.paths.root, ledger);
    const context = `seed ${seed}: ${JSON.stringify(figures)}\n${describeViolations(violations)}`;
    assert.equal(violations.length, 0, context);
    assert.ok(figures.framesErr > 0, context);
    assert.deepEqual(clients.flatMap((c) => c.stats.protocolErrors), [], context);
  });
});
