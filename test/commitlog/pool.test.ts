import assert from 'node:assert/strict';
import { ChildProcess, fork, spawn as nodeSpawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isCountdError } from '../../lib/errors.js';
import { lockName, logName, ownerName, ownerTempName, parsePoolName } from '../../lib/commitlog/filenames.js';
import { realFileOps } from '../../lib/commitlog/fileops.js';
import { currentBootId, lockState, selfOwner, tryLock, tryPoolMutex, unlock } from '../../lib/commitlog/locks.js';
import { processStartTime } from '../../lib/util/proc.js';
import { CommitLogPool, DEFAULT_STALE_LOCK_GRACE_MS, poolStatus } from '../../lib/commitlog/pool.js';
import { waitUntil } from '../harness/daemon.js';
import { FaultFileOps } from '../harness/fault-fileops.js';
import { readLogFile } from '../../lib/commitlog/reader.js';
import { CommitLogWriter } from '../../lib/commitlog/writer.js';
import { decode, flipByte, modeOf, removeDir, sizes, taggedBatch, tempDir } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = (name: string): string => path.join(here, 'fixtures', name);

const children = new Set<ChildProcess>();

function spawn(script: string, args: string[]): ChildProcess {
  const child = fork(fixture(script), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function message<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as T));
    child.once('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before reporting`)));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

async function killHard(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  await exited(child);
}

function names(dir: string, kind: 'log' | 'lock' | 'owner'): number[] {
  return fs
    .readdirSync(dir)
    .map((n) => parsePoolName(n))
    .flatMap((p) => (p.kind === kind ? [p.index] : []))
    .sort((a, b) => a - b);
}

/** Fill `n` logs through a writer (handed over dirty at close or rotation). */
async function dirtyLogs(dir: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const w = await CommitLogWriter.open({ dir, sizes, logSize: 8192 });
    await w.append(taggedBatch(`d${i}`, 2), 2);
    await w.close();
  }
}

describe('commit log: pool', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(async () => {
    for (const c of [...children]) await killHard(c);
    removeDir(dir);
  });

  it('claims dirty logs oldest first, exclusively, and releases them clean or dirty', async () => {
    await dirtyLogs(dir, 3);
    const pool = await CommitLogPool.open({ dir, sizes });
    assert.deepEqual(await pool.status(), { logs: 3, clean: 0, dirty: 3, locked: 0, quarantined: 0, quarantinedLogs: [], other: 0, backlogFrames: 6, backlogBytes: 3 * 8192 });
    const first = await pool.claimDirty(2);
    assert.deepEqual(first.map((l) => l.index), [0, 1], 'oldest first');
    assert.equal(first[0]!.path, path.join(dir, logName(0)));
    assert.deepEqual(names(dir, 'lock'), [0, 1]);
    assert.deepEqual((await pool.status()).locked, 2);
    const second = await pool.claimDirty(5);
    assert.deepEqual(second.map((l) => l.index), [2], 'held logs are not claimed twice');
    assert.deepEqual(await pool.claimDirty(5), []);
    await pool.release(first[0]!, 'clean');
    await pool.release(first[1]!, 'dirty');
    await pool.release(second[0]!, 'clean');
    assert.equal(modeOf(path.join(dir, logName(0))), 0o200);
    assert.equal(modeOf(path.join(dir, logName(1))), 0o400);
    assert.deepEqual(names(dir, 'lock'), []);
    assert.deepEqual(names(dir, 'owner'), []);
    assert.deepEqual(await pool.status(), { logs: 3, clean: 2, dirty: 1, locked: 0, quarantined: 0, quarantinedLogs: [], other: 0, backlogFrames: 2, backlogBytes: 8192 });
    assert.deepEqual((await pool.claimDirty(5)).map((l) => l.index), [1]);
    await assert.rejects(pool.claimDirty(-1), (err) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
    await assert.rejects(pool.release(first[0]!, 'sticky' as 'clean'), (err) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
  });

  it("does not claim a stream's log while an older dirty log of that stream is held elsewhere; other streams go on", async () => {
    // One writer (one stream) fills three logs of one record each; a second writer, another stream, one log.
    const w = await CommitLogWriter.open({ dir, sizes, logSize: 8192 });
    for (let i = 0; i < 3; i++) await w.append(taggedBatch(`s${i}`, 150), 150);
    await w.close();
    await dirtyLogs(dir, 1);
    const streamLogs = (await Promise.all([0, 1, 2, 3].map(async (i) => ({ i, h: (await readLogFile(path.join(dir, logName(i)), sizes)).header })))).filter((l) => l.h !== null);
    const streams = new Set(streamLogs.map((l) => l.h!.streamId));
    assert.equal(streams.size, 2, 'two streams');
    const other = await CommitLogPool.open({ dir, sizes });
    const pool = await CommitLogPool.open({ dir, sizes });
    const taken = await other.claimDirty(1);
    assert.equal(taken.length, 1);
    const takenStream = streamLogs.find((l) => l.i === taken[0]!.index)!.h!.streamId;
    const mine = await pool.claimDirty(10);
    // Only logs of the other stream, or of the same stream but older than the held one (none: it took the oldest).
    for (const log of mine) assert.notEqual(streamLogs.find((l) => l.i === log.index)!.h!.streamId, takenStream, `log ${log.index} claimed past a held older log of its stream`);
    await other.release(taken[0]!, 'clean');
    const rest = await pool.claimDirty(10);
    assert.equal(mine.length + rest.length, streamLogs.length - 1, 'the rest once the older log is released');
    for (const log of [...mine, ...rest]) await pool.release(log, 'clean');
  });

  it('reports logs in other modes in status and never claims them', async () => {
    await dirtyLogs(dir, 2);
    fs.chmodSync(path.join(dir, logName(1)), 0o644);
    const pool = await CommitLogPool.open({ dir, sizes });
    assert.deepEqual(await pool.status(), { logs: 2, clean: 0, dirty: 1, locked: 0, quarantined: 0, quarantinedLogs: [], other: 1, backlogFrames: 2, backlogBytes: 8192 });
    assert.deepEqual((await pool.claimDirty(5)).map((l) => l.index), [0]);
  });

  it('grows by the next free index when no clean log can be claimed, and reuses clean logs first', async () => {
    const a = await CommitLogWriter.open({ dir, sizes, logSize: 8192 });
    const b = await CommitLogWriter.open({ dir, sizes, logSize: 8192 });
    assert.deepEqual(names(dir, 'log'), [0, 1]);
    for (const f of names(dir, 'log')) {
      assert.equal(fs.statSync(path.join(dir, logName(f))).size, 8192);
      assert.equal(modeOf(path.join(dir, logName(f))), 0o200);
    }
    await a.close();
    const c = await CommitLogWriter.open({ dir, sizes, logSize: 8192 });
    assert.deepEqual(names(dir, 'log'), [0, 1], 'the clean log 0 was reused');
    assert.deepEqual(names(dir, 'lock'), [0, 1]);
    await b.close();
    await c.close();
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => parsePoolName(n).kind !== 'log'),
      [],
      'no temp files, locks or owner files are left',
    );
  });

  it('two processes contending for logs never hold the same one, and every acknowledged frame is consumed exactly once', async function () {
    this.timeout(40000);
    type Report = { streamId: string; acked: number; consumed: Array<[string, string, number]>; violations: string[] };
    const kids = [spawn('contender.js', [dir, '150', 'A']), spawn('contender.js', [dir, '150', 'B'])];
    const reports = await Promise.all(kids.map((k) => message<Report>(k)));
    await Promise.all(kids.map(exited));
    // Drain what the children's workers left dirty.
    const pool = await CommitLogPool.open({ dir, sizes });
    const consumed = reports.flatMap((r) => r.consumed);
    for (const log of await pool.claimDirty(1000)) {
      const c = await readLogFile(log.path, sizes);
      assert.deepEqual(c.problems, []);
      for (const r of c.records) consumed.push([String(c.streamId), String(r.seq), r.count]);
      await pool.release(log, 'clean');
    }
    for (const r of reports) {
      assert.deepEqual(r.violations, []);
      const mine = consumed.filter(([s]) => s === r.streamId).map(([, seq, count]) => [BigInt(seq), count] as const);
      mine.sort((x, y) => (x[0] < y[0] ? -1 : 1));
      let next = 0n;
      for (const [seq, count] of mine) {
        assert.equal(seq, next, `stream ${r.streamId}: records continue without hole or duplicate`);
        next += BigInt(count);
      }
      assert.equal(next, BigInt(r.acked), 'every acknowledged frame consumed once');
    }
    assert.equal(consumed.length > 0, true);
    const status = await pool.status();
    assert.equal(status.dirty + status.locked + status.other, 0);
    assert.ok(status.logs >= 2, `the pool grew to ${status.logs} logs`);
  });

  it('recovers the lock of a writer killed with SIGKILL: its log becomes dirty when it had records', async () => {
    const child = spawn('holder.js', [dir, '3']);
    const { held } = await message<{ held: number[] }>(child);
    assert.deepEqual(held, [0]);
    await killHard(child);
    assert.deepEqual(names(dir, 'lock'), [0], 'the dead writer left its lock');
    assert.equal(modeOf(path.join(dir, logName(0))), 0o200);
    const pool = await CommitLogPool.open({ dir, sizes, staleLockGraceMs: 0 });
    assert.equal(await pool.recoverStaleLocks(), 1);
    assert.deepEqual(names(dir, 'lock'), []);
    assert.deepEqual(names(dir, 'owner'), []);
    assert.equal(modeOf(path.join(dir, logName(0))), 0o400);
    const c = await readLogFile(path.join(dir, logName(0)), sizes);
    assert.deepEqual(c.problems, []);
    assert.equal(c.sealed, false);
    assert.deepEqual(c.records.flatMap((r) => decode(r.payload).map((e) => e.key)), ['h0-0', 'h0-1', 'h1-0', 'h1-1', 'h2-0', 'h2-1']);
    assert.equal(await pool.recoverStaleLocks(), 0, 'nothing left to recover');
  });

  it('a killed writer\'s lock is recovered by the next writer open (after the grace period)', async function () {
    this.timeout(10000);
    const child = spawn('holder.js', [dir, '2']);
    await message(child);
    await killHard(child);
    const log = path.join(dir, logName(0));
    // The default grace is 2 s, measured from the log's ctime: wait until the lock is stale by the pool's own rule.
    await waitUntil('the dead writer\'s lock to be stale', async () => (await lockState(realFileOps, dir, 0, DEFAULT_STALE_LOCK_GRACE_MS)) === 'stale', 10_000, 20);
    const w = await CommitLogWriter.open({ dir, sizes, logSize: 8192 });
    assert.equal(modeOf(log), 0o400, 'the dead writer\'s log is dirty: its acknowledged frames will be applied');
    assert.deepEqual(names(dir, 'lock'), [1], 'the new writer took a new log, and log 0 is unlocked');
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, ownerName(1)), 'utf8')).pid, process.pid);
    await w.close();
    assert.equal((await readLogFile(log, sizes)).frames, 4);
  });

  it('a killed writer\'s log without records is recovered clean', async () => {
    const child = spawn('holder.js', [dir, '0']);
    await message(child);
    await killHard(child);
    const pool = await CommitLogPool.open({ dir, sizes, staleLockGraceMs: 0 });
    assert.equal(await pool.recoverStaleLocks(), 1);
    assert.deepEqual(names(dir, 'lock'), []);
    assert.equal(modeOf(path.join(dir, logName(0))), 0o200);
  });

  it('never recovers the lock of a live owner', async () => {
    const child = spawn('holder.js', [dir, '2']);
    await message(child);
    const pool = await CommitLogPool.open({ dir, sizes, staleLockGraceMs: 0 });
    assert.equal(await pool.recoverStaleLocks(), 0);
    assert.deepEqual(names(dir, 'lock'), [0]);
    assert.equal(modeOf(path.join(dir, logName(0))), 0o200);
    assert.deepEqual(await pool.claimDirty(5), []);
  });

  it('treats a lock without owner file as stale only after the grace period', async () => {
    await dirtyLogs(dir, 1);
    // A claimer that died between link(2) and writing its owner file.
    fs.linkSync(path.join(dir, logName(0)), path.join(dir, lockName(0)));
    const patient = await CommitLogPool.open({ dir, sizes, staleLockGraceMs: 60_000 });
    assert.equal(await patient.recoverStaleLocks(), 0);
    assert.deepEqual(names(dir, 'lock'), [0]);
    const eager = await CommitLogPool.open({ dir, sizes, staleLockGraceMs: 0 });
    assert.equal(await eager.recoverStaleLocks(), 1);
    assert.deepEqual(names(dir, 'lock'), []);
    assert.equal(modeOf(path.join(dir, logName(0))), 0o400, 'a dirty log stays dirty');
  });

  it('a writer killed holding a log whose header then breaks: the log is marked dirty for salvage, never left clean for reuse', async () => {
    const child = spawn('holder.js', [dir, '3']);
    await message(child);
    await killHard(child);
    const log = path.join(dir, logName(0));
    flipByte(log, 33); // the header's streamId: its CRC no longer matches
    const pool = await CommitLogPool.open({ dir, sizes, staleLockGraceMs: 0 });
    assert.equal(await pool.recoverStaleLocks(), 1);
    assert.equal(modeOf(log), 0o400, 'dirty: the worker salvages and quarantines it');
    assert.deepEqual(names(dir, 'lock'), []);
    const c = await readLogFile(log, sizes);
    assert.equal(c.headerState, 'bad');
    assert.deepEqual(c.salvage?.records.flatMap((r) => decode(r.payload).map((e) => e.key)), ['h0-0', 'h0-1', 'h1-0', 'h1-1', 'h2-0', 'h2-1']);
    const w = await CommitLogWriter.open({ dir, sizes, logSize: 8192 });
    await w.append(taggedBatch('new', 1), 1);
    assert.deepEqual(names(dir, 'lock'), [1], 'the writer took another log');
    await w.close();
  });

  it('a claimer or a releaser stalled between its calls is never taken for dead, whatever the grace; a dead one is', async () => {
    await dirtyLogs(dir, 1);
    // FileOps whose next rename(2) waits until let go: a process stalled right before it.
    let stall: (() => void) | undefined;
    let stalled: (() => void) | undefined;
    const atRename = new Promise<void>((resolve) => (stalled = resolve));
    const ops = { ...realFileOps, rename: async (from: string, to: string) => {
      stalled!();
      await new Promise<void>((resolve) => (stall = resolve));
      return realFileOps.rename(from, to);
    } };
    // Claim: owner record written, lock linked, rename not yet done.
    const claim = tryLock(ops, dir, 0);
    await atRename;
    assert.ok(fs.existsSync(path.join(dir, lockName(0))), 'linked');
    assert.ok(!fs.existsSync(path.join(dir, ownerName(0))), 'owner file not in place yet');
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(await lockState(realFileOps, dir, 0, 0), 'live', 'a claim under way, past a zero grace');
    const pool = await CommitLogPool.open({ dir, sizes, staleLockGraceMs: 0 });
    assert.equal(await pool.recoverStaleLocks(), 0, 'recovery leaves it alone');
    stall!();
    assert.equal(await claim, true);
    assert.equal(await lockState(realFileOps, dir, 0, 0), 'live');
    // Release: owner file renamed back, lock not yet unlinked.
    let stalled2: (() => void) | undefined;
    const atRename2 = new Promise<void>((resolve) => (stalled2 = resolve));
    stalled = stalled2;
    const release = unlock(ops, dir, 0);
    await atRename2;
    stall!();
    await release;
    assert.ok(!fs.existsSync(path.join(dir, lockName(0))), 'released');
    // Another process's release stalled after its rename: its temp record names it, alive.
    fs.linkSync(path.join(dir, logName(0)), path.join(dir, lockName(0)));
    const other = nodeSpawn('sleep', ['30'], { stdio: 'ignore' });
    const who = { pid: other.pid!, start: processStartTime(other.pid!)!, boot: currentBootId() };
    fs.writeFileSync(path.join(dir, ownerTempName(0, who.pid)), JSON.stringify(who));
    // (A leftover record naming this process, with nothing of ours under way, and a torn one, do not count.)
    fs.writeFileSync(path.join(dir, ownerTempName(0, process.pid)), JSON.stringify(selfOwner()));
    fs.writeFileSync(path.join(dir, ownerTempName(0, 999_999_999)), '{"pid":');
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(await lockState(realFileOps, dir, 0, 0), 'live', 'a release under way in another process');
    // Once that process is dead: stale (the grace has passed).
    other.kill('SIGKILL');
    await new Promise((resolve) => other.once('exit', resolve));
    assert.equal(await lockState(realFileOps, dir, 0, 0), 'stale');
    assert.equal(await pool.recoverStaleLocks(), 1);
    assert.ok(!fs.existsSync(path.join(dir, lockName(0))));
  });

  it('a quarantined log (mode 0000) is never claimed, keeps its mode through stale-lock recovery, is counted, and is released only on request', async () => {
    await dirtyLogs(dir, 2);
    const pool = await CommitLogPool.open({ dir, sizes, staleLockGraceMs: 0 });
    const [log0] = await pool.claimDirty(1);
    await pool.release(log0!, 'quarantined');
    assert.equal(modeOf(path.join(dir, logName(0))), 0o000);
    assert.deepEqual(pool.lastCounts, { logs: 2, clean: 0, dirty: 2, locked: 0, quarantined: 0, quarantinedLogs: [], other: 0 }, 'the counts the claim saw');
    assert.deepEqual((await pool.claimDirty(5)).map((l) => l.index), [1], 'a worker never claims it');
    assert.deepEqual(await poolStatus({ dir, sizes }), { logs: 2, clean: 0, dirty: 1, locked: 1, quarantined: 1, quarantinedLogs: [0], other: 0, backlogFrames: 2, backlogBytes: 8192 });
    assert.equal(await pool.claimClean(0), null, 'a writer never claims it');
    // A worker killed between its chmod to 0000 and its unlock: recovery leaves the mode alone.
    fs.linkSync(path.join(dir, logName(0)), path.join(dir, lockName(0)));
    // (ctime can read a fraction of a millisecond ahead of Date.now(): wait until even a zero grace has passed.)
    await waitUntil('the ownerless lock to be stale', async () => (await lockState(realFileOps, dir, 0, 0)) === 'stale', 5000, 1);
    assert.equal(await pool.recoverStaleLocks(), 1);
    assert.equal(modeOf(path.join(dir, logName(0))), 0o000);
    assert.equal(await pool.releaseQuarantined(1), false, 'log 1 is not quarantined');
    fs.linkSync(path.join(dir, logName(0)), path.join(dir, lockName(0)));
    assert.equal(await pool.releaseQuarantined(0), false, 'a locked log is left alone');
    fs.unlinkSync(path.join(dir, lockName(0)));
    assert.equal(await pool.releaseQuarantined(0), true);
    assert.equal(modeOf(path.join(dir, logName(0))), 0o200);
    assert.deepEqual(names(dir, 'lock'), [1]);
    assert.equal((await pool.counts()).quarantined, 0);
    await assert.rejects(pool.releaseQuarantined(-1), (err) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
  });

  it('creating the pool directory fsyncs the parent of every directory it creates', async () => {
    const pool = path.join(dir, 'x', 'commitlog');
    const failing = new FaultFileOps();
    failing.fail('fsyncDir', 'EIO', { path: new RegExp(`^${path.join(dir, 'x').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) });
    await assert.rejects(CommitLogPool.open({ dir: pool, sizes, fileOps: failing }), (err) => isCountdError(err, 'COUNTD_IO_ERROR'));
    fs.rmSync(path.join(dir, 'x'), { recursive: true });
    const ops = new FaultFileOps();
    await CommitLogPool.open({ dir: pool, sizes, fileOps: ops });
    assert.equal(ops.calls.get('fsyncDir'), 2, 'dir (for x), x (for commitlog)');
    const again = new FaultFileOps();
    await CommitLogPool.open({ dir: pool, sizes, fileOps: again });
    assert.equal(again.calls.get('fsyncDir') ?? 0, 0, 'an existing pool directory: nothing to fsync');
  });

  it('poolStatus of a missing pool directory is an empty pool and creates nothing', async () => {
    const missing = path.join(dir, 'nope', 'commitlog');
    assert.deepEqual(await poolStatus({ dir: missing, sizes }), { logs: 0, clean: 0, dirty: 0, locked: 0, quarantined: 0, quarantinedLogs: [], other: 0, backlogFrames: 0, backlogBytes: 0 });
    assert.equal(fs.existsSync(path.join(dir, 'nope')), false);
  });

  it('removes temp files and owner files left by dead processes', async () => {
    await dirtyLogs(dir, 1);
    const deadPid = 2 ** 22 + 12345; // above pid_max's default: never a live process
    fs.writeFileSync(path.join(dir, `new-${deadPid}-abcd.tmp`), 'x');
    fs.writeFileSync(path.join(dir, `owner-0000000000.tmp-${deadPid}`), 'x');
    fs.writeFileSync(path.join(dir, ownerName(0)), JSON.stringify({ pid: deadPid, start: '1', boot: '' }));
    const pool = await CommitLogPool.open({ dir, sizes, staleLockGraceMs: 0 });
    assert.equal(await pool.recoverStaleLocks(), 0, 'no lock was involved');
    assert.deepEqual(fs.readdirSync(dir), [logName(0)]);
  });

  it('the recovery mutex admits one holder at a time; a holder killed with SIGKILL frees it', async () => {
    const real = fs.realpathSync(dir);
    const m = await tryPoolMutex(real);
    assert.ok(m);
    assert.equal(await tryPoolMutex(real), null, 'not twice, even in one process');
    await m.release();

    const child = spawn('mutex-holder.js', [dir]);
    assert.deepEqual(await message(child), { held: true });
    assert.equal(await tryPoolMutex(real), null, 'held by the child');
    // While another process recovers, recovery is skipped rather than raced.
    await dirtyLogs(dir, 1);
    fs.linkSync(path.join(dir, logName(0)), path.join(dir, lockName(0)));
    const pool = await CommitLogPool.open({ dir, sizes, staleLockGraceMs: 0 });
    assert.equal(await pool.recoverStaleLocks(), 0);
    assert.deepEqual(names(dir, 'lock'), [0]);
    await killHard(child);
    assert.equal(await pool.recoverStaleLocks(), 1, 'the kernel freed the mutex of the killed holder');
    assert.deepEqual(names(dir, 'lock'), []);
  });
});
