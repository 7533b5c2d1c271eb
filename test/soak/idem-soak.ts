// Part of `npm run soak`: the idempotent-producer crash loop of
// test/harness/idem-loop.ts for many cycles (default 100; `--cycles N`,
// `--seed S`, `--producers P`): kill -9 of the daemon, its supervisor, its
// writer child or its store child while producers retry every
// unacknowledged increment; then the figures: every increment acknowledged,
// 0 lost, 0 double-applied. Exit code 1 on any violation.

import path from 'node:path';
import { formatIdemFigures, runIdemLoop } from '../harness/idem-loop.js';
import { describeViolations } from '../harness/ledger.js';
import { seedFromEnv } from '../harness/rng.js';
import { numericFlag } from './flags.js';
import { runSoak } from './run-soak.js';

const flag = (name: string, fallback: number): number => numericFlag('idem-soak', name, fallback);

const cycles = flag('cycles', 100);
const seed = flag('seed', seedFromEnv());
const producers = flag('producers', 4);

runSoak('idem-soak', 'countd-idem-soak-', async (root) => {
  process.stdout.write(`idempotent-producer soak: ${cycles} kill -9 cycles, ${producers} producers retrying every unacknowledged increment, seed ${seed}, data in ${root}\n`);
  const r = await runIdemLoop({ dataDir: path.join(root, 'data'), cycles, seed, producers, progress: (line) => process.stdout.write(line + '\n') });
  process.stdout.write('\n' + formatIdemFigures(r) + '\n');
  if (r.violations.length > 0 || r.failures.length > 0 || r.rankIndexBroken.length > 0 || r.framesAcked !== r.framesSent) {
    process.stdout.write(`\nVIOLATIONS:\n${describeViolations(r.violations, 50)}\n${r.failures.slice(0, 20).join('\n')}\n`);
    return true;
  }
  return false;
});
