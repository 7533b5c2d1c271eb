// Child process of the kill -9 windowed-keyspace test (windows-crash.test.ts):
// opens the store at argv[2] and runs the plan of seed argv[3]
// (period-model.ts planSteps) from step argv[4] on. Each step is one apply,
// with the mark `test/step` = its index in the same atomic batch (as the
// worker's applied marker), then the step's expiry; "done <i>" is printed
// once both returned. At the end it waits for the background clear of the
// deleted ids and prints "finished". The parent kills it with SIGKILL.

import { IncrementBatch, Store } from '../../lib/store/store.js';
import { random } from './helpers.js';
import { CRASH_ROUNDS, STEP_MARK, incrementBatch, planSteps, sizes, summedBatch } from './period-model.js';

const [location, seedText, fromText, summedText] = process.argv.slice(2);
const steps = planSteps(CRASH_ROUNDS, random(Number(seedText)));
const store = await Store.open({ location: location!, sizes, rankFenceSize: 4 });
process.stdout.write('opened\n');
for (let i = Number(fromText); i < steps.length; i++) {
  const step = steps[i]!;
  const batch: IncrementBatch = summedText === 'summed' ? summedBatch(store, step.ops) : incrementBatch(store, step.ops);
  const mark = Buffer.alloc(4);
  mark.writeUInt32BE(i);
  await store.apply(batch, [{ name: STEP_MARK, value: mark }]);
  if (step.expire) await store.expirePeriods(step.now);
  process.stdout.write(`done ${i}\n`);
}
await (store as unknown as { state: { collecting: Promise<void> } }).state.collecting;
process.stdout.write('finished\n');
await store.close();
