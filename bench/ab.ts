// `npm run bench:ab`: countd variants side by side, interleaved, for judging
// one change of the write path on a machine that others share (absolute
// figures drift there; runs taken A/B/A/B in the same minutes compare).
// Each --variant is NAME or NAME:VAR=VALUE[,VAR=VALUE...], environment
// variables for that daemon (e.g. COUNTD_COMMIT_DURABILITY, COUNTD_INLINE_MAX,
// COUNTD_FLOW_POLL_MS: lib/roles/write/tuning.ts) or, written --flag=VALUE,
// flags of its `countd start` (e.g. --backlog-ms=0), or bin=PATH, another
// build's bin/countd (two builds side by side: `--variant old:bin=/tmp/old/bin/countd`);
// `redis` adds Redis `appendfsync always`; `disk`, a Node.js server that
// answers each read after one O_DSYNC write of it (bench/lib/loopback.ts: the
// least server with a disk, the reference for countd's own part). Every
// round runs each point once per variant, rotating the order, with the
// pwrite + fdatasync floor first; prints the median and (min–max) per cell.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_FIELD_SIZES, writeFrameSize } from '../lib/protocol/fields.js';
import { startLoopback } from './lib/loopback.js';
import { killAll } from './lib/cleanup.js';
import { frameProtocol, roleOf, startCountd } from './lib/countd.js';
import { measureFloor } from './lib/floor.js';
import { KeySet } from './lib/keys.js';
import { type LatencyLoadResult, runLatencyLoad } from './lib/latency-load.js';
import { findRedisServer, redisWriteProtocol, startRedis } from './lib/redis.js';
import { processCpuSeconds, processTree } from './lib/proc-stats.js';
import { textTable } from './lib/report.js';
import { parsePoints, spread } from './lib/sweep.js';

interface Variant {
  name: string;
  port: number;
  stop(): Promise<void>;
  redis: boolean;
  /** CPU seconds used so far by the server's processes. */
  cpu(): number;
  /** The same per countd process (writer, store, supervisor), for the split per write. */
  cpuByRole?: () => Record<string, number>;
}

function say(line: string): void {
  process.stdout.write(line + '\n');
}

async function startVariant(spec: string): Promise<Variant> {
  const [name, vars] = spec.split(/:(.*)/s) as [string, string | undefined];
  if (name === 'redis') {
    const bin = findRedisServer();
    if (!bin) throw new Error('redis-server is not on the PATH');
    const r = await startRedis(bin, 'always');
    return { name, port: r.port, stop: () => r.stop(), redis: true, cpu: () => processCpuSeconds(r.pid) };
  }
  if (name === 'disk') {
    const file = path.join(os.tmpdir(), `countd-bench-disk-${process.pid}.log`);
    const l = await startLoopback(writeFrameSize(DEFAULT_FIELD_SIZES), file);
    return { name, port: l.port, stop: async () => { await l.stop(); fs.rmSync(file, { force: true }); }, redis: false, cpu: () => processCpuSeconds(l.pid) };
  }
  const env: NodeJS.ProcessEnv = {};
  const args: string[] = [];
  let bin: string | undefined;
  for (const kv of (vars ?? '').split(',').filter((x) => x !== '')) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`--variant ${spec}: expected NAME:VAR=VALUE[,VAR=VALUE] (or --flag=VALUE for countd start)`);
    // --flag=VALUE: a flag of `countd start` (e.g. --backlog-ms=0); else an environment variable.
    if (kv.startsWith('--')) args.push(kv.slice(0, i), kv.slice(i + 1));
    else if (kv.startsWith('bin=')) bin = kv.slice(4);
    else env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const d = await startCountd({ env, extraArgs: args, ...(bin !== undefined ? { bin } : {}) });
  const cpuByRole = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const p of processTree(d.pid)) {
      const role = p === d.pid ? 'supervisor' : roleOf(p);
      out[role] = (out[role] ?? 0) + processCpuSeconds(p);
    }
    return out;
  };
  return { name, port: d.writePort, stop: () => d.stop(), redis: false, cpu: () => d.cpuSeconds(), cpuByRole };
}

/** CPU µs per write of one countd process over the window (its role in cpuByRole). */
function roleCpuUs(res: LatencyLoadResult, role: string): number {
  const s = res.window?.[role];
  return s === undefined ? NaN : (s * 1e6) / res.replies;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      variant: { type: 'string', multiple: true, default: [] },
      points: { type: 'string', default: '1x1,8x1,50x1' },
      seconds: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '4' },
    },
  });
  const specs = values.variant as string[];
  if (specs.length < 2) throw new Error('give at least two --variant (e.g. --variant a:COUNTD_INLINE_MAX=4 --variant b:COUNTD_INLINE_MAX=0)');
  const points = parsePoints(values.points as string);
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const keys = new KeySet({ keys: 1_000_000, keyspaces: 1000, distribution: 'uniform' });
  const variants: Variant[] = [];
  try {
    for (const s of specs) variants.push(await startVariant(s));
    // Warm every server up first (a fresh daemon's first seconds are slower), unrecorded.
    for (const v of variants) {
      const proto = v.redis ? redisWriteProtocol(keys, 4, 8) : frameProtocol(keys, 4, 8, DEFAULT_FIELD_SIZES);
      await runLatencyLoad(proto, { port: v.port, connections: 8, inFlight: 1, seconds: 2, warmupSeconds: 0 });
    }
    const results = points.map(() => variants.map((): LatencyLoadResult[] => []));
    const floors: number[] = [];
    for (let r = 0; r < rounds; r++) {
      floors.push(measureFloor(os.tmpdir(), 1).p50Us);
      for (const [i, p] of points.entries()) {
        for (let k = 0; k < variants.length; k++) {
          const j = (k + r + i) % variants.length;
          const v = variants[j]!;
          const proto = v.redis ? redisWriteProtocol(keys, 3, p.connections) : frameProtocol(keys, 3, p.connections, DEFAULT_FIELD_SIZES);
          const res = await runLatencyLoad(proto, { port: v.port, ...p, seconds, serverCpu: v.cpu, ...(v.cpuByRole ? { windowProbe: v.cpuByRole } : {}) });
          results[i]![j]!.push(res);
          const split = v.cpuByRole === undefined ? '' : ` (writer ${Math.round(roleCpuUs(res, 'writer'))}, store ${Math.round(roleCpuUs(res, 'store'))})`;
          say(`  round ${r + 1} ${p.connections}x${p.inFlight} ${v.name}: ${Math.round(res.perSecond)}/s p50 ${Math.round(res.p50Us)} p99 ${Math.round(res.p99Us)} µs, server CPU ${Math.round(res.serverCpuUs)}${split} µs/write`);
        }
      }
    }
    say(`floor p50 µs: ${spread(floors)} (load average at end ${os.loadavg()[0]!.toFixed(2)})`);
    const rows = points.flatMap((p, i) =>
      variants.map((v, j) => {
        const rs = results[i]![j]!;
        const role = (name: string): string => (v.cpuByRole === undefined ? '–' : spread(rs.map((x) => roleCpuUs(x, name))));
        return [`${p.connections} × ${p.inFlight}`, v.name, spread(rs.map((x) => x.perSecond)), spread(rs.map((x) => x.p50Us)), spread(rs.map((x) => x.p99Us)), spread(rs.map((x) => x.serverCpuUs)), role('writer'), role('store')];
      }),
    );
    say(textTable({ headers: ['point', 'variant', 'writes/s', 'p50 µs', 'p99 µs', 'server CPU µs/write', 'of it countd-write', 'of it the store child'], rows }));
  } finally {
    for (const v of variants) await v.stop().catch(() => {});
  }
}

main().then(
  () => {
    killAll();
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`bench:ab: ${err instanceof Error ? err.message : String(err)}\n`);
    killAll();
    process.exit(1);
  },
);
