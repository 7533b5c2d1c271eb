// The concurrency sweep (`npm run bench:sweep`, and a part of `npm run
// bench`): countd against Redis `appendfsync always` at 1, 2, 8 and 50
// connections with one write in flight each (synchronous clients, as most
// applications are), and at 50 × 16 (pipelined), with latency p50/p99 and
// throughput, and the disk's floor (pwrite + fdatasync, floor.ts) measured
// in the same run. Each point runs `repeat` times, alternating which system
// goes first, and the report gives the median and the range.

import os from 'node:os';
import { DEFAULT_FIELD_SIZES, writeFrameSize } from '../../lib/protocol/fields.js';
import { type CountdDaemon, frameProtocol, startCountd } from './countd.js';
import { measureFloor, type FloorResult } from './floor.js';
import { KeySet } from './keys.js';
import { processCpuSeconds } from './proc-stats.js';
import { startLoopback } from './loopback.js';
import { type LatencyLoadResult, runLatencyLoad } from './latency-load.js';
import { redisWriteProtocol, startRedis, type RedisServer } from './redis.js';
import { type Table, markdownTable } from './report.js';

export interface SweepPoint {
  connections: number;
  inFlight: number;
}

export const SWEEP_POINTS: readonly SweepPoint[] = [
  { connections: 1, inFlight: 1 },
  { connections: 2, inFlight: 1 },
  { connections: 8, inFlight: 1 },
  { connections: 50, inFlight: 1 },
  { connections: 50, inFlight: 16 },
];

export interface SweepSettings {
  /** The points to run; default SWEEP_POINTS. */
  points?: readonly SweepPoint[];
  /** Measuring window of each point, seconds. */
  seconds: number;
  /** Runs of each point (and of the floor). */
  repeat: number;
  redisBinary: string | undefined;
  countdArgs: string[];
  /**
   * Also run the pipelined points (more than one write in flight) against a
   * second daemon started with `--backlog-ms 0`: the write path with its
   * acknowledgements not bounded by the worker's measured drain rate (the
   * default bounds the backlog to about a second of applying, so a
   * sustained load that the worker cannot absorb is acknowledged at the
   * rate it is applied). Default true.
   */
  unbounded?: boolean;
  log: (line: string) => void;
}

export interface SweepResult {
  points: readonly SweepPoint[];
  floor: FloorResult[];
  /** The same write on an O_DSYNC descriptor, no fdatasync (countd's default commit), per round. */
  dsyncFloor: FloorResult[];
  /** Per round, one connection with one frame in flight against a server that answers at once (loopback.ts). */
  loopback: LatencyLoadResult[];
  /** Per point, the runs of each system. */
  countd: LatencyLoadResult[][];
  redis: LatencyLoadResult[][];
  /** Per point, the runs of the `--backlog-ms 0` daemon (empty where not run). */
  unbounded: LatencyLoadResult[][];
}

const SWEEP_PHASE = 3;

export async function runSweep(s: SweepSettings): Promise<SweepResult> {
  const keys = new KeySet({ keys: 1_000_000, keyspaces: 1000, distribution: 'uniform' });
  const points = s.points ?? SWEEP_POINTS;
  const result: SweepResult = { points, floor: [], dsyncFloor: [], loopback: [], countd: points.map(() => []), redis: points.map(() => []), unbounded: points.map(() => []) };
  const countd: CountdDaemon = await startCountd({ extraArgs: s.countdArgs });
  const unbounded: CountdDaemon | undefined =
    s.unbounded !== false && points.some((p) => p.inFlight > 1) ? await startCountd({ extraArgs: [...s.countdArgs, '--backlog-ms', '0'] }) : undefined;
  let redis: RedisServer | undefined;
  const loopback = await startLoopback(writeFrameSize(DEFAULT_FIELD_SIZES));
  try {
    if (s.redisBinary) redis = await startRedis(s.redisBinary, 'always');
    // Warm both servers up before anything is recorded: a fresh daemon's
    // first seconds (JIT, the store child's first applies, the pool's first
    // logs) would otherwise fall on the first point, 1 × 1.
    const warm = { connections: 8, inFlight: 1, seconds: 2, warmupSeconds: 0 };
    await runLatencyLoad(frameProtocol(keys, SWEEP_PHASE + 1, 8, DEFAULT_FIELD_SIZES), { port: countd.writePort, ...warm });
    if (unbounded) await runLatencyLoad(frameProtocol(keys, SWEEP_PHASE + 1, 8, DEFAULT_FIELD_SIZES), { port: unbounded.writePort, ...warm });
    if (redis) await runLatencyLoad(redisWriteProtocol(keys, SWEEP_PHASE + 1, 8), { port: redis.port, ...warm });
    for (let r = 0; r < s.repeat; r++) {
      const floorSeconds = Math.min(3, s.seconds);
      // Alternate which floor goes first, as for the systems below.
      const dsyncFirst = r % 2 === 1;
      const dsync0 = dsyncFirst ? measureFloor(os.tmpdir(), floorSeconds, 520, 2 * 1024 * 1024, true) : undefined;
      const floor = measureFloor(os.tmpdir(), floorSeconds);
      const dsync = dsync0 ?? measureFloor(os.tmpdir(), floorSeconds, 520, 2 * 1024 * 1024, true);
      result.floor.push(floor);
      result.dsyncFloor.push(dsync);
      s.log(`  round ${r + 1}: floor (pwrite ${dsync.bytes} B on O_DSYNC) p50 ${us(dsync.p50Us)} p99 ${us(dsync.p99Us)}, ${Math.round(dsync.perSecond)}/s`);
      s.log(`  round ${r + 1}: floor (pwrite ${floor.bytes} B + fdatasync) p50 ${us(floor.p50Us)} p99 ${us(floor.p99Us)}, ${Math.round(floor.perSecond)}/s`);
      const echo = await runLatencyLoad(frameProtocol(keys, SWEEP_PHASE, 1, DEFAULT_FIELD_SIZES), { port: loopback.port, connections: 1, inFlight: 1, seconds: Math.min(2, s.seconds) });
      result.loopback.push(echo);
      s.log(`  round ${r + 1}: loopback round trip without disk (1 × 1): ${line(echo)}`);
      for (const [i, point] of points.entries()) {
        const runDaemon = async (d: CountdDaemon, into: LatencyLoadResult[], name: string): Promise<void> => {
          const res = await runLatencyLoad(frameProtocol(keys, SWEEP_PHASE, point.connections, DEFAULT_FIELD_SIZES), {
            port: d.writePort,
            ...point,
            seconds: s.seconds,
            serverCpu: () => d.cpuSeconds(),
            windowProbe: () => d.flowSeconds(),
          });
          into.push(res);
          s.log(`    ${name} ${label(point)}: ${line(res)}, ${flowLine(res)}`);
        };
        const runCountd = (): Promise<void> => runDaemon(countd, result.countd[i]!, 'countd');
        const runUnbounded = async (): Promise<void> => {
          if (unbounded && point.inFlight > 1) await runDaemon(unbounded, result.unbounded[i]!, 'countd --backlog-ms 0');
        };
        const runRedis = async (): Promise<void> => {
          if (!redis) return;
          const pid = redis.pid;
          const res = await runLatencyLoad(redisWriteProtocol(keys, SWEEP_PHASE, point.connections), { port: redis.port, ...point, seconds: s.seconds, serverCpu: () => processCpuSeconds(pid) });
          result.redis[i]!.push(res);
          s.log(`    Redis  ${label(point)}: ${line(res)}`);
        };
        // Alternate the order so that neither system always runs on a warmer machine.
        if ((r + i) % 2 === 0) {
          await runCountd();
          await runRedis();
          await runUnbounded();
        } else {
          await runUnbounded();
          await runRedis();
          await runCountd();
        }
      }
    }
  } finally {
    await countd.stop();
    await unbounded?.stop();
    await redis?.stop();
    await loopback.stop();
  }
  return result;
}

function label(p: SweepPoint): string {
  return `${p.connections} × ${p.inFlight}`;
}

function us(v: number): string {
  return `${Math.round(v)} µs`;
}

function line(r: LatencyLoadResult): string {
  return `${Math.round(r.perSecond).toLocaleString('en-US')}/s, p50 ${us(r.p50Us)}, p99 ${us(r.p99Us)}, client CPU ${r.clientCpuCores.toFixed(2)}${Number.isFinite(r.serverCpuUs) ? `, server CPU ${us(r.serverCpuUs)}/write` : ''}`;
}

/** The share of the window in which flow control held acknowledgements (delayed) or stopped taking frames. */
function flowShare(r: LatencyLoadResult): number {
  const w = r.window;
  if (w === undefined) return NaN;
  return ((w.delayed ?? 0) + (w.stopped ?? 0)) / r.seconds;
}

function flowLine(r: LatencyLoadResult): string {
  const w = r.window ?? {};
  return `flow control delayed ${(w.delayed ?? 0).toFixed(2)} s, stopped ${(w.stopped ?? 0).toFixed(2)} s of ${r.seconds.toFixed(1)} s`;
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const n = v.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? v[(n - 1) / 2]! : (v[n / 2 - 1]! + v[n / 2]!) / 2;
}

function num(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

/** "median (min–max)" of the runs, or the one value. */
export function spread(values: number[]): string {
  if (values.length === 0) return '–';
  if (values.length === 1) return num(values[0]!);
  return `${num(median(values))} (${num(Math.min(...values))}–${num(Math.max(...values))})`;
}

function ratioOf(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '–';
}

/** The figures: one row per point (and one per point run with `--backlog-ms 0`). */
export function sweepTable(r: SweepResult): Table {
  const rows = r.points.flatMap((p, i) => [row(r.countd[i]!, r.redis[i]!, label(p)), ...(r.unbounded[i]!.length > 0 ? [row(r.unbounded[i]!, r.redis[i]!, `${label(p)}, countd --backlog-ms 0`)] : [])]);
  return {
    headers: ['connections × in flight', 'countd writes/s', 'Redis always writes/s', 'countd / Redis', 'countd p50 µs', 'Redis p50 µs', 'countd p99 µs', 'Redis p99 µs', 'countd CPU µs/write', 'Redis CPU µs/write', 'countd acks held by flow control'],
    rows,
  };
}

function row(c: LatencyLoadResult[], d: LatencyLoadResult[], name: string): string[] {
  const rate = (x: LatencyLoadResult[]): number[] => x.map((v) => v.perSecond);
  const p50 = (x: LatencyLoadResult[]): number[] => x.map((v) => v.p50Us);
  const p99 = (x: LatencyLoadResult[]): number[] => x.map((v) => v.p99Us);
  const cpu = (x: LatencyLoadResult[]): number[] => x.map((v) => v.serverCpuUs).filter((v) => Number.isFinite(v));
  const held = c.map(flowShare).filter((v) => Number.isFinite(v));
  return [
    name,
    spread(rate(c)),
    spread(rate(d)),
    ratioOf(median(rate(c)), median(rate(d))),
    spread(p50(c)),
    spread(p50(d)),
    spread(p99(c)),
    spread(p99(d)),
    spread(cpu(c)),
    spread(cpu(d)),
    held.length === 0 ? '–' : `${spread(held.map((v) => v * 100))}% of the window`,
  ];
}

/** "1x1,50x16" → points. */
export function parsePoints(text: string): SweepPoint[] {
  return text.split(',').map((item) => {
    const m = /^(\d+)x(\d+)$/.exec(item.trim());
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new Error(`a point is CONNECTIONSxINFLIGHT, e.g. 8x1; got ${item}`);
    return { connections: Number(m[1]), inFlight: Number(m[2]) };
  });
}

/** The targets of issue 22, judged on the medians (the single-client ones on the point 1 × 1). */
export function sweepTargets(r: SweepResult): Table {
  const floorP50 = median(r.floor.map((f) => f.p50Us));
  const loopP50 = median(r.loopback.map((f) => f.p50Us));
  const one = Math.max(0, r.points.findIndex((p) => p.connections === 1 && p.inFlight === 1));
  const c1 = r.countd[one]!;
  const d1 = r.redis[one]!;
  const cP50 = median(c1.map((v) => v.p50Us));
  const dP50 = median(d1.map((v) => v.p50Us));
  const cP99 = median(c1.map((v) => v.p99Us));
  const dP99 = median(d1.map((v) => v.p99Us));
  const verdict = (ok: boolean | undefined): string => (ok === undefined ? 'not measured' : ok ? 'met' : 'missed');
  const hasRedis = d1.length > 0;
  const rows: string[][] = [
    ['one sync client: p50 ≤ Redis', `${num(cP50)} vs ${hasRedis ? num(dP50) : '–'} µs`, verdict(hasRedis ? cP50 <= dP50 : undefined)],
    ['one sync client: p50 ≤ 1.3x floor', `${num(cP50)} vs 1.3 × ${num(floorP50)} = ${num(1.3 * floorP50)} µs`, verdict(cP50 <= 1.3 * floorP50)],
    [
      '(context) floor + loopback round trip without disk, p50',
      `${num(floorP50)} + ${num(loopP50)} = ${num(floorP50 + loopP50)} µs (the least a Node.js client over loopback can see)`,
      '–',
    ],
    [
      '(context) the same without the round trip: p50 − loopback p50 ≤ 1.3x floor (the floor is measured in-process, with no socket and no second process to wake)',
      `${num(cP50)} − ${num(loopP50)} = ${num(cP50 - loopP50)} vs ${num(1.3 * floorP50)} µs`,
      cP50 - loopP50 <= 1.3 * floorP50 ? 'met' : 'missed',
    ],
    ['one sync client: p99 ≤ Redis', `${num(cP99)} vs ${hasRedis ? num(dP99) : '–'} µs`, verdict(hasRedis ? cP99 <= dP99 : undefined)],
  ];
  r.points.forEach((p, i) => {
    const c = median(r.countd[i]!.map((v) => v.perSecond));
    const d = median(r.redis[i]!.map((v) => v.perSecond));
    rows.push([`${label(p)}: throughput ≥ Redis`, hasRedis ? ratioOf(c, d) : '–', verdict(hasRedis ? c >= d : undefined)]);
    const u = r.unbounded[i]!;
    if (u.length > 0) {
      rows.push([`(context) ${label(p)} with --backlog-ms 0: the write path, acknowledgements not bounded by the apply rate`, hasRedis ? ratioOf(median(u.map((v) => v.perSecond)), d) : '–', '–']);
    }
  });
  return { headers: ['target (issue 22)', 'measured (medians)', 'verdict'], rows };
}

export function floorLine(r: SweepResult): string {
  const f = r.floor;
  return `pwrite of ${f[0]?.bytes ?? 520} bytes + fdatasync on a preallocated file, one thread: p50 ${spread(f.map((v) => v.p50Us))} µs, p99 ${spread(f.map((v) => v.p99Us))} µs, ${spread(f.map((v) => v.perSecond))}/s`;
}

/** The O_DSYNC floor. */
export function dsyncFloorLine(r: SweepResult): string {
  const f = r.dsyncFloor;
  return `pwrite of ${f[0]?.bytes ?? 520} bytes on a preallocated file opened O_DSYNC, no fdatasync: p50 ${spread(f.map((v) => v.p50Us))} µs, p99 ${spread(f.map((v) => v.p99Us))} µs, ${spread(f.map((v) => v.perSecond))}/s`;
}

/** The round trip without a disk (loopback.ts). */
export function loopbackLine(r: SweepResult): string {
  const l = r.loopback;
  return `one connection, one frame in flight, to a Node.js server that answers each frame at once: p50 ${spread(l.map((v) => v.p50Us))} µs, p99 ${spread(l.map((v) => v.p99Us))} µs`;
}

/** The Markdown of the sweep's results (without machine facts). */
export function sweepMarkdown(r: SweepResult, s: Pick<SweepSettings, 'seconds' | 'repeat'>): string {
  return [
    `Each point: ${s.seconds} s of load after 1 s of warm-up, ${s.repeat} run${s.repeat === 1 ? '' : 's'} (alternating which system goes first), after 2 s of unrecorded load at 8 × 1 on each fresh server; cells give the median and, with several runs, (min–max). A connection with one write in flight sends a frame (countd) or a \`ZINCRBY\` (Redis), waits for the reply, and sends the next; latency is from the send to the reply, taken in the client. Redis runs with \`appendonly yes\`, \`appendfsync always\`; countd at its defaults (\`countd start\`). Server CPU per write: the CPU time of all the server's processes (countd: supervisor, countd-write and the store child that applies the logs; Redis: its one process) over the window, per acknowledged write.`,
    '',
    `Floor, measured in the same run on the same file system: ${floorLine(r)}.`,
    '',
    `The same with O_DSYNC (how countd's commit log writes by default): ${dsyncFloorLine(r)}.`,
    '',
    `Round trip without a disk, same client, same run: ${loopbackLine(r)}.`,
    '',
    `"countd acks held by flow control": the share of the window in which countd-write delayed its acknowledgements or stopped taking frames because the unapplied backlog passed its bound (\`--backlog-ms\`, default 1000: about a second of applying at the drain rate it measures; README "Flow control"). Where it is high, countd acknowledged at the rate its worker applies, which is what bounds the write-to-readable lag; the rows "countd --backlog-ms 0" are a second daemon in the same run whose acknowledgements only the byte bounds (64/128 MiB) hold: the write path alone.`,
    '',
    markdownTable(sweepTable(r)),
    '',
    markdownTable(sweepTargets(r)),
  ].join('\n');
}
