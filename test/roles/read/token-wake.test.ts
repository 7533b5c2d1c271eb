// Token awaits woken by the apply (issue 16; lib/roles/read/tokens.ts,
// `wakeOnApply`): in the store process the worker tells the token service
// when an apply commits, and a waiting `await` looks at the applied position
// then, and only then. Asserted by results and by the service's own counts
// (scans of the database and pool, apply events), never by timing: a wait
// that polled would scan again without an event.

import assert from 'node:assert/strict';
import { ReadConnection } from '../../../lib/client/read-connection.js';
import type { DataDir } from '../../../lib/datadir/meta.js';
import { ErrorCodes, isCountdError } from '../../../lib/errors.js';
import { REPLY2_SIZE, decodeReply2, encodeHello, encodeOpFrame } from '../../../lib/protocol/write-ops.js';
import { tokenService, type TokenService } from '../../../lib/roles/read/tokens.js';
import { startReader, type ReaderHandle } from '../../../lib/roles/reader.js';
import { startWorker } from '../../../lib/roles/worker.js';
import { startWriter, type WriterHandle } from '../../../lib/roles/writer.js';
import { Store } from '../../../lib/store/store.js';
import { waitUntil } from '../../harness/daemon.js';
import { RawClient, SMALL, removeDir, tempDataDir } from '../writer-helpers.js';

interface Rig {
  root: string;
  dataDir: DataDir;
  store: Store;
  tokens: TokenService;
  worker: Awaited<ReturnType<typeof startWorker>>;
  reader: ReaderHandle;
  writer: WriterHandle;
}

async function rig(): Promise<Rig> {
  const { root, dataDir } = await tempDataDir();
  const store = await Store.open({ location: dataDir.paths.db, sizes: dataDir.sizes });
  const tokens = tokenService(store, dataDir.paths.commitlog, dataDir.sizes, { wakeOnApply: true });
  const worker = await startWorker({ dataDir, store, pollMs: 5, onApplied: () => tokens.changed() });
  const reader = await startReader({ store, sizes: dataDir.sizes, port: 0, tokens });
  // The log is handed over only when the writer closes (60 s otherwise): the test decides when the apply comes.
  const writer = await startWriter({ dataDir, port: 0, handoverMs: 60_000, producers: { readHost: '127.0.0.1', readPort: reader.port } });
  return { root, dataDir, store, tokens, worker, reader, writer };
}

async function stop(r: Rig, writerOpen = true): Promise<void> {
  if (writerOpen) await r.writer.close();
  await r.reader.close();
  await r.worker.close();
  await r.store.close();
  await removeDir(r.root);
}

/** Write `by` to tw/<key> on a version-2 connection; the WIN's token. */
async function writeToken(port: number, key: string, by: number): Promise<bigint> {
  const c = await RawClient.connect(port);
  try {
    c.send(encodeHello(SMALL, 2));
    c.send(encodeOpFrame('increment', by, 'tw', key, SMALL));
    await c.until(() => c.replies.length >= 3 + REPLY2_SIZE, 'the WIN');
    const reply = decodeReply2(Buffer.from(c.replies.slice(3), 'latin1'), 0);
    assert.equal(reply?.status, 0x57);
    return reply!.token;
  } finally {
    c.socket.destroy();
  }
}

describe('token awaits woken by the apply (wakeOnApply)', function () {
  this.timeout(30_000);

  it('an await returns once the apply that holds its token commits, with one scan at the start and one per apply event', async () => {
    const r = await rig();
    let writerOpen = true;
    const conn = new ReadConnection({ host: '127.0.0.1', port: r.reader.port }, r.dataDir.sizes);
    try {
      const token = await writeToken(r.writer.port, 'a', 5);
      let settled = false;
      const awaited = conn.request({ op: 'await', token, timeoutMs: 20_000 }).finally(() => (settled = true));
      await waitUntil('the await to wait', () => r.tokens.stats().waiting === 1);
      const before = r.tokens.stats();
      assert.equal(settled, false, 'not applied yet: the log is still being filled');
      // Hand the log over: the worker applies it and says so.
      await r.writer.close();
      writerOpen = false;
      const res = (await awaited) as { op: 'await'; applied: bigint };
      const after = r.tokens.stats();
      assert.ok(res.applied >= token, `applied position ${res.applied} >= token ${token}`);
      assert.ok(after.changes > before.changes, 'an apply event woke it');
      // Polling would have scanned every 20 ms while the writer closed and the worker applied.
      assert.ok(after.scans - before.scans <= after.changes - before.changes, `scans while waiting (${after.scans - before.scans}) at most the apply events (${after.changes - before.changes})`);
      assert.equal(after.waiting, 0);
      assert.equal(await r.store.get('tw', 'a'), 5n, 'the read after the await sees the write');
    } finally {
      conn.destroy();
      await stop(r, writerOpen);
    }
  });

  it('an await of a token never applied times out with COUNTD_TOKEN_TIMEOUT, after one scan and no other while nothing is applied', async () => {
    const r = await rig();
    const conn = new ReadConnection({ host: '127.0.0.1', port: r.reader.port }, r.dataDir.sizes);
    try {
      const token = await writeToken(r.writer.port, 'b', 1);
      const before = r.tokens.stats();
      await assert.rejects(conn.request({ op: 'await', token: token + 1000n, timeoutMs: 300 }), (err: unknown) => isCountdError(err, ErrorCodes.TOKEN_TIMEOUT));
      const after = r.tokens.stats();
      assert.equal(after.changes, before.changes, 'nothing was applied meanwhile');
      assert.equal(after.scans - before.scans, 1, 'one scan, then the wait slept until its timeout');
      assert.equal(after.waiting, 0, 'the timed-out wait is gone');
    } finally {
      conn.destroy();
      await stop(r);
    }
  });

  it('without apply events (no worker in the process tells the service) a wait polls, and still returns once applied', async () => {
    const { root, dataDir } = await tempDataDir();
    const store = await Store.open({ location: dataDir.paths.db, sizes: dataDir.sizes });
    const tokens = tokenService(store, dataDir.paths.commitlog, dataDir.sizes);
    const worker = await startWorker({ dataDir, store, pollMs: 5 });
    const reader = await startReader({ store, sizes: dataDir.sizes, port: 0, tokens });
    const writer = await startWriter({ dataDir, port: 0, handoverMs: 60_000, producers: { readHost: '127.0.0.1', readPort: reader.port } });
    try {
      const token = await writeToken(writer.port, 'c', 3);
      const waited = tokens.waitApplied(token, 20_000);
      await writer.close();
      const w = await waited;
      assert.ok(w !== null && w >= token);
      assert.equal(tokens.stats().changes, 0, 'no event source');
      assert.ok(tokens.stats().scans >= 2, 'it looked more than once');
      assert.equal(await store.get('tw', 'c'), 3n);
    } finally {
      await reader.close();
      await worker.close();
      await store.close();
      await removeDir(root);
    }
  });
});
