// A keyspace delete survives kill -9 at any point, exactly once (issue 17):
// a child process deletes a 40,000-key keyspace and clears its records in
// the background, paced (lib/store/collect.ts); it is killed with SIGKILL at
// random moments, before, during or after the delete's apply and during the
// clear. Reopened, the store shows the keyspace either whole (the delete
// never committed) or gone, never half; the other keyspace is intact; the
// clear resumes from the `X` record until no record of the dead id is left;
// and a keyspace of the same name starts empty, under a new id.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { DEFAULT_FIELD_SIZES } from '../../lib/protocol/fields.js';
import { TAG_COUNT, TAG_DEAD, TAG_FENCE, TAG_INDEX, idPrefix, prefixEnd } from '../../lib/store/encoding.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { random, removeDir, tempDir } from './helpers.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'delete-child.js');
const KEYS = 40_000;
const VICTIM_ID = 1;

/** Records of the victim's id (C, I, F) and whether its X record is there, read raw. */
async function leftovers(location: string): Promise<{ records: number; dead: boolean }> {
  const db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  try {
    let records = 0;
    for (const tag of [TAG_COUNT, TAG_INDEX, TAG_FENCE]) {
      const prefix = idPrefix(tag, VICTIM_ID);
      for await (const _ of db.keys({ gte: prefix, lt: prefixEnd(prefix) })) records++;
    }
    return { records, dead: (await db.get(idPrefix(TAG_DEAD, VICTIM_ID))) !== undefined };
  } finally {
    await db.close();
  }
}

async function build(location: string): Promise<void> {
  const store = await Store.open({ location, sizes: DEFAULT_FIELD_SIZES });
  const keys = Array.from({ length: KEYS }, (_, i) => Buffer.from(`v${i}`));
  await store.createKeyspace('victim', keys, keys.map((_, i) => BigInt(i % 977)));
  const board = new IncrementBatch();
  for (let i = 0; i < 300; i++) board.add(Buffer.from('board'), Buffer.from(`b${i}`), BigInt(1 + (i % 17)));
  await store.apply(board);
  await store.close();
}

/** Run the child and SIGKILL it `delayMs` after it printed `after`; what it printed by then. */
function runAndKill(location: string, after: 'opened' | 'deleted', delayMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, location], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(`${after}\n`) && !child.killed) setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.on('error', reject);
    child.on('exit', () => resolve(out));
  });
}

describe('keyspace delete under kill -9 (real child processes)', function () {
  this.timeout(120_000);
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  it('the keyspace is whole or gone, never half; the clear resumes; the name starts anew', async () => {
    const rand = random(23);
    let midClear = 0;
    for (let i = 0; i < 6; i++) {
      const location = tempDir();
      dirs.push(location);
      await build(location);
      // Killed around the delete's apply (after the open), or during the clear (after the delete).
      const after = i % 3 === 0 ? 'opened' : 'deleted';
      const printed = await runAndKill(location, after, Math.floor(rand() * (after === 'opened' ? 60 : 400)));
      const left = await leftovers(location);
      if (left.dead && left.records > 0 && left.records < 3 * KEYS) midClear++;

      const store = await Store.open({ location, sizes: DEFAULT_FIELD_SIZES });
      const names = (await store.keyspaces()).map((k) => `${k.name}:${k.size}`);
      if (printed.includes('deleted\n')) assert.deepEqual(names, ['board:300'], `run ${i}`);
      else assert.ok(['board:300', `board:300,victim:${KEYS}`].includes(names.join(',')), `run ${i}: ${names.join(',')}`);
      if (names.length === 2) {
        // The delete never committed: every key and count is there.
        const page = await store.page('victim', 0, KEYS);
        assert.equal(page.length, KEYS);
        assert.equal(await store.get('victim', 'v1234'), BigInt(1234 % 977));
        assert.equal(await store.checkRankIndex('victim'), true);
      }
      assert.equal(await store.checkRankIndex('board'), true);
      assert.equal((await store.page('board', 0, 1000)).length, 300);
      // The clear resumes at open from the X record and finishes.
      await (store as unknown as { state: { collecting: Promise<void> } }).state.collecting;
      // The name starts anew: nothing of the old keyspace comes back.
      if (names.length === 1) {
        const batch = new IncrementBatch();
        batch.add(Buffer.from('victim'), Buffer.from('v1'), 1n);
        await store.apply(batch);
        assert.deepEqual((await store.page('victim', 0, 10)).map((e) => [e.key.toString(), e.count]), [['v1', 1n]]);
      }
      await store.close();
      if (names.length === 1) assert.deepEqual(await leftovers(location), { records: 0, dead: false }, `run ${i}`);
    }
    // The kills did land in the middle of a clear (records left, the X record there).
    assert.ok(midClear >= 1, `no kill landed mid-clear (${midClear})`);
  });
});
