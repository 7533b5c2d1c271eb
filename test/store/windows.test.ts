// Time windows with history (issue 17): seeded random batches of increments,
// sets, deletes, keyspace deletes and creates (with operators sum, max, min,
// set and windows of seconds, hours, weeks and months), each op made durable
// at a time of a test clock that runs forward by seconds to weeks, applied to
// the Store (through IncrementBatch and through the worker's PairSums from
// commit-log OPS payloads) and to a plain in-order model that keeps one map
// per period. After every batch: every kept period of every keyspace read
// through the Store's API (--ago) equals the model's, the stored periods are
// the model's, and the rank index of every period checks exactly. Expiry at
// the test clock's time runs in both. Creates also pick `--ties first`: a
// period then ranks equal counts by the apply at which each key reached its
// count (its keyspace's rule, looked up by the keyspace's name), as
// test/store/ordered-model.ts models it.

import { Operator } from '../../lib/store/combine.js';
import { Store } from '../../lib/store/store.js';
import { removeDir, tempDir, random } from './helpers.js';
import { KEYSPACES, PeriodModel, STEPS, T0, WINDOWS, compare, incrementBatch, randomOps, sizes, summedBatch, type Op } from './period-model.js';

describe('Store: windowed keyspaces against a per-period model (seeded)', function () {
  this.timeout(120000);
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  for (const v of [
    { seed: 31, summed: false, label: 'IncrementBatch' },
    { seed: 32, summed: true, label: 'PairSums from OPS records with their writtenAt' },
    { seed: 33, summed: true, label: 'PairSums, another seed' },
  ]) {
    it(`seed ${v.seed}: ${v.label}; expiry at the test clock; reopened at the end`, async () => {
      const rand = random(v.seed);
      const dir = tempDir();
      dirs.push(dir);
      const keys = Array.from({ length: 40 }, (_, i) => Buffer.from(`k${i}`));
      const model = new PeriodModel();
      let store = await Store.open({ location: dir, sizes, rankFenceSize: 4 });
      let now = T0;
      // Start with a windowed max keyspace (the target) that ranks ties first.
      const first: Op = { kind: 'create', ks: KEYSPACES[0]!, operator: Operator.max, window: WINDOWS[1], ties: 1, at: now };
      model.begin();
      model.apply(first);
      model.end();
      await store.apply(v.summed ? summedBatch(store, [first]) : incrementBatch(store, [first]));
      for (let round = 0; round < 80; round++) {
        now += STEPS[Math.floor(rand() * STEPS.length)]!;
        const ops = randomOps(rand, keys, now);
        model.begin();
        for (const op of ops) model.apply(op);
        model.end();
        await store.apply(v.summed ? summedBatch(store, ops) : incrementBatch(store, ops));
        now = Math.max(now, ...ops.map((o) => o.at));
        if (rand() < 0.5) {
          model.expire(now);
          await store.expirePeriods(now);
        }
        await compare(store, model, now);
      }
      await store.close();
      store = await Store.open({ location: dir, sizes, rankFenceSize: 4 });
      await compare(store, model, now);
      model.expire(now);
      await store.expirePeriods(now);
      await compare(store, model, now);
      await store.close();
    });
  }
});
