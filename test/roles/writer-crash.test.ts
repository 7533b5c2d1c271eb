// kill -9 of a writer process: every frame it acknowledged must be in the
// commit logs, as the worker's reader sees them.

import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DataDir, openDataDir } from '../../lib/datadir/meta.js';
import { RawClient, SMALL, frame, readPool, removeDir, tempDataDir } from './writer-helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/writer-child.js', import.meta.url));

function spawnWriter(root: string): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, root, JSON.stringify({ sizes: SMALL })], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, port: (JSON.parse(out.slice(0, nl)) as { port: number }).port });
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`writer child exited early with ${String(code)}`)));
  });
}

describe('countd-write crash (kill -9)', function () {
  let root = '';
  let child: ChildProcess | null = null;
  const clients: RawClient[] = [];

  after(async function () {
    for (const c of clients) c.destroy();
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (root) await removeDir(root);
  });

  it('keeps every acknowledged frame', async function () {
    let dataDir: DataDir;
    ({ root, dataDir } = await tempDataDir());
    const started = await spawnWriter(dataDir.paths.root);
    child = started.child;
    const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
    const n = 4000;
    const killAfter = 3000;
    for (let ci = 0; ci < 4; ci++) clients.push(await RawClient.connect(started.port));
    clients.forEach((c, ci) => {
      const parts: Buffer[] = [];
      for (let i = 0; i < n; i++) parts.push(frame(i + 1, `c${ci}`, `k${i % 5}`));
      void c.sendInPieces(Buffer.concat(parts), 997 + ci * 101).catch(() => {});
    });
    const total = (): number => clients.reduce((s, c) => s + Math.floor(c.replies.length / 3), 0);
    await Promise.race(clients.map((c) => c.until(() => total() >= killAfter, `${killAfter} WINs in all`)));
    child.kill('SIGKILL');
    await exited;
    await Promise.all(clients.map((c) => c.waitClosed()));

    const entries = await readPool(await openDataDir(dataDir.paths.root));
    let acked = 0;
    clients.forEach((c, ci) => {
      assert.match(c.replies, /^(WIN)*$/);
      const k = c.replies.length / 3;
      acked += k;
      const logged = entries.filter((e) => e.keyspace === `c${ci}`).map((e) => Number(e.increment));
      // The log holds a prefix of what the client sent: at least every acknowledged frame, in order.
      assert.ok(logged.length >= k, `client ${ci}: ${k} acknowledged, ${logged.length} in the log`);
      assert.deepEqual(logged, Array.from({ length: logged.length }, (_, i) => i + 1));
    });
    assert.ok(acked >= killAfter);
  });
});
