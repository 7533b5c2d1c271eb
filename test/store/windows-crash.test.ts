// Windowed and `max` keyspaces in the seeded model test, with crashes
// (issue 17): a child process runs the plan of windows.test.ts (a windowed
// `max` keyspace ranking ties first, then random increments, sets, deletes,
// keyspace deletes and creates of every operator and window, expiry at the
// test clock) and is killed with SIGKILL at random moments: during applies,
// expiry and the background clear of deleted keyspaces and expired periods.
// After each kill the store is reopened: its step mark (written in the same
// atomic batch as the step's apply) says how many steps committed, never
// fewer than the child reported, at most the one in flight; every kept period
// of every keyspace then equals the plain model after exactly that many steps
// (nothing lost, nothing applied twice), with exact rank indexes. The next
// child resumes at the next step. At the end no record of a dead id is left.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { TAG_COUNT, TAG_DEAD, TAG_FENCE, TAG_INDEX, readId } from '../../lib/store/encoding.js';
import { Store } from '../../lib/store/store.js';
import { random, removeDir, tempDir } from './helpers.js';
import { CRASH_ROUNDS, STEP_MARK, compare, modelAfter, planSteps, sizes } from './period-model.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'windows-child.js');

/** Run the child from step `from`; SIGKILL it `killMs` after it opened the store. Returns the last step it reported done (or from - 1) and whether it finished. */
function runChild(location: string, seed: number, from: number, summed: boolean, killMs: number): Promise<{ reported: number; finished: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, location, String(seed), String(from), summed ? 'summed' : 'batch'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const opened = !out.includes('opened\n');
      out += chunk.toString();
      if (opened && out.includes('opened\n')) setTimeout(() => child.kill('SIGKILL'), killMs);
    });
    child.on('error', reject);
    child.on('exit', () => {
      const done = [...out.matchAll(/^done (\d+)$/gm)].map((m) => Number(m[1]));
      resolve({ reported: done.length === 0 ? from - 1 : Math.max(...done), finished: out.includes('finished\n') });
    });
  });
}

/** The ids that own a C, I or F record and the ids recorded dead (X), read raw. */
async function idsOnDisk(location: string): Promise<{ owners: Set<number>; dead: number }> {
  const db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  try {
    const owners = new Set<number>();
    for (const tag of [TAG_COUNT, TAG_INDEX, TAG_FENCE]) {
      for await (const key of db.keys({ gte: Buffer.from([tag]), lt: Buffer.from([tag + 1]) })) owners.add(readId(key, 1));
    }
    const dead = (await db.keys({ gte: Buffer.from([TAG_DEAD]), lt: Buffer.from([TAG_DEAD + 1]) }).all()).length;
    return { owners, dead };
  } finally {
    await db.close();
  }
}

describe('Store: windowed and max keyspaces against the per-period model, killed -9 (real child processes)', function () {
  this.timeout(180_000);
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  for (const v of [
    { seed: 31, summed: false, label: 'IncrementBatch' },
    { seed: 32, summed: true, label: 'PairSums from OPS records' },
  ]) {
    it(`seed ${v.seed} (${v.label}): after every kill the store equals the model after exactly the steps its mark says`, async () => {
      const steps = planSteps(CRASH_ROUNDS, random(v.seed));
      const rand = random(v.seed * 7919);
      const location = tempDir();
      dirs.push(location);
      let next = 0;
      let kills = 0;
      for (let run = 0; next < steps.length; run++) {
        assert.ok(run < 60, `no progress after ${run} runs (at step ${next})`);
        const { reported, finished } = await runChild(location, v.seed, next, v.summed, 1 + Math.floor(rand() * 80));
        if (!finished) kills++;
        const store = await Store.open({ location, sizes, rankFenceSize: 4 });
        try {
          const mark = await store.getMark(STEP_MARK);
          const applied = mark === undefined ? -1 : mark.readUInt32BE(0);
          assert.ok(applied >= reported, `run ${run}: step ${reported} was reported done, the store holds up to ${applied}`);
          assert.ok(applied <= reported + 1, `run ${run}: the store holds step ${applied}, past the one in flight (${reported + 1})`);
          if (applied >= 0) {
            // A kill between a step's apply and its expiry: expiry is a function of the clock, so it runs again (the worker's round does).
            if (steps[applied]!.expire) await store.expirePeriods(steps[applied]!.now);
            await compare(store, modelAfter(steps, applied + 1), steps[applied]!.now);
          }
          next = applied + 1;
        } finally {
          await store.close();
        }
      }
      // Kills landed before the end of the run.
      assert.ok(kills >= 3, `only ${kills} kills landed before the end`);
      // Every dead id's records are cleared once a store finishes its clear.
      const store = await Store.open({ location, sizes, rankFenceSize: 4 });
      const live = new Set([...(store as unknown as { state: { dir: Map<string, { id: number }> } }).state.dir.values()].map((k) => k.id));
      await (store as unknown as { state: { collecting: Promise<void> } }).state.collecting;
      await store.close();
      const { owners, dead } = await idsOnDisk(location);
      assert.equal(dead, 0);
      assert.deepEqual([...owners].filter((id) => !live.has(id)), []);
    });
  }
});
