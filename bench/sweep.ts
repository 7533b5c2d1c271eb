// `npm run bench:sweep`: the concurrency sweep alone (bench/lib/sweep.ts):
// countd against Redis `appendfsync always` at 1, 2, 8, 50 connections with
// one write in flight and at 50 × 16, latency p50/p99 and throughput, with
// the disk's pwrite + fdatasync floor. Prints the tables and rewrites the
// "sweep" section of BENCHMARKS.md.

import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { killAll } from './lib/cleanup.js';
import { cpuSnapshot, formatMachineFacts, machineFacts, otherCpuCores } from './lib/machine.js';
import { findRedisServer } from './lib/redis.js';
import { textTable, writeSection } from './lib/report.js';
import { dsyncFloorLine, floorLine, loopbackLine, parsePoints, runSweep, sweepMarkdown, sweepTable, sweepTargets } from './lib/sweep.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BENCHMARKS_MD = path.resolve(HERE, '../../BENCHMARKS.md');

function say(line: string): void {
  process.stdout.write(line + '\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      seconds: { type: 'string', default: '5' },
      repeat: { type: 'string', default: '3' },
      points: { type: 'string', default: '1x1,2x1,8x1,50x1,50x16' },
      'no-write': { type: 'boolean', default: false },
      'no-unbounded': { type: 'boolean', default: false },
      output: { type: 'string', default: BENCHMARKS_MD },
      'countd-arg': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    say(`Usage: npm run bench:sweep -- [--seconds N (5)] [--repeat N (3)] [--points 1x1,2x1,8x1,50x1,50x16] [--no-write] [--no-unbounded (no second daemon with --backlog-ms 0 for the pipelined points)] [--output FILE] [--countd-arg ARG]...`);
    return;
  }
  const seconds = Number(values.seconds);
  const repeat = Number(values.repeat);
  if (!(seconds >= 0.5)) throw new Error(`--seconds must be a number >= 0.5, got ${values.seconds}`);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a positive integer, got ${values.repeat}`);
  const redisBinary = findRedisServer();
  if (!redisBinary) say('note: redis-server is not on the PATH; countd only (install it, e.g. `apt-get install redis-server`)');
  const facts = formatMachineFacts(machineFacts(os.tmpdir(), redisBinary));
  for (const f of facts) say(f);
  const started = new Date();
  const cpu0 = cpuSnapshot();
  const points = parsePoints(values.points as string);
  const result = await runSweep({ points, seconds, repeat, redisBinary, countdArgs: values['countd-arg'] as string[], unbounded: !values['no-unbounded'], log: say });
  const other = otherCpuCores(cpu0, cpuSnapshot());
  facts.push(`Other work on the machine during the run: ${other.toFixed(2)} cores on average (busy CPU from /proc/stat minus this benchmark's processes)`);
  facts.push(`Load average (1 min) at the end: ${os.loadavg()[0]!.toFixed(2)}`);
  say('');
  say(`floor: ${floorLine(result)}`);
  say(`floor with O_DSYNC: ${dsyncFloorLine(result)}`);
  say(`round trip without a disk: ${loopbackLine(result)}`);
  say(textTable(sweepTable(result)));
  say('');
  say(textTable(sweepTargets(result)));
  say(`other work on the machine: ${other.toFixed(2)} cores on average; load average (1 min) at the end ${os.loadavg()[0]!.toFixed(2)}`);
  if (!values['no-write']) {
    const body = [
      '## Concurrency sweep: countd vs Redis `appendfsync always` (`npm run bench:sweep`)',
      '',
      `Run ${started.toISOString().replace(/\.\d+Z$/, 'Z')} with \`npm run bench:sweep -- --seconds ${seconds} --repeat ${repeat}\`.`,
      '',
      '### Machine',
      '',
      ...facts.map((f) => `- ${f}`),
      '',
      '### Results',
      '',
      sweepMarkdown(result, { seconds, repeat }),
    ].join('\n');
    await writeSection(path.resolve(values.output as string), 'sweep', body);
    say(`wrote the "sweep" section of ${values.output}`);
  }
}

main().then(
  () => {
    killAll();
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`bench:sweep: ${err instanceof Error ? err.message : String(err)}\n`);
    killAll();
    process.exit(1);
  },
);
