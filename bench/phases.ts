// `npm run bench:phases`: where a lone synchronous write's time goes. Starts
// the real daemon with commit tracing on (COUNTD_TRACE_COMMITS=1,
// lib/roles/write/trace.ts), drives it with one connection and one write in
// flight, and prints, beside the disk's floor (pwrite + fdatasync on a
// preallocated file, measured in the same run), the client's round trip and
// the writer's phases: wait (frame read → commit start), write, sync,
// commit (start → durable), reply (durable → WIN handed to the socket).
// Whatever the round trip holds beyond wait + commit + reply is the client,
// the kernel's loopback and the event-loop wake-ups at both ends. Beside it,
// the same client against the least server with a disk (bench/lib/loopback.ts:
// one O_DSYNC write per read, then WIN), and the commits again by what else
// countd-write had under way (trace.ts "commit overlaps": a hand-over, the
// claim of the next log, flow control's scan; "none").

import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_FIELD_SIZES, writeFrameSize } from '../lib/protocol/fields.js';
import { killAll } from './lib/cleanup.js';
import { frameProtocol, startCountd } from './lib/countd.js';
import { measureFloor } from './lib/floor.js';
import { KeySet } from './lib/keys.js';
import { runLatencyLoad } from './lib/latency-load.js';
import { startLoopback } from './lib/loopback.js';
import { textTable } from './lib/report.js';

const PHASES = ['wait', 'write', 'sync', 'commit', 'reply'];

function say(line: string): void {
  process.stdout.write(line + '\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { seconds: { type: 'string', default: '6' }, 'countd-arg': { type: 'string', multiple: true, default: [] } },
  });
  const seconds = Number(values.seconds);
  if (!(seconds >= 2)) throw new Error(`--seconds must be a number >= 2, got ${values.seconds}`);
  const floor = measureFloor(os.tmpdir(), 3);
  const keys = new KeySet({ keys: 1_000_000, keyspaces: 1000, distribution: 'uniform' });
  const diskFile = path.join(os.tmpdir(), `countd-bench-phases-${process.pid}.log`);
  const disk = await startLoopback(writeFrameSize(DEFAULT_FIELD_SIZES), diskFile);
  let least;
  try {
    least = await runLatencyLoad(frameProtocol(keys, 5, 1, DEFAULT_FIELD_SIZES), { port: disk.port, connections: 1, inFlight: 1, seconds: Math.min(3, seconds) });
  } finally {
    await disk.stop();
    await fsp.rm(diskFile, { force: true });
  }
  process.env.COUNTD_TRACE_COMMITS = '1';
  const countd = await startCountd({ extraArgs: ['--log-format', 'json', ...(values['countd-arg'] as string[])] });
  try {
    const load = await runLatencyLoad(frameProtocol(keys, 4, 1, DEFAULT_FIELD_SIZES), { port: countd.writePort, connections: 1, inFlight: 1, seconds });
    // The writer logs its phases every 2 s: take the lines written during the load.
    const lines = (await fsp.readFile(path.join(countd.root, 'daemon.log'), 'utf8')).split('\n');
    const logged = (msg: string): Array<Record<string, number>> =>
      lines.flatMap((l) => {
        try {
          const o = JSON.parse(l) as Record<string, unknown>;
          return o.msg === msg ? [o as Record<string, number>] : [];
        } catch {
          return [];
        }
      });
    // Each "commit overlaps" line follows its "commit phases" line.
    const phases = logged('commit phases');
    const overlapLines = logged('commit overlaps');
    const busy = phases.map((t, i) => [t, overlapLines[i] ?? {}] as const).filter(([t]) => t.commits! > 100);
    const traces = busy.map(([t]) => t);
    const overlaps = busy.map(([, o]) => o);
    if (traces.length === 0) throw new Error('the writer logged no commit phases (is COUNTD_TRACE_COMMITS passed to it?)');
    // A phase with no sample (sync under O_DSYNC) is logged as null.
    const cell = (v: number | null | undefined): string => (v === null || v === undefined || Number.isNaN(v) ? '–' : String(v));
    const rows = PHASES.map((p) => [p, ...traces.map((t) => `${cell(t[`${p}P50us`])} / ${cell(t[`${p}P99us`])}`)]);
    rows.unshift(['client round trip', `${Math.round(load.p50Us)} / ${Math.round(load.p99Us)} (whole run)`]);
    rows.unshift(['least server with a disk: round trip', `${Math.round(least.p50Us)} / ${Math.round(least.p99Us)} (${Math.round(least.perSecond)}/s)`]);
    rows.unshift(['floor: pwrite 520 B + fdatasync', `${Math.round(floor.p50Us)} / ${Math.round(floor.p99Us)}`]);
    say(`one connection, one write in flight, ${seconds} s: ${Math.round(load.perSecond)} writes/s`);
    say(textTable({ headers: ['µs, p50 / p99', ...traces.map((t, i) => `period ${i + 1} (${t.commits} commits)`)], rows }));
    // The commits again, by what else countd-write had under way.
    const classes = [...new Set(overlaps.flatMap((o) => Object.keys(o).filter((k) => k.endsWith('Commits')).map((k) => k.slice(0, -'Commits'.length))))].sort();
    const overlapRows = classes.map((c) => [c, ...overlaps.map((o) => (o[`${c}Commits`] === undefined ? '–' : `${o[`${c}Commits`]}: ${cell(o[`${c}P50us`])} / ${cell(o[`${c}P99us`])}`))]);
    say('');
    say(textTable({ headers: ['commit beside (commits: µs p50 / p99)', ...traces.map((_, i) => `period ${i + 1}`)], rows: overlapRows }));
  } finally {
    await countd.stop();
  }
}

main().then(
  () => {
    killAll();
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`bench:phases: ${err instanceof Error ? err.message : String(err)}\n`);
    killAll();
    process.exit(1);
  },
);
