import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { isCountdError } from '../../lib/errors.js';
import { lockName, logName, ownerName, parsePoolName } from '../../lib/commitlog/filenames.js';
import { HEADER_SIZE, RECORD_HEADER_SIZE, SEAL_RECORD_SIZE, WRITTEN_AT_SIZE } from '../../lib/commitlog/format.js';
import { LogContents, readLogFile, streamGaps } from '../../lib/commitlog/reader.js';
import { CommitLogWriter, CommitLogWriterOptions, DURABILITY_MODES } from '../../lib/commitlog/writer.js';
import { metrics } from '../../lib/metrics.js';
import { FaultFileOps } from './fault-fileops.js';
import { decode, modeOf, removeDir, sizes, taggedBatch, tempDir } from './helpers.js';

function logsIn(dir: string): number[] {
  return fs
    .readdirSync(dir)
    .map((n) => parsePoolName(n))
    .flatMap((p) => (p.kind === 'log' ? [p.index] : []))
    .sort((a, b) => a - b);
}

function locksIn(dir: string): number[] {
  return fs
    .readdirSync(dir)
    .map((n) => parsePoolName(n))
    .flatMap((p) => (p.kind === 'lock' ? [p.index] : []));
}

async function readAll(dir: string): Promise<LogContents[]> {
  const out: LogContents[] = [];
  for (const i of logsIn(dir)) out.push(await readLogFile(path.join(dir, logName(i)), sizes));
  return out;
}

/** Keys of every entry in the pool, in stream order. */
function keysInOrder(logs: LogContents[]): string[] {
  const used = logs.filter((l) => l.header !== null && l.records.length > 0);
  used.sort((a, b) => (a.header!.firstSeq < b.header!.firstSeq ? -1 : 1));
  return used.flatMap((l) => l.records.flatMap((r) => decode(r.payload).map((e) => e.key)));
}

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('commit log: writer', () => {
  let dir: string;
  const writers: CommitLogWriter[] = [];
  const open = async (o: Partial<CommitLogWriterOptions> = {}): Promise<CommitLogWriter> => {
    const w = await CommitLogWriter.open({ dir, sizes, logSize: 16384, ...o });
    writers.push(w);
    return w;
  };

  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(async () => {
    for (const w of writers.splice(0)) await w.close().catch(() => {});
    removeDir(dir);
  });

  it('claims a clean log at open, keeps it locked while filling, hands it over dirty and sealed at close', async () => {
    const w = await open();
    assert.deepEqual(logsIn(dir), [0]);
    const log = path.join(dir, logName(0));
    assert.equal(modeOf(log), 0o200, 'clean while being filled');
    assert.ok(fs.existsSync(path.join(dir, lockName(0))));
    const owner = JSON.parse(fs.readFileSync(path.join(dir, ownerName(0)), 'utf8')) as { pid: number };
    assert.equal(owner.pid, process.pid);
    assert.equal(fs.statSync(log).size, 16384);

    await w.append(taggedBatch('a', 3), 3);
    await w.append(taggedBatch('b', 2), 2);
    assert.equal(modeOf(log), 0o200);
    await w.close();
    assert.equal(modeOf(log), 0o400, 'dirty after hand-over');
    assert.deepEqual(locksIn(dir), []);
    assert.ok(!fs.existsSync(path.join(dir, ownerName(0))));

    const c = await readLogFile(log, sizes);
    assert.deepEqual(c.problems, []);
    assert.equal(c.sealed, true);
    assert.equal(c.streamId, w.streamId);
    assert.deepEqual(c.records.map((r) => [r.seq, r.count]), [[0n, 3], [3n, 2]]);
    assert.deepEqual(keysInOrder([c]), ['a-0', 'a-1', 'a-2', 'b-0', 'b-1']);
    await assert.rejects(w.append(taggedBatch('c', 1), 1), (err) => isCountdError(err, 'COUNTD_CLOSED'));
  });

  it('releases a log without records clean, not dirty', async () => {
    const w = await open();
    await w.close();
    assert.equal(modeOf(path.join(dir, logName(0))), 0o200);
    assert.deepEqual(locksIn(dir), []);
  });

  it('preallocates 2 MiB logs by default, so one append may carry 2,092,968 entry bytes (8 go to the writtenAt of its record)', async () => {
    const w = await CommitLogWriter.open({ dir, sizes });
    writers.push(w);
    assert.equal(fs.statSync(path.join(dir, logName(0))).size, 2_097_152);
    assert.equal(w.maxBatchBytes, 2_092_968);
  });

  it('writes every record with flag 0x01 and the writtenAt of its clock, before the entries, covered by the CRC', async () => {
    const times = [1_796_665_580_316, 1_796_665_590_000];
    const w = await open({ now: () => times.shift()! });
    await w.append(taggedBatch('a', 2), 2);
    await w.append(taggedBatch('b', 1), 1);
    await w.close();
    const file = path.join(dir, logName(0));
    const c = await readLogFile(file, sizes);
    assert.deepEqual(c.records.map((r) => [r.count, r.writtenAt]), [[2, 1_796_665_580_316], [1, 1_796_665_590_000]]);
    assert.deepEqual(keysInOrder([c]), ['a-0', 'a-1', 'b-0']);
    const bytes = fs.readFileSync(file);
    assert.equal(bytes[HEADER_SIZE + 9], 0x01, 'flags byte');
    assert.equal(bytes.readBigUInt64LE(HEADER_SIZE + RECORD_HEADER_SIZE), 1_796_665_580_316n);
    assert.equal(bytes.readUInt32LE(HEADER_SIZE + 4), WRITTEN_AT_SIZE + c.records[0]!.payload.length, 'length counts writtenAt');
    // A flag this countd does not know makes the record invalid: dropped and reported, the next one read.
    bytes[HEADER_SIZE + 9] = 0x03;
    const end = HEADER_SIZE + RECORD_HEADER_SIZE + bytes.readUInt32LE(HEADER_SIZE + 4);
    bytes.writeUInt32LE(crc32(bytes.subarray(HEADER_SIZE + 4, end)), HEADER_SIZE);
    fs.chmodSync(file, 0o600);
    fs.writeFileSync(file, bytes);
    const damaged = await readLogFile(file, sizes);
    assert.deepEqual(damaged.records.map((r) => r.writtenAt), [1_796_665_590_000]);
    assert.deepEqual([damaged.problems[0]!.offset, damaged.problems[0]!.bytesDropped], [HEADER_SIZE, end - HEADER_SIZE]);
  });

  it('rotates by size: seals each full log and continues the stream in the next', async () => {
    const w = await open({ logSize: 8192 });
    let frames = 0;
    for (let i = 0; i < 30; i++) {
      await w.append(taggedBatch(`s${i}`, 10), 10); // ~210 bytes each: about 18 per log
      frames += 10;
    }
    await w.close();
    // The log claimed ahead for the next use is released unused.
    const logs = (await readAll(dir)).filter((l) => l.records.length > 0);
    assert.ok(logs.length >= 2, `pool grew to ${logs.length} logs`);
    for (const l of logs) {
      assert.deepEqual(l.problems, []);
      assert.equal(l.sealed, true);
      assert.equal(modeOf(path.join(dir, logName(l.index!))), 0o400);
    }
    assert.deepEqual(streamGaps(logs), []);
    assert.equal(logs.reduce((n, l) => n + l.frames, 0), frames);
    assert.deepEqual(
      keysInOrder(logs),
      Array.from({ length: 30 }, (_, i) => Array.from({ length: 10 }, (_, j) => `s${i}-${j}`)).flat(),
    );
  });

  it('rotates by time: hands a log over after handoverMs and uses another log next', async () => {
    const w = await open({ handoverMs: 30 });
    await w.append(taggedBatch('t', 2), 2);
    const first = path.join(dir, logName(0));
    await waitFor('hand-over by time', () => modeOf(first) === 0o400);
    const c = await readLogFile(first, sizes);
    assert.equal(c.sealed, true);
    assert.equal(c.frames, 2);
    await w.append(taggedBatch('u', 1), 1);
    const held = locksIn(dir);
    assert.equal(held.length, 1);
    assert.notEqual(held[0], 0, 'the next append went to another log');
    await w.close();
    const logs = await readAll(dir);
    assert.deepEqual(streamGaps(logs), []);
    assert.deepEqual(keysInOrder(logs), ['t-0', 't-1', 'u-0']);
  });

  it('hands a log over once appends pause for idleHandoverMs, long before handoverMs, with the next log claimed ahead', async () => {
    const w = await open({ handoverMs: 3_600_000, idleHandoverMs: 30 });
    await w.append(taggedBatch('a', 1), 1);
    await w.append(taggedBatch('b', 2), 2);
    const first = path.join(dir, logName(0));
    await waitFor('hand-over once idle', () => modeOf(first) === 0o400);
    const c = await readLogFile(first, sizes);
    assert.equal(c.sealed, true);
    assert.equal(c.frames, 3);
    // The next log is claimed ahead (locked, not ours to fill yet): the next append does not wait for a claim.
    await waitFor('the next log claimed ahead', () => locksIn(dir).length === 1 && locksIn(dir)[0] !== 0);
    await w.append(taggedBatch('c', 1), 1);
    await w.close();
    const logs = await readAll(dir);
    assert.deepEqual(streamGaps(logs), []);
    assert.deepEqual(keysInOrder(logs), ['a-0', 'b-0', 'b-1', 'c-0']);
  });

  it('marks logs dirty in their order: a later log waits for an earlier one whose hand-over is slow', async () => {
    const ops = new FaultFileOps();
    let open0!: () => void;
    const gate = new Promise<void>((resolve) => (open0 = resolve));
    const chmod = ops.chmod.bind(ops);
    const dirtied: string[] = [];
    ops.chmod = async (file, mode) => {
      if (mode === 0o400 && /\/0000000000$/.test(file)) await gate;
      if (mode === 0o400) dirtied.push(path.basename(file));
      return chmod(file, mode);
    };
    const w = await open({ fileOps: ops, handoverMs: 3_600_000, idleHandoverMs: 5 });
    await w.append(taggedBatch('a', 1), 1);
    await waitFor('log 0 retired (its chmod held)', () => w.handingOverBytes() > 0);
    await w.append(taggedBatch('b', 1), 1);
    const second = path.join(dir, logName(1));
    // Log 1 retired too, its SEAL durable: the old code made it dirty next, before log 0.
    for (let sealed = false; !sealed; ) {
      sealed = fs.existsSync(second) && (await readLogFile(second, sizes)).sealed;
      await new Promise((r) => setTimeout(r, 5));
    }
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.equal(modeOf(second), 0o200, 'log 1 is not dirty while log 0 is not');
    open0();
    await w.close();
    assert.deepEqual(dirtied, ['0000000000', '0000000001']);
  });

  it('says what it does in the background (for commit tracing): a hand-over under way, a claim under way, then nothing', async () => {
    const ops = new FaultFileOps();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const fsync = ops.fsync.bind(ops);
    let holding = false;
    ops.fsync = async (fd) => {
      if (holding) await held;
      return fsync(fd);
    };
    const w = await open({ fileOps: ops, handoverMs: 3_600_000, idleHandoverMs: 5 });
    assert.equal(w.backgroundWork(), 0);
    holding = true;
    await w.append(taggedBatch('a', 1), 1);
    await waitFor('log 0 handed over (its fsync held) and the next claimed', () => w.backgroundWork() & 1 ? true : false);
    release();
    await waitFor('nothing in the background', () => w.backgroundWork() === 0);
    const link = ops.link.bind(ops);
    let linkHeld!: () => void;
    const linkGate = new Promise<void>((resolve) => (linkHeld = resolve));
    let linking = false;
    ops.link = async (a, b) => {
      if (linking) await linkGate;
      return link(a, b);
    };
    await w.append(taggedBatch('b', 1), 1);
    // The idle hand-over of log 1 claims the next log at once: its lock link is held.
    linking = true;
    await waitFor('a claim under way', () => (w.backgroundWork() & 2) !== 0);
    linkHeld();
    await waitFor('nothing in the background', () => w.backgroundWork() === 0);
  });

  it('defaults idleHandoverMs to a tenth of handoverMs, and rejects a bad one', async function () {
    this.timeout(30_000);
    // 20 s: handed over by the idle rule (2 s), long before the time rule.
    const w = await open({ handoverMs: 20_000 });
    await w.append(taggedBatch('d', 1), 1);
    await waitFor('hand-over once idle', () => modeOf(path.join(dir, logName(0))) === 0o400, 15_000);
    await w.close();
    for (const idleHandoverMs of [0, -1, Number.NaN, 2 ** 31]) {
      await assert.rejects(open({ idleHandoverMs }), (err) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
    }
  });

  it('accepts a batch of exactly maxBatchBytes (it fits an empty log), rejects one byte more', async () => {
    const w = await open({ logSize: 8192 });
    assert.equal(w.maxBatchBytes, 8192 - HEADER_SIZE - RECORD_HEADER_SIZE - WRITTEN_AT_SIZE - SEAL_RECORD_SIZE);
    // Build a batch of exactly maxBatchBytes: full-size entries (44 bytes), then one or two smaller ones.
    const entryOfSize = (size: number): Buffer => {
      const ksLen = Math.ceil((size - 12) / 2);
      const e = Buffer.alloc(size, 0x61);
      e.writeBigInt64LE(1n, 0);
      e.writeUInt16LE(ksLen, 8);
      e.writeUInt16LE(size - 12 - ksLen, 10);
      return e;
    };
    const full = Math.floor(w.maxBatchBytes / 44);
    const rest = w.maxBatchBytes - full * 44;
    const sizesOf = Array<number>(full).fill(44);
    if (rest >= 14) sizesOf.push(rest);
    else if (rest > 0) sizesOf.splice(-1, 1, 44 + rest - 14, 14);
    const entries = sizesOf.map(entryOfSize);
    const n = entries.length;
    const buf = Buffer.concat(entries);
    assert.equal(buf.length, w.maxBatchBytes, 'test built an exact batch');
    await w.append(taggedBatch('x', 1), 1); // so the big one must rotate
    await w.append(buf, n);
    await assert.rejects(w.append(Buffer.concat([buf, Buffer.alloc(1)]), n), (err) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
    await w.close();
    const logs = await readAll(dir);
    assert.equal(logs.reduce((s, l) => s + l.frames, 0), n + 1);
    for (const l of logs) assert.deepEqual(l.problems, []);
  });

  it('validates its arguments', async () => {
    const w = await open();
    const bad = (p: Promise<unknown>) => assert.rejects(p, (err) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
    await bad(w.append(taggedBatch('a', 2), 3));
    await bad(w.append(taggedBatch('a', 2), 0));
    await bad(w.append('x' as unknown as Buffer, 1));
    await bad(w.append(Buffer.alloc(20), 1));
    await assert.rejects(CommitLogWriter.open({ dir, sizes, logSize: 100 }), (err) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
    await assert.rejects(CommitLogWriter.open({ dir, sizes, handoverMs: 0 }), (err) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
  });

  it('queues overlapping appends: all resolve, in order, one write and one fdatasync each (durability fdatasync), one O_DSYNC write each (dsync)', async () => {
    for (const durability of DURABILITY_MODES) {
      const ops = new FaultFileOps();
      const w = await open({ dir: path.join(dir, durability), fileOps: ops, durability });
      // The first append of a use writes its header with it: still one write.
      await w.append(taggedBatch('first', 1), 1);
      const writes = ops.count('pwritev');
      const syncs = ops.count('fdatasync');
      await Promise.all(Array.from({ length: 20 }, (_, i) => w.append(taggedBatch(`q${i}`, 2), 2)));
      assert.equal(ops.count('pwritev') - writes, 20, durability);
      assert.equal(ops.count('fdatasync') - syncs, durability === 'dsync' ? 0 : 20, durability);
      await w.close();
      const logs: LogContents[] = [];
      for (const i of logsIn(path.join(dir, durability))) logs.push(await readLogFile(path.join(dir, durability, logName(i)), sizes));
      assert.deepEqual(keysInOrder(logs), ['first-0', ...Array.from({ length: 20 }, (_, i) => [`q${i}-0`, `q${i}-1`]).flat()], durability);
    }
  });

  it('hands a log over with one flush of the disk: the SEAL into the page cache (a descriptor without O_DSYNC), chmod 0400, one fsync; the SEAL survives a power cut after it', async () => {
    for (const durability of DURABILITY_MODES) {
      const sub = path.join(dir, durability);
      const ops = new FaultFileOps(undefined, { shadowDir: path.join(dir, `${durability}-shadow`) });
      // Which descriptors write without O_DSYNC, and what each of their writes was.
      const dsyncFds = new Set<number>();
      const open0 = ops.open;
      ops.open = async (file, f, mode) => {
        const fd = await open0(file, f, mode);
        if ((f & fs.constants.O_DSYNC) === fs.constants.O_DSYNC) dsyncFds.add(fd);
        else dsyncFds.delete(fd);
        return fd;
      };
      const writes: Array<{ dsync: boolean; bytes: number; op: number }> = [];
      const pwritev0 = ops.pwritev;
      ops.pwritev = (fd, buffers, position, inline) => {
        writes.push({ dsync: dsyncFds.has(fd), bytes: buffers.reduce((n, b) => n + b.length, 0), op: ops.count('pwritev') });
        return pwritev0(fd, buffers, position, inline);
      };
      const w = await open({ dir: sub, fileOps: ops, durability });
      await w.append(taggedBatch('a', 1), 1);
      await w.append(taggedBatch('b', 1), 1);
      const fsyncs = ops.count('fsync');
      await w.close();
      // The claim's placeholder and the two appends are flushed by their own call; the SEAL is not.
      assert.equal(ops.count('fdatasync'), durability === 'dsync' ? 0 : 2 + 1, `${durability}: appends + the placeholder of the claim at open, none for the SEAL`);
      const seal = writes.at(-1)!;
      assert.equal(seal.bytes, SEAL_RECORD_SIZE, durability);
      assert.equal(seal.dsync, false, `${durability}: the SEAL is written without O_DSYNC`);
      assert.equal(writes.filter((x) => x.dsync).length, durability === 'dsync' ? 3 : 0, durability);
      assert.equal(ops.count('fsync') - fsyncs, 1, `${durability}: one fsync makes SEAL and mode durable`);
      // Only what was flushed survives: the SEAL and the mode are there.
      await ops.cut({ survive: 0 });
      const c = await readLogFile(path.join(sub, logName(0)), sizes);
      assert.equal(c.sealed, true, durability);
      assert.equal(modeOf(path.join(sub, logName(0))), 0o400, durability);
      assert.deepEqual(keysInOrder([c]), ['a-0', 'b-0'], durability);
    }
  });

  it('defaults to dsync: logs are opened with O_DSYNC and no fdatasync follows an append', async () => {
    const ops = new FaultFileOps();
    const flags: number[] = [];
    const open0 = ops.open;
    ops.open = (file, f, mode) => {
      if (/\/\d{10}$/.test(file)) flags.push(f);
      return open0(file, f, mode);
    };
    const w = await open({ fileOps: ops });
    const syncs = ops.count('fdatasync');
    await w.append(taggedBatch('a', 1), 1);
    assert.equal(ops.count('fdatasync'), syncs);
    assert.ok(flags.length > 0 && flags.every((f) => (f & fs.constants.O_DSYNC) === fs.constants.O_DSYNC), 'every log opened O_DSYNC');
    await assert.rejects(CommitLogWriter.open({ dir, sizes, durability: 'sometimes' as never }), (err) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
  });

  it('fail-stop on a log without records releases it clean', async () => {
    const ops = new FaultFileOps();
    const w = await open({ fileOps: ops });
    ops.fail('pwritev', 'ENOSPC');
    await assert.rejects(w.append(taggedBatch('a', 1), 1), (err) => isCountdError(err, 'COUNTD_NO_SPACE'));
    await waitFor('log 0 released', () => !locksIn(dir).includes(0));
    assert.equal(modeOf(path.join(dir, logName(0))), 0o200);
    await w.append(taggedBatch('b', 1), 1);
    await w.close();
    assert.deepEqual(keysInOrder(await readAll(dir)), ['b-0']);
  });

  it('a hand-over whose chmod, fsync or unlock fails is retried until it succeeds: the log ends dirty and unlocked', async () => {
    const ops = new FaultFileOps();
    const w = await open({ fileOps: ops, handoverMs: 20 });
    const failuresBefore = (await metrics.handoverFailures.get()).values[0]?.value ?? 0;
    // The faults are in place before the append: its 20 ms hand-over cannot start without them.
    // None of them touches the append itself (pwritev and fdatasync of log 0).
    ops.fail('chmod', 'EIO', { path: /\/0000000000$/ });
    ops.fail('fsync', 'EIO', { path: /\/0000000000$/ });
    ops.fail('unlink', 'EIO', { path: /lock-0000000000$/ });
    await w.append(taggedBatch('h', 2), 2);
    const first = path.join(dir, logName(0));
    await waitFor('log 0 handed over after retries', () => modeOf(first) === 0o400 && !locksIn(dir).includes(0));
    // The lock is gone from the directory a moment before the hand-over's promise settles (and the gauge falls).
    await w.close();
    assert.deepEqual(ops.injected.map((f) => f.op), ['chmod', 'fsync', 'unlink'], 'each fault hit the hand-over once');
    assert.equal(((await metrics.handoverFailures.get()).values[0]?.value ?? 0) - failuresBefore, 3);
    assert.equal((await metrics.handoversPending.get()).values[0]?.value ?? 0, 0);
    const c = await readLogFile(first, sizes);
    assert.equal(c.sealed, true);
    assert.deepEqual(keysInOrder([c]), ['h-0', 'h-1']);
  });

  it('a pool that cannot grow (ENOSPC while preallocating) fails with COUNTD_NO_SPACE and leaves no temp file', async () => {
    const ops = new FaultFileOps();
    ops.fail('pwritev', 'ENOSPC', { path: /new-.*\.tmp$/ });
    await assert.rejects(CommitLogWriter.open({ dir, sizes, fileOps: ops }), (err) => isCountdError(err, 'COUNTD_NO_SPACE'));
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  for (const durability of DURABILITY_MODES) {
    describe(`an append that fails (durability ${durability})`, () => {
      /** The next append's durability fails: its fdatasync, or its O_DSYNC write once its bytes reached the file. */
      const failAppend = (ops: FaultFileOps): void =>
        durability === 'dsync' ? ops.fail('pwritev', 'EIO', { path: /\/\d{10}$/, landed: true }) : ops.fail('fdatasync', 'EIO');
      /** Run `then` once, when the append's fault is injected. */
      const onAppendFault = (ops: FaultFileOps, then: () => void): void => {
        let done = false;
        ops.onFault = () => {
          if (done) return;
          done = true;
          then();
        };
      };

    it('fail-stop: a failed append rejects the batch, cuts it off, and the next append goes to another log', async () => {
      const ops = new FaultFileOps();
      const w = await open({ fileOps: ops, durability });
      await w.append(taggedBatch('ok', 2), 2);
      failAppend(ops);
      await assert.rejects(w.append(taggedBatch('lost', 3), 3), (err) => isCountdError(err, 'COUNTD_IO_ERROR'));
      // The failed log is handed over (in the background) with its acknowledged batch only.
      const first = path.join(dir, logName(0));
      await waitFor('log 0 handed over', () => modeOf(first) === 0o400 && !locksIn(dir).includes(0));
      const c = await readLogFile(first, sizes);
      assert.deepEqual(c.problems, []);
      assert.equal(c.sealed, true);
      assert.deepEqual(keysInOrder([c]), ['ok-0', 'ok-1'], 'the failed batch reached the page cache but is cut off by the SEAL');
      await w.append(taggedBatch('next', 1), 1);
      assert.deepEqual(locksIn(dir).filter((i) => i === 0), [], 'log 0 is no longer used');
      await w.close();
      const logs = await readAll(dir);
      assert.deepEqual(keysInOrder(logs), ['ok-0', 'ok-1', 'next-0']);
      assert.deepEqual(streamGaps(logs), [], 'rejected frames use no sequence numbers');
    });

    it('a failed append whose SEAL write fails too: the SEAL is retried before the append rejects, and the failed batch is cut off', async () => {
      const ops = new FaultFileOps();
      const w = await open({ fileOps: ops, durability });
      await w.append(taggedBatch('ok', 2), 2);
      failAppend(ops);
      // Once the batch is written and its fdatasync failed: the first SEAL over it fails too.
      onAppendFault(ops, () => ops.fail('pwritev', 'EIO', { path: /0000000000$/ }));
      const err = await w.append(taggedBatch('lost', 3), 3).then(
        () => assert.fail('the append must reject'),
        (e: unknown) => e as { code?: string; outcomeUnknown?: boolean },
      );
      assert.equal(err.code, 'COUNTD_IO_ERROR');
      assert.notEqual(err.outcomeUnknown, true, 'cut off: ERR may be answered');
      const first = path.join(dir, logName(0));
      await waitFor('log 0 handed over', () => modeOf(first) === 0o400 && !locksIn(dir).includes(0));
      const c = await readLogFile(first, sizes);
      assert.equal(c.sealed, true);
      assert.deepEqual(keysInOrder([c]), ['ok-0', 'ok-1'], 'the failed batch reached the file but is cut off');
    });

    it('a failed batch that cannot be cut off (every SEAL write fails) rejects with outcomeUnknown: its frames may be applied, so no ERR', async () => {
      const ops = new FaultFileOps();
      const w = await open({ fileOps: ops, durability });
      await w.append(taggedBatch('ok', 2), 2);
      failAppend(ops);
      onAppendFault(ops, () => ops.fail('pwritev', 'EIO', { path: /0000000000$/, times: Infinity }));
      const err = await w.append(taggedBatch('maybe', 3), 3).then(
        () => assert.fail('the append must reject'),
        (e: unknown) => e as { code?: string; outcomeUnknown?: boolean },
      );
      assert.equal(err.code, 'COUNTD_IO_ERROR');
      assert.equal(err.outcomeUnknown, true);
      ops.clearFaults();
      const first = path.join(dir, logName(0));
      await waitFor('log 0 handed over', () => modeOf(first) === 0o400 && !locksIn(dir).includes(0));
      // What reached the file is applied, once: here the batch did.
      assert.deepEqual(keysInOrder([await readLogFile(first, sizes)]), ['ok-0', 'ok-1', 'maybe-0', 'maybe-1', 'maybe-2']);
      await w.append(taggedBatch('next', 1), 1);
    });

    it('the first append of a use fails and its SEAL fails once: the retried SEAL cuts it off, and the log released clean holds no readable record', async () => {
      const ops = new FaultFileOps();
      const w = await open({ fileOps: ops, durability });
      failAppend(ops);
      onAppendFault(ops, () => ops.fail('pwritev', 'EIO', { path: /0000000000$/ })); // the cut's first header + SEAL
      const err = await w.append(taggedBatch('a', 1), 1).then(
        () => assert.fail('the append must reject'),
        (e: unknown) => e as { code?: string; outcomeUnknown?: boolean },
      );
      assert.equal(err.code, 'COUNTD_IO_ERROR');
      assert.notEqual(err.outcomeUnknown, true);
      const first = path.join(dir, logName(0));
      await waitFor('log 0 released', () => !locksIn(dir).includes(0));
      assert.equal(modeOf(first), 0o200, 'released clean');
      const c = await readLogFile(first, sizes);
      // Stale-lock recovery turns a clean log dirty only if it holds a valid
      // BATCH of its header's generation: the SEAL ends the use before any.
      assert.notEqual(c.header, null);
      assert.equal(c.sealed, true);
      assert.deepEqual(c.records, []);
      assert.deepEqual(c.problems, []);
      await w.append(taggedBatch('b', 1), 1);
      await w.close();
      assert.deepEqual(keysInOrder(await readAll(dir)), ['b-0']);
    });

    it('the first append of a use fails and its SEAL always fails: no ERR (outcome unknown), and the log is handed over dirty, never released clean', async () => {
      const ops = new FaultFileOps();
      const w = await open({ fileOps: ops, durability });
      failAppend(ops);
      onAppendFault(ops, () => ops.fail('pwritev', 'EIO', { path: /0000000000$/, times: Infinity }));
      const err = await w.append(taggedBatch('a', 1), 1).then(
        () => assert.fail('the append must reject'),
        (e: unknown) => e as { code?: string; outcomeUnknown?: boolean },
      );
      assert.equal(err.outcomeUnknown, true);
      const first = path.join(dir, logName(0));
      await waitFor('log 0 handed over', () => !locksIn(dir).includes(0));
      assert.equal(modeOf(first), 0o400, 'dirty: the worker applies what reached it, once');
      assert.deepEqual(keysInOrder([await readLogFile(first, sizes)]), ['a-0'], 'here the batch reached the file');
    });

      it('power loss while the append is made durable loses only the unacknowledged batch, whole or torn', async () => {
        for (const keep of [0, 7, RECORD_HEADER_SIZE + 5]) {
          const sub = path.join(dir, `keep-${keep}`);
          const ops = new FaultFileOps();
          const w = await CommitLogWriter.open({ dir: sub, sizes, logSize: 16384, fileOps: ops, durability });
          await w.append(taggedBatch('a', 2), 2);
          await w.append(taggedBatch('b', 2), 2);
          const op = durability === 'dsync' ? 'pwritev' : 'fdatasync';
          if (durability === 'dsync') ops.stall('pwritev', { path: /\/\d{10}$/, landed: true });
          else ops.stall('fdatasync');
          let settled = false;
          const before = ops.count(op);
          void w.append(taggedBatch('c', 4), 4).finally(() => (settled = true));
          await waitFor('the write to be issued', () => ops.count(op) > before);
          assert.equal(settled, false);
          ops.powerLoss(keep);
          const c = await readLogFile(path.join(sub, logName(0)), sizes);
          assert.deepEqual(c.problems, [], `keep ${keep}`);
          assert.deepEqual(keysInOrder([c]), ['a-0', 'a-1', 'b-0', 'b-1'], `keep ${keep}`);
        }
      });
    });
  }
});
