import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { FileOps, realFileOps } from '../../lib/commitlog/fileops.js';
import { DURABILITY_MODES, type Durability } from '../../lib/commitlog/writer.js';
import { parsePoolName } from '../../lib/commitlog/filenames.js';
import { DataDir } from '../../lib/datadir/meta.js';
import { FieldSizes, writeFrameSize } from '../../lib/protocol/fields.js';
import { WriterHandle, WriterOptions, startWriter } from '../../lib/roles/writer.js';
import { isCountdError } from '../../lib/errors.js';
import { metrics } from '../../lib/metrics.js';
import { RawClient, SMALL, delay, frame, frames, lockFiles, readPool, removeDir, tempDataDir } from './writer-helpers.js';
import { serverReadAll } from '../harness/tcp-queues.js';

const F = writeFrameSize(SMALL);

/**
 * FileOps whose commit-log appends call `atDurability(fd)` where the append
 * becomes durable: right after the record's O_DSYNC write (durability
 * dsync), or before its fdatasync (durability fdatasync). A throw there
 * fails the append after its bytes reached the file; a wait holds it.
 */
function appendHook(durability: Durability, atDurability: (fd: number) => Promise<void>, base: FileOps = realFileOps): FileOps {
  if (durability === 'fdatasync') {
    return {
      ...base,
      fdatasync: async (fd) => {
        await atDurability(fd);
        return base.fdatasync(fd);
      },
    };
  }
  return {
    ...base,
    pwritev: async (fd, buffers, position) => {
      const n = await base.pwritev(fd, buffers, position);
      // A record is a record header + entries (after the log header, first
      // in a use); SEALs, headers and preallocation are one buffer.
      if (buffers.length >= 2) await atDurability(fd);
      return n;
    },
  };
}

const injectedEio = (): Error => Object.assign(new Error('injected I/O error'), { code: 'EIO' });

/** Current value of an unlabelled counter or gauge. */
async function metric(m: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await m.get()).values[0]?.value ?? 0;
}

describe('countd-write server', function () {
  let root: string;
  let dataDir: DataDir;
  let handle: WriterHandle | null = null;
  const clients: RawClient[] = [];

  async function start(options: Partial<WriterOptions> = {}, sizes: FieldSizes = SMALL): Promise<WriterHandle> {
    ({ root, dataDir } = await tempDataDir(sizes));
    handle = await startWriter({ dataDir, port: 0, ...options });
    return handle;
  }

  async function connect(): Promise<RawClient> {
    const c = await RawClient.connect(handle!.port);
    clients.push(c);
    return c;
  }

  /** Close the server, then read back the pool. */
  async function stopAndRead(): Promise<Awaited<ReturnType<typeof readPool>>> {
    await handle!.close();
    return readPool(dataDir);
  }

  afterEach(async function () {
    for (const c of clients.splice(0)) c.destroy();
    if (handle) await handle.close().catch(() => {});
    handle = null;
    if (root) await removeDir(root);
  });

  describe('pipelining', function () {
    it('answers many frames sent in one write with WINs in order, and logs them in order', async function () {
      await start();
      const c = await connect();
      c.send(frames(500));
      await c.replyCount(500);
      assert.deepEqual(new Set(c.codes()), new Set(['WIN']));
      const entries = await stopAndRead();
      assert.deepEqual(
        entries.map((e) => e.increment),
        Array.from({ length: 500 }, (_, i) => BigInt(i + 1)),
      );
      assert.equal(entries[3]!.keyspace, 'ks');
      assert.equal(entries[3]!.key, 'k3');
    });

    for (const piece of [1, 5, F - 1, F + 1, 3 * F + 7]) {
      it(`reassembles frames split across writes of ${piece} bytes`, async function () {
        await start();
        const c = await connect();
        await c.sendInPieces(frames(40), piece);
        await c.replyCount(40);
        assert.equal(c.replies, 'WIN'.repeat(40));
        const entries = await stopAndRead();
        assert.deepEqual(
          entries.map((e) => e.increment),
          Array.from({ length: 40 }, (_, i) => BigInt(i + 1)),
        );
      });
    }

    /**
     * `clients` connections each send frames 1..300 to their own keyspace c<i>
     * (through `send`); every frame must be answered WIN, in order, and be in
     * the log in order.
     */
    const inOrderPerConnection = async (clients: number, key: string, send: (c: RawClient, bytes: Buffer, ci: number) => void): Promise<void> => {
      const cs = await Promise.all(Array.from({ length: clients }, () => connect()));
      const n = 300;
      cs.forEach((c, ci) => {
        const parts: Buffer[] = [];
        for (let i = 0; i < n; i++) parts.push(frame(i + 1, `c${ci}`, key));
        send(c, Buffer.concat(parts), ci);
      });
      await Promise.all(cs.map((c) => c.replyCount(n)));
      for (const c of cs) assert.equal(c.replies, 'WIN'.repeat(n));
      const entries = await stopAndRead();
      for (let ci = 0; ci < cs.length; ci++) {
        assert.deepEqual(
          entries.filter((e) => e.keyspace === `c${ci}`).map((e) => e.increment),
          Array.from({ length: n }, (_, i) => BigInt(i + 1)),
        );
      }
    };

    it('keeps each connection in order when many clients write at once', async function () {
      await start();
      await inOrderPerConnection(8, 'k', (c, bytes, ci) => void c.sendInPieces(bytes, 1000 + ci * 37));
    });

    it('bounds memory: batches larger than a log batch and a small pending limit still answer everything in order', async function () {
      // A tiny log makes a batch hold 30 entries of 17 bytes, fewer than the
      // 3 × 16 frames the connections may have pending: batches fill up.
      await start({ logSize: 4096 + 32 + 48 + 30 * 17, maxPendingFrames: 16 });
      await inOrderPerConnection(3, 'key', (c, bytes) => c.send(bytes));
    });

    it('answers a client that half-closes after sending, then ends the connection', async function () {
      await start();
      const c = await connect();
      c.socket.end(frames(25));
      await c.waitClosed();
      assert.equal(c.replies, 'WIN'.repeat(25));
      assert.equal((await stopAndRead()).length, 25);
    });
  });

  describe('increment 0', function () {
    it('is acknowledged in order and changes nothing', async function () {
      await start();
      const c = await connect();
      c.send(Buffer.concat([frame(0, 'ks', 'zero'), frame(5, 'ks', 'a'), frame(0, 'ks', 'zero'), frame(0, 'ks', 'z2'), frame(-3, 'ks', 'b'), frame(0, 'ks', 'z3')]));
      await c.replyCount(6);
      assert.equal(c.replies, 'WIN'.repeat(6));
      const entries = await stopAndRead();
      assert.deepEqual(
        entries.map((e) => [e.increment, e.key]),
        [
          [5n, 'a'],
          [-3n, 'b'],
        ],
      );
    });
  });

  describe('malformed frames', function () {
    const valid = (): Buffer => frame(1, 'ks', 'k');
    const raw = (ks: number[], key: number[]): Buffer => {
      const buf = Buffer.alloc(F);
      buf.writeBigInt64LE(9n, 0);
      Buffer.from(ks).copy(buf, 8);
      Buffer.from(key).copy(buf, 8 + SMALL.keyspaceSize);
      return buf;
    };
    const a = 0x61;
    const cases: Array<[string, Buffer]> = [
      ['empty keyspace', raw([], [a])],
      ['empty key', raw([a], [])],
      ['all zero', Buffer.alloc(F)],
      ['keyspace with a byte after its NUL', raw([a, 0, a], [a])],
      ['keyspace with a byte after its NUL in the last position', raw([a, 0, 0, 0, 0, 0, 0, a], [a])],
      ['key with a byte after its NUL', raw([a], [a, 0, 0, a])],
      ['keyspace starting with NUL then bytes', raw([0, a], [a])],
    ];
    for (const [name, bad] of cases) {
      it(`${name}: WIN for the frames before it, then BAD and close; other clients unaffected`, async function () {
        await start();
        const rejected = await metric(metrics.framesRejected);
        const other = await connect();
        const c = await connect();
        const before = Buffer.concat([frame(1, 'bad', 'a'), frame(2, 'bad', 'b'), frame(3, 'bad', 'c')]);
        const after = Buffer.concat([valid(), valid()]);
        c.send(Buffer.concat([before, bad, after]));
        other.send(frames(10));
        await c.waitClosed();
        assert.equal(c.replies, 'WINWINWINBAD');
        await other.replyCount(10);
        other.send(frames(5, SMALL, 10));
        await other.replyCount(15);
        assert.equal(other.replies, 'WIN'.repeat(15));
        assert.equal(other.closed, false);
        const entries = await stopAndRead();
        assert.deepEqual(
          entries.filter((e) => e.keyspace === 'bad').map((e) => e.increment),
          [1n, 2n, 3n],
        );
        assert.equal(entries.filter((e) => e.keyspace === 'ks').length, 15);
        assert.equal((await metric(metrics.framesRejected)) - rejected, 1);
      });
    }

    it('rejects a bad frame that arrives split across writes', async function () {
      await start();
      const c = await connect();
      const bytes = Buffer.concat([frames(2), Buffer.alloc(F), frames(2)]);
      void c.sendInPieces(bytes, 7);
      await c.waitClosed();
      assert.equal(c.replies, 'WINWINBAD');
      assert.equal((await stopAndRead()).length, 2);
    });
  });

  describe('disconnects', function () {
    it('never applies or answers a partial frame left at disconnect', async function () {
      await start();
      const c = await connect();
      c.send(Buffer.concat([frames(3), frame(77, 'ks', 'partial').subarray(0, F - 1)]));
      await c.replyCount(3);
      await serverReadAll(c.socket); // the partial frame too
      c.destroy();
      await c.waitClosed();
      const entries = await stopAndRead();
      assert.deepEqual(
        entries.map((e) => e.increment),
        [1n, 2n, 3n],
      );
    });

    it('drops a partial frame held at server close', async function () {
      await start();
      const c = await connect();
      c.send(Buffer.concat([frames(2), frame(77, 'ks', 'partial').subarray(0, 10)]));
      await c.replyCount(2);
      await handle!.close();
      await c.waitClosed();
      assert.equal(c.replies, 'WINWIN');
      assert.deepEqual(
        (await readPool(dataDir)).map((e) => e.increment),
        [1n, 2n],
      );
    });
  });

  describe('failures', function () {
    for (const durability of DURABILITY_MODES) {
      it(`answers ERR for every frame of a failed group commit, closes that connection, and serves new ones (durability ${durability})`, async function () {
        let failNext = 0;
        const fileOps = appendHook(durability, async () => {
          if (failNext > 0) {
            failNext--;
            throw injectedEio();
          }
        });
        await start({ fileOps, durability });
        const failedBefore = await metric(metrics.framesFailed);
        const ackedBefore = await metric(metrics.framesAcked);
        const bystander = await connect();
        const c = await connect();
        c.send(frames(4));
        await c.replyCount(4);
        failNext = 1;
        const failing: Buffer[] = [];
        for (let i = 0; i < 6; i++) failing.push(frame(100 + i, 'fail', 'x'));
        c.send(Buffer.concat(failing));
        await c.waitClosed();
        assert.equal(c.replies, 'WIN'.repeat(4) + 'ERR'.repeat(6));
        assert.equal(bystander.closed, false, 'a connection without frames in the failed batch stays open');

        const fresh = await connect();
        fresh.send(frames(3, SMALL, 200));
        bystander.send(frames(2, SMALL, 300));
        await fresh.replyCount(3);
        await bystander.replyCount(2);
        assert.equal(fresh.replies, 'WIN'.repeat(3));
        assert.equal(bystander.replies, 'WIN'.repeat(2));
        assert.equal((await metric(metrics.framesFailed)) - failedBefore, 6);
        assert.equal((await metric(metrics.framesAcked)) - ackedBefore, 9);

        const entries = await stopAndRead();
        const incs = entries.map((e) => e.increment);
        assert.deepEqual(incs.slice(0, 4), [1n, 2n, 3n, 4n], 'frames acknowledged before the failure stand');
        assert.equal(entries.filter((e) => e.keyspace === 'fail').length, 0, 'nothing of the failed frames is applied');
        assert.deepEqual(incs.slice(4).sort(), [201n, 202n, 203n, 301n, 302n].sort());
      });

      it(`a failed group commit that cannot be cut off from its log gets no ERR: the connection closes unanswered, and what reached the log is applied once (durability ${durability})`, async function () {
        let failSync = false;
        let brokenFd = -1;
        const breaking: FileOps = {
          ...realFileOps,
          pwritev: async (fd, buffers, position) => {
            // After the failed append, every write to that log fails: the SEAL cannot cut the batch off.
            if (fd === brokenFd) throw injectedEio();
            return realFileOps.pwritev(fd, buffers, position);
          },
          close: async (fd) => {
            if (fd === brokenFd) brokenFd = -1;
            return realFileOps.close(fd);
          },
        };
        const fileOps = appendHook(durability, async (fd) => {
          if (failSync) {
            failSync = false;
            brokenFd = fd;
            throw injectedEio();
          }
        }, breaking);
        await start({ fileOps, durability });
        const unansweredBefore = await metric(metrics.framesUnanswered);
        const c = await connect();
        c.send(frames(4));
        await c.replyCount(4);
        failSync = true;
        const maybe: Buffer[] = [];
        for (let i = 0; i < 6; i++) maybe.push(frame(100 + i, 'maybe', 'x'));
        c.send(Buffer.concat(maybe));
        await c.waitClosed();
        assert.equal(c.replies, 'WIN'.repeat(4), 'no ERR: the frames may be applied');
        assert.equal((await metric(metrics.framesUnanswered)) - unansweredBefore, 6);
        const fresh = await connect();
        fresh.send(frames(2, SMALL, 200));
        await fresh.replyCount(2);
        const entries = await stopAndRead();
        assert.equal(entries.filter((e) => e.keyspace === 'maybe').length, 6, 'the batch reached the log before its append failed');
      });

      it(`also fails the later frames of a failed connection that wait in the next batch, and keeps the others (durability ${durability})`, async function () {
        let holdAndFail = false;
        let release: (() => void) | null = null;
        const fileOps = appendHook(durability, async () => {
          if (holdAndFail) {
            holdAndFail = false;
            await new Promise<void>((resolve) => (release = resolve));
            throw injectedEio();
          }
        });
        await start({ fileOps, durability });
        const a = await connect();
        const b = await connect();
        a.send(frames(4));
        await a.replyCount(4);
        holdAndFail = true;
        a.send(Buffer.concat([frame(11, 'a1', 'x'), frame(12, 'a1', 'x'), frame(0, 'a1', 'zero')]));
        while (release === null) await delay(5);
        // While that group commit hangs, more frames from a and from b wait in the next batch.
        a.send(Buffer.concat([frame(21, 'a2', 'x'), frame(0, 'a2', 'zero'), frame(22, 'a2', 'x')]));
        b.send(Buffer.concat([frame(31, 'b', 'x'), frame(32, 'b', 'x')]));
        // The server has read them (they wait for the next batch) before the hung commit fails.
        await serverReadAll(a.socket);
        await serverReadAll(b.socket);
        (release as () => void)();
        await a.waitClosed();
        await b.replyCount(2);
        assert.match(a.replies, /^(WIN){4}(ERR){3,6}$/);
        assert.equal(b.replies, 'WINWIN');
        b.send(frame(33, 'b', 'x'));
        await b.replyCount(3);
        const entries = await stopAndRead();
        assert.deepEqual(
          entries.map((e) => e.increment),
          [1n, 2n, 3n, 4n, 31n, 32n, 33n],
        );
      });
    }

    it('refuses to start on a port that is in use', async function () {
      const first = await start();
      const second = await tempDataDir();
      try {
        await assert.rejects(startWriter({ dataDir: second.dataDir, port: first.port }), (err: unknown) => isCountdError(err) && /address in use/.test(err.message));
        assert.deepEqual(await lockFiles(second.dataDir), [], 'the failed start released its log');
      } finally {
        await removeDir(second.root);
      }
    });

    it('validates its options', async function () {
      ({ root, dataDir } = await tempDataDir());
      for (const bad of [{ port: -1 }, { port: 70000 }, { maxConnections: 0 }, { idleTimeoutMs: -5 }, { maxPendingFrames: 1.5 }, { listen: '' }]) {
        await assert.rejects(startWriter({ dataDir, ...bad } as WriterOptions), (err: unknown) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
      }
    });
  });

  describe('connection limits', function () {
    it('at maxConnections, a new connection closes the longest-idle one (no frame in flight; a partial frame counts as idle), so idle clients never lock writers out', async function () {
      await start({ maxConnections: 3 });
      const a = await connect();
      const b = await connect();
      const p = await connect();
      a.send(frames(1));
      b.send(frames(1));
      await a.replyCount(1);
      await b.replyCount(1);
      p.send(frame(1, 'ks', 'k').subarray(0, 5)); // half a frame: never acknowledged, may go
      const c = await connect(); // a, idle the longest, makes room
      c.send(frames(2));
      await c.replyCount(2);
      await a.waitClosed();
      assert.equal(c.replies, 'WINWIN');
      const d = await connect(); // then b
      d.send(frames(1));
      await d.replyCount(1);
      await b.waitClosed();
      const e = await connect(); // then p, with its half frame
      e.send(frames(1));
      await e.replyCount(1);
      await p.waitClosed();
      assert.equal(p.replies, '');
      // Every acknowledged frame is in the log; the half frame is not.
      assert.equal((await stopAndRead()).length, 6);
    });

    it('closes an idle connection, with or without a partial frame, after idleTimeoutMs', async function () {
      await start({ idleTimeoutMs: 100 });
      const silent = await connect();
      const partial = await connect();
      partial.send(frame(1, 'ks', 'k').subarray(0, 5));
      const busy = await connect();
      busy.send(frames(2));
      await Promise.all([silent.waitClosed(), partial.waitClosed(), busy.waitClosed()]);
      assert.equal(silent.replies, '');
      assert.equal(partial.replies, '');
      assert.equal(busy.replies, 'WINWIN', 'frames are answered before the idle close');
      assert.equal((await stopAndRead()).length, 2);
    });
  });

  describe('close()', function () {
    it('answers every frame in flight, closes connections, hands the log over and releases every lock', async function () {
      let releaseSync: (() => void) | null = null;
      let appending: (() => void) | null = null;
      const appendStarted = new Promise<void>((resolve) => (appending = resolve));
      const fileOps: FileOps = {
        ...realFileOps,
        pwritev: async (fd, buffers, position) => {
          // The first BATCH record (log header with record header + entries); SEALs are one buffer.
          if (buffers.length >= 2 && appending !== null) {
            appending();
            appending = null;
            // Hold the first group commit's (O_DSYNC) write until the test lets it go.
            await new Promise<void>((resolve) => (releaseSync = resolve));
          }
          return realFileOps.pwritev(fd, buffers, position);
        },
      };
      await start({ fileOps });
      const c = await connect();
      const quiet = await connect();
      c.send(frames(10));
      await appendStarted;
      c.send(frames(5, SMALL, 10));
      await serverReadAll(c.socket);
      const closing = handle!.close();
      while (releaseSync === null) await delay(5);
      (releaseSync as () => void)();
      await closing;
      await Promise.all([c.waitClosed(), quiet.waitClosed()]);
      assert.match(c.replies, /^(WIN)+$/);
      const acked = c.replies.length / 3;
      assert.ok(acked >= 10, `the frames of the group commit in flight are answered (${acked})`);
      const entries = await readPool(dataDir);
      assert.equal(entries.length, acked, 'every answered frame is in the log, and nothing else');
      assert.equal(quiet.replies, '');

      const names = await fsp.readdir(dataDir.paths.commitlog);
      assert.deepEqual(names.filter((n) => parsePoolName(n).kind === 'lock'), [], 'no lock left');
      let dirty = 0;
      for (const n of names.filter((n) => parsePoolName(n).kind === 'log')) {
        const mode = (await fsp.stat(path.join(dataDir.paths.commitlog, n))).mode & 0o777;
        assert.ok(mode === 0o400 || mode === 0o200, `log ${n} has mode ${mode.toString(8)}`);
        if (mode === 0o400) dirty++;
      }
      assert.equal(dirty, 1, 'the log holding the frames is handed over dirty (0400)');
    });

    it('closes at once with no connections, and twice is harmless', async function () {
      await start();
      await Promise.all([handle!.close(), handle!.close()]);
      await handle!.close();
      assert.deepEqual(await lockFiles(dataDir), []);
    });
  });
});
