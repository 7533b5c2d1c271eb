// `npm run soak`: the crash loop of test/harness/crash-loop.ts for many
// cycles (default 1,000; `--cycles N`, `--seed S`, `--writers W`), then the
// figures: cycles, acknowledged increments, lost (must be 0), double-applied
// (must be 0). Then the stale-lock figures: how long a lock of a killed
// holder takes to be reclaimed (measured, not asserted). Exit code 1 on any
// violation.

import path from 'node:path';
import { formatFigures, runCrashLoop } from '../harness/crash-loop.js';
import { describeViolations } from '../harness/ledger.js';
import { seedFromEnv } from '../harness/rng.js';
import { numericFlag } from './flags.js';
import { runSoak } from './run-soak.js';
import { measureReclaim } from '../harness/stale-locks.js';

const flag = (name: string, fallback: number): number => numericFlag('crash-soak', name, fallback);

const cycles = flag('cycles', 1000);
const seed = flag('seed', seedFromEnv());
const writers = flag('writers', 4);

runSoak('crash-soak', 'countd-soak-', async (root) => {
  let failed = false;
  process.stdout.write(`crash soak: ${cycles} cycles, ${writers} writers, seed ${seed}, data in ${root}\n`);
  const result = await runCrashLoop({
    dataDir: path.join(root, 'data'),
    cycles,
    seed,
    writers,
    progress: (line) => process.stdout.write(line + '\n'),
  });
  process.stdout.write('\n' + formatFigures(result) + '\n');
  if (result.violations.length > 0 || result.protocolErrors.length > 0 || result.rankIndexBroken.length > 0) {
    failed = true;
    process.stdout.write(`\nVIOLATIONS:\n${describeViolations(result.violations, 50)}\n${result.protocolErrors.slice(0, 20).join('\n')}\n`);
  }
  const locks = await measureReclaim(path.join(root, 'locks'), { rounds: Math.max(5, Math.min(50, Math.floor(cycles / 20))), contenders: 4, seed });
  process.stdout.write(
    `\nstale-lock reclaim (grace ${locks.graceMs} ms, ${locks.rounds} rounds, ${locks.contenders} contenders): ` +
      `median ${locks.medianMs.toFixed(0)} ms, max ${locks.maxMs.toFixed(0)} ms after the kill; double holders ${locks.doubleHolders}\n`,
  );
  if (locks.doubleHolders > 0) failed = true;
  return failed;
});
