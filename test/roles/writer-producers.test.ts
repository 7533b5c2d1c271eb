// Idempotent producers on countd-write (issue 16; docs/write-protocol-extensions.md,
// version 2), in process against a real store and reader: the hello, the
// 24-byte replies and their details, a retry racing its original's commit,
// the producer limit and expiry, and the rebuild of producer state from the
// commit logs and the database after a restart.

import assert from 'node:assert/strict';
import { realFileOps, type FileOps } from '../../lib/commitlog/fileops.js';
import fs from 'node:fs/promises';
import path from 'node:path';
import { OP_INCREMENT, RECORD_OPS, forEachOpAt } from '../../lib/commitlog/format.js';
import { readLogFile } from '../../lib/commitlog/reader.js';
import { scanPool } from '../../lib/roles/write/producer-load.js';
import type { DataDir } from '../../lib/datadir/meta.js';
import { tokenService } from '../../lib/roles/read/tokens.js';
import { startReader, type ReaderHandle } from '../../lib/roles/reader.js';
import { startWorker } from '../../lib/roles/worker.js';
import { startWriter, type WriterHandle } from '../../lib/roles/writer.js';
import { REPLY2_SIZE, decodeReply2, encodeHello, encodeOpFrame } from '../../lib/protocol/write-ops.js';
import { Store } from '../../lib/store/store.js';
import { ReadConnection } from '../../lib/client/read-connection.js';
import { isCountdError } from '../../lib/errors.js';
import { waitUntil } from '../harness/daemon.js';
import { RawClient, SMALL, frame, readPool, removeDir, tempDataDir } from './writer-helpers.js';

interface Rig {
  root: string;
  dataDir: DataDir;
  store: Store;
  reader: ReaderHandle;
  writer: WriterHandle;
}

async function rig(options: { fileOps?: FileOps; maxProducers?: number; expiryMs?: number } = {}, existing?: { root: string; dataDir: DataDir }): Promise<Rig> {
  const { root, dataDir } = existing ?? (await tempDataDir());
  const store = await Store.open({ location: dataDir.paths.db, sizes: dataDir.sizes });
  const reader = await startReader({ store, sizes: dataDir.sizes, port: 0, tokens: tokenService(store, dataDir.paths.commitlog, dataDir.sizes) });
  const writer = await startWriter({
    dataDir,
    port: 0,
    handoverMs: 60_000,
    ...(options.fileOps && { fileOps: options.fileOps }),
    producers: { readHost: '127.0.0.1', readPort: reader.port, ...(options.maxProducers && { maxProducers: options.maxProducers }), ...(options.expiryMs && { expiryMs: options.expiryMs }) },
  });
  return { root, dataDir, store, reader, writer };
}

async function stopRig(r: Rig, remove = true): Promise<void> {
  await r.writer.close();
  await r.reader.close();
  await r.store.close();
  if (remove) await removeDir(r.root);
}

/** A raw client that said hello version 2 (its first 3 reply bytes are "EX\x02"). */
async function client2(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  c.send(encodeHello(SMALL, 2));
  await c.until(() => c.replies.length >= 3, 'the hello reply');
  assert.equal(c.replies.slice(0, 3), 'EX\x02');
  return c;
}

/** The version-2 replies after the hello's. */
function replies2(c: RawClient): Array<{ status: string; token: bigint; detail: bigint }> {
  const buf = Buffer.from(c.replies.slice(3), 'latin1');
  const out = [];
  for (let i = 0; i + REPLY2_SIZE <= buf.length; i += REPLY2_SIZE) {
    const r = decodeReply2(buf, i);
    assert.ok(r !== null, `invalid reply at ${i}`);
    out.push({ status: String.fromCharCode(r.status), token: r.token, detail: r.detail });
  }
  return out;
}

function waitReplies(c: RawClient, n: number): Promise<void> {
  return c.until(() => c.replies.length >= 3 + n * REPLY2_SIZE, `${n} version-2 replies`);
}

const inc = (by: number, key: string, producer: bigint, epoch: number, sequence: bigint): Buffer => encodeOpFrame('increment', by, 'p', key, SMALL, { producer: { producer, epoch, sequence } });

/** The producer entries of the pool: [key, increment, sequence]. */
async function logged(dataDir: DataDir): Promise<Array<[string, bigint]>> {
  return (await readPool(dataDir)).filter((e) => (e.op ?? OP_INCREMENT) === OP_INCREMENT && e.keyspace === 'p').map((e) => [e.key, e.increment]);
}

describe('countd-write: idempotent producers (write protocol version 2)', function () {
  this.timeout(30_000);

  it('a reader without a commit-log pool to look at answers producers and await n = -1 (malformed)', async () => {
    const { root, dataDir } = await tempDataDir();
    const store = await Store.open({ location: dataDir.paths.db, sizes: dataDir.sizes });
    const reader = await startReader({ store, sizes: dataDir.sizes, port: 0 });
    try {
      for (const req of [{ op: 'producers', after: 0n, length: 10 }, { op: 'await', token: 1n, timeoutMs: 10 }] as const) {
        const conn = new ReadConnection({ host: '127.0.0.1', port: reader.port }, dataDir.sizes);
        await assert.rejects(conn.request(req), (err: unknown) => isCountdError(err, 'COUNTD_REJECTED'));
        conn.destroy();
      }
    } finally {
      await reader.close();
      await store.close();
      await removeDir(root);
    }
  });

  it('answers hello 2 with EX 02 and 24-byte replies with tokens; hello 1 and plain frames are unchanged', async () => {
    const r = await rig();
    try {
      const plain = await RawClient.connect(r.writer.port);
      plain.send(frame(1, 'a', 'x'));
      const v1 = await RawClient.connect(r.writer.port);
      v1.send(Buffer.concat([encodeHello(SMALL, 1), encodeOpFrame('increment', 2, 'a', 'x', SMALL)]));
      await plain.replyCount(1);
      await v1.replyCount(2);
      assert.equal(plain.replies, 'WIN');
      assert.equal(v1.replies, 'EX\x01WIN');
      const v2 = await client2(r.writer.port);
      v2.send(Buffer.concat([encodeOpFrame('increment', 3, 'a', 'x', SMALL), encodeOpFrame('increment', 4, 'a', 'y', SMALL)]));
      await waitReplies(v2, 2);
      const [a, b] = replies2(v2);
      assert.equal(a!.status, 'W');
      assert.equal(b!.status, 'W');
      assert.ok(a!.token > 0n && b!.token >= a!.token, `tokens ${a!.token} ${b!.token}`);
      // A frame on version 1 carrying a producer id is malformed; on version 2 a reserved byte is.
      const bad = await client2(r.writer.port);
      const f = encodeOpFrame('increment', 1, 'a', 'x', SMALL);
      f[28] = 1;
      bad.send(f);
      await bad.waitClosed();
      assert.equal(replies2(bad)[0]!.status, 'B');
    } finally {
      await stopRig(r);
    }
  });

  it('answers a repeat duplicate, a gap out of sequence, an older epoch fenced: with their details, writing nothing', async () => {
    const r = await rig();
    try {
      const c = await client2(r.writer.port);
      c.send(Buffer.concat([inc(1, 'k', 9n, 3, 10n), inc(2, 'k', 9n, 3, 11n), inc(1, 'k', 9n, 3, 10n), inc(4, 'k', 9n, 3, 13n), inc(8, 'k', 9n, 2, 12n), inc(16, 'k', 9n, 3, 12n)]));
      await waitReplies(c, 6);
      const got = replies2(c);
      assert.deepEqual(got.map((x) => x.status).join(''), 'WWDSFW');
      assert.equal(got[0]!.detail, 10n); // a producer's WIN: its sequence
      assert.equal(got[2]!.detail, 11n); // duplicate: the last durable sequence
      assert.equal(got[2]!.token, got[1]!.token); // ... and its token
      assert.equal(got[3]!.detail, 12n); // out of sequence: the next expected
      assert.equal(got[4]!.detail, 3n); // fenced: the current epoch
      assert.deepEqual(await logged(r.dataDir), [['k', 1n], ['k', 2n], ['k', 16n]]);
    } finally {
      await stopRig(r);
    }
  });

  it('a retry racing its original commit waits for it: duplicate once durable, written once', async () => {
    let release: (() => void) | undefined;
    let armed = false;
    // The commit's write (O_DSYNC: durable when it returns) is held until released.
    const gated: FileOps = {
      ...realFileOps,
      pwritev: async (fd, buffers, position, inline) => {
        if (armed) {
          armed = false;
          await new Promise<void>((resolve) => (release = resolve));
        }
        return realFileOps.pwritev(fd, buffers, position, inline);
      },
    };
    const r = await rig({ fileOps: gated });
    try {
      armed = true;
      const a = await client2(r.writer.port);
      a.send(inc(5, 'race', 77n, 0, 0n));
      await waitUntil('the original in its commit', () => release !== undefined, 10_000);
      const b = await client2(r.writer.port);
      b.send(inc(5, 'race', 77n, 0, 0n));
      const order: string[] = [];
      void a.until(() => a.replies.length >= 3 + REPLY2_SIZE, 'a').then(() => order.push('a'));
      void b.until(() => b.replies.length >= 3 + REPLY2_SIZE, 'b').then(() => order.push('b'));
      // The retry cannot be answered before the original's commit is decided.
      assert.equal(b.replies.length, 3);
      release!();
      await waitReplies(a, 1);
      await waitReplies(b, 1);
      assert.equal(replies2(a)[0]!.status, 'W');
      assert.equal(replies2(b)[0]!.status, 'D');
      assert.equal(replies2(b)[0]!.token, replies2(a)[0]!.token);
      assert.deepEqual(order, ['a', 'b']);
      assert.deepEqual(await logged(r.dataDir), [['race', 5n]]);
    } finally {
      release?.();
      await stopRig(r);
    }
  });

  it('a retry racing an original whose commit fails (ERR) is then written, once', async () => {
    let fail = false;
    let failed = false;
    let reached: (() => void) | undefined;
    const atSync = new Promise<void>((resolve) => (reached = resolve));
    let go: (() => void) | undefined;
    // The commit's write fails with EIO once (the writer then cuts it off and answers ERR).
    const failing: FileOps = {
      ...realFileOps,
      pwritev: async (fd, buffers, position, inline) => {
        if (fail && !failed) {
          failed = true;
          reached!();
          await new Promise<void>((resolve) => (go = resolve));
          throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
        }
        return realFileOps.pwritev(fd, buffers, position, inline);
      },
    };
    const r = await rig({ fileOps: failing });
    try {
      const a = await client2(r.writer.port);
      fail = true;
      a.send(inc(7, 'f', 78n, 0, 0n));
      await atSync;
      const b = await client2(r.writer.port);
      b.send(inc(7, 'f', 78n, 0, 0n));
      go!();
      await waitReplies(a, 1);
      await waitReplies(b, 1);
      assert.equal(replies2(a)[0]!.status, 'E');
      assert.equal(replies2(b)[0]!.status, 'W');
      assert.deepEqual(await logged(r.dataDir), [['f', 7n]]);
    } finally {
      go?.();
      await stopRig(r);
    }
  });

  it('refuses a producer beyond the limit until an idle one expires', async () => {
    const r = await rig({ maxProducers: 1, expiryMs: 300 });
    try {
      const c = await client2(r.writer.port);
      c.send(Buffer.concat([inc(1, 'a', 1n, 0, 0n), inc(1, 'b', 2n, 0, 0n)]));
      await waitReplies(c, 2);
      const [a, b] = replies2(c);
      assert.equal(a!.status, 'W');
      assert.equal(b!.status, 'L');
      assert.equal(b!.detail, 1n);
      // Producer 1 idles past the expiry: producer 2 is then admitted.
      let sent = 2;
      await waitUntil('producer 2 admitted', async () => {
        c.send(inc(1, 'b', 2n, 0, 0n));
        await waitReplies(c, ++sent);
        return replies2(c)[sent - 1]!.status === 'W';
      }, 10_000, 50);
      // Producer 1 is forgotten: its sequence 0 again is a new write, not a duplicate (the documented bound).
      await waitUntil('producer 1 admitted again', async () => {
        c.send(inc(1, 'a', 1n, 0, 0n));
        await waitReplies(c, ++sent);
        return replies2(c)[sent - 1]!.status === 'W';
      }, 10_000, 50);
    } finally {
      await stopRig(r);
    }
  });

  /** Send `frames` in one write on a version-2 connection to `r`, wait for every reply, stop `r`: the replies' statuses. */
  async function statusesThenStop(r: Rig, frames: Buffer[], remove: boolean): Promise<string> {
    try {
      const c = await client2(r.writer.port);
      c.send(Buffer.concat(frames));
      await waitReplies(c, frames.length);
      return replies2(c).map((x) => x.status).join('');
    } finally {
      await stopRig(r, remove);
    }
  }

  it('writes a connection\'s consecutive producer frames as continuations (no trailer), and a restarted writer rebuilds them exactly', async () => {
    const first = await rig();
    // One write: the four frames enter one batch; producer 5's sequences 0, 1, 2 run on, then another producer.
    assert.equal(await statusesThenStop(first, [inc(1, 'a', 5n, 1, 0n), inc(2, 'b', 5n, 1, 1n), inc(4, 'c', 5n, 1, 2n), inc(8, 'd', 6n, 1, 0n)], false), 'WWWW');
    const kinds: string[] = [];
    for (const name of (await fs.readdir(first.dataDir.paths.commitlog)).filter((n) => /^\d{10}$/.test(n)).sort()) {
      for (const r of (await readLogFile(path.join(first.dataDir.paths.commitlog, name), first.dataDir.sizes)).records) {
        if (r.type === RECORD_OPS) forEachOpAt(r.payload, (_p, _op, _ks, _key, trailer, continued) => kinds.push(trailer < 0 ? 'none' : continued === 0 ? 'trailer' : 'cont'));
      }
    }
    assert.deepEqual(kinds, ['trailer', 'cont', 'cont', 'trailer']);
    const scan = await scanPool(first.dataDir.paths.commitlog, first.dataDir.sizes, 0);
    assert.deepEqual(scan.producers.map((x) => [x.id, x.epoch, x.first, x.last]), [[5n, 1, 0n, 2n], [6n, 1, 0n, 0n]]);
    const second = await rig({}, first);
    assert.equal(await statusesThenStop(second, [inc(2, 'b', 5n, 1, 1n), inc(4, 'c', 5n, 1, 2n), inc(8, 'd', 6n, 1, 0n), inc(16, 'e', 5n, 1, 3n)], true), 'DDDW');
  });

  it('rebuilds producers after a restart from the logs not yet applied, then from the database', async () => {
    const first = await rig();
    let tokens: bigint[] = [];
    try {
      const c = await client2(first.writer.port);
      c.send(Buffer.concat([inc(1, 'r', 5n, 1, 0n), inc(2, 'r', 5n, 1, 1n), inc(4, 'r', 5n, 1, 2n)]));
      await waitReplies(c, 3);
      tokens = replies2(c).map((x) => x.token);
    } finally {
      await stopRig(first, false);
    }
    // Restart: the three frames are in dirty logs, not in the database.
    const second = await rig({}, first);
    try {
      const c = await client2(second.writer.port);
      c.send(Buffer.concat([inc(2, 'r', 5n, 1, 1n), inc(8, 'r', 5n, 1, 3n)]));
      await waitReplies(c, 2);
      const got = replies2(c);
      assert.deepEqual(got.map((x) => x.status).join(''), 'DW');
      assert.ok(got[1]!.token > tokens[2]!, `a restarted writer's tokens follow the earlier ones: ${got[1]!.token} > ${tokens[2]}`);
      // Apply everything: the producer's state moves into the database, the logs are recycled.
      const worker = await startWorker({ dataDir: second.dataDir, store: second.store, staleLockGraceMs: 0, pollMs: 5 });
      await second.writer.close();
      await worker.drained();
      await worker.close();
    } finally {
      await second.reader.close();
      await second.store.close();
    }
    const third = await rig({}, first);
    try {
      const c = await client2(third.writer.port);
      c.send(Buffer.concat([inc(4, 'r', 5n, 1, 2n), inc(16, 'r', 5n, 1, 4n), inc(1, 'r', 5n, 1, 9n), inc(1, 'r', 5n, 0, 5n)]));
      await waitReplies(c, 4);
      assert.deepEqual(replies2(c).map((x) => x.status).join(''), 'DWSF');
      assert.equal(await third.store.get('p', 'r'), 15n);
    } finally {
      await stopRig(third);
    }
  });
});
