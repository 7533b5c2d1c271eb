// `npm run bench:e2e` (sustained load over 1,000 keyspaces, with the
// write-to-readable probe) and `npm run bench:bigboard` (10,000,000 distinct
// keys in one keyspace): countd END TO END, side by side with Redis
// (`appendfsync always`) in the same run, and the peak RSS of every countd
// process (supervisor + children, summed from /proc).
//
// - light: no load, the probe alone (an increment every 250 ms, polled on
//   the read port until visible): write-to-readable lag under light traffic.
// - sustained: 50 connections x 16 frames in flight for --seconds (60) over
//   --keys keys (1,000,000, key i in keyspace i % 1000, uniform), the probe
//   running alongside; end to end = acknowledged increments / time from the
//   load's start until all are readable (a sentinel written after the load,
//   no dirty log left), confirmed by reading every count back.
// - bigboard: --big-keys (10,000,000) distinct keys written once each into
//   one keyspace, same client shape; end to end as above.
// Redis: ZINCRBY with the same client shape; readable at once, so its end to
// end is its acknowledged rate. Ends with issue 14's targets, each with the
// figure measured (the worst run's). Rewrites its section of BENCHMARKS.md.

import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Client } from '../lib/index.js';
import { DEFAULT_FIELD_SIZES, writeFrameSize } from '../lib/protocol/fields.js';
import { REPLY_WIN } from '../lib/protocol/write-frame.js';
import { killAll } from './lib/cleanup.js';
import { CountdDaemon, frameProtocol, startCountd } from './lib/countd.js';
import { LagStats, Probe, TreeRss, formatLag, mib, rate, waitReadable } from './lib/e2e.js';
import { KeySet, SENTINEL_KEY, SENTINEL_KEYSPACE, keyName } from './lib/keys.js';
import { cpuSnapshot, formatMachineFacts, machineFacts, otherCpuCores } from './lib/machine.js';
import { Protocol, fixedReplyCounter, runPipeline } from './lib/pipeline.js';
import { readAllCounts } from './lib/read-load.js';
import { findRedisServer, redisWriteProtocol, respReplyCounter, startRedis } from './lib/redis.js';
import { writeSection } from './lib/report.js';

const BENCHMARKS_MD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../BENCHMARKS.md');
const BOARD = 'bigboard';

interface Settings {
  phases: Set<string>;
  seconds: number;
  lightSeconds: number;
  keys: number;
  keyspaces: number;
  bigKeys: number;
  runs: number;
  redis: boolean;
  write: boolean;
  countdArgs: string[];
  drainTimeout: number;
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      phase: { type: 'string', multiple: true, default: [] },
      seconds: { type: 'string', default: '60' },
      'light-seconds': { type: 'string', default: '15' },
      keys: { type: 'string', default: '1000000' },
      keyspaces: { type: 'string', default: '1000' },
      'big-keys': { type: 'string', default: '10000000' },
      runs: { type: 'string', default: '1' },
      'no-redis': { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      'countd-arg': { type: 'string', multiple: true, default: [] },
      'drain-timeout': { type: 'string', default: '900' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`Usage: npm run bench:e2e -- [options]   (npm run bench:bigboard = --phase bigboard)

  --phase P            light | sustained | bigboard (repeatable; default all three)
  --seconds N          length of the sustained load (default 60)
  --light-seconds N    length of the light-traffic probe (default 15)
  --keys N             keys of the sustained load (default 1000000)
  --keyspaces N        keyspaces of the sustained load (default 1000)
  --big-keys N         distinct keys of the bigboard phase (default 10000000)
  --runs N             countd/Redis pairs, back to back (default 1); figures as ranges
  --no-redis           skip Redis
  --no-write           print only; leave BENCHMARKS.md alone
  --countd-arg ARG     pass ARG to \`countd start\` (repeatable)
  --drain-timeout N    give up waiting until readable after N s (default 900)
  --quick              a short check: --seconds 20 --light-seconds 5 --big-keys 1000000
                       (unless given), and BENCHMARKS.md left alone
  For the memory bound at more keys: --phase bigboard --big-keys 50000000 (hours on 2 cores).
`);
    process.exit(0);
  }
  const phases = new Set(values.phase.length > 0 ? values.phase : ['light', 'sustained', 'bigboard']);
  for (const p of phases) if (!['light', 'sustained', 'bigboard'].includes(p)) throw new Error(`unknown phase ${p}`);
  // --quick: shorter phases where the arguments did not set them (an explicit value wins).
  const given = (name: string): boolean => argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  const quick = (name: string, short: string): string => (values.quick && !given(name) ? short : (values[name as 'seconds'] as string));
  return {
    phases,
    seconds: Number(quick('seconds', '20')),
    lightSeconds: Number(quick('light-seconds', '5')),
    keys: Number(values.keys),
    keyspaces: Number(values.keyspaces),
    bigKeys: Number(quick('big-keys', '1000000')),
    runs: Number(values.runs),
    redis: !values['no-redis'],
    write: !values['no-write'] && !values.quick,
    countdArgs: values['countd-arg'],
    drainTimeout: Number(values['drain-timeout']),
  };
}

const say = (line: string): void => console.log(line);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface CountdRun {
  acked: number;
  ackedPerSecond: number;
  endToEnd: number;
  readableAfterLoad: number;
  lag?: LagStats;
  peakSum: number;
  sumOfPeaks: number;
  /** Each process's own peak: "supervisor 60, writer 80, store 300" (MiB). */
  byProcess: string;
  verified: boolean;
}

/** Distinct keys, each written once, into one keyspace: key i is `key<i>`, handed out in order across connections. */
function boardFrames(total: number): Protocol {
  const frameSize = writeFrameSize(DEFAULT_FIELD_SIZES);
  const keyOffset = 8 + DEFAULT_FIELD_SIZES.keyspaceSize;
  let next = 0;
  return {
    encode(_conn, count) {
      const n = Math.min(count, total - next);
      const buf = Buffer.alloc(frameSize * n);
      for (let i = 0, off = 0; i < n; i++, off += frameSize, next++) {
        buf.writeBigInt64LE(1n, off);
        buf.write(BOARD, off + 8, 'latin1');
        buf.write(keyName(next), off + keyOffset, 'latin1');
      }
      return buf;
    },
    replyCounter: () => fixedReplyCounter(REPLY_WIN),
  };
}

function boardZincrby(total: number): Protocol {
  let next = 0;
  return {
    encode(_conn, count) {
      const n = Math.min(count, total - next);
      let text = '';
      for (let i = 0; i < n; i++, next++) {
        const key = keyName(next);
        text += `*4\r\n$7\r\nZINCRBY\r\n$${BOARD.length}\r\n${BOARD}\r\n$1\r\n1\r\n$${key.length}\r\n${key}\r\n`;
      }
      return Buffer.from(text, 'latin1');
    },
    replyCounter: () => respReplyCounter(),
  };
}

async function withCountd<T>(s: Settings, fn: (daemon: CountdDaemon, client: Client, rss: TreeRss) => Promise<T>): Promise<T> {
  const daemon = await startCountd({ extraArgs: s.countdArgs });
  const rss = new TreeRss(daemon.pid);
  const client = new Client({ writePort: daemon.writePort, readPort: daemon.readPort });
  try {
    return await fn(daemon, client, rss);
  } finally {
    rss.stop();
    await client.close();
    await daemon.stop();
  }
}

async function countdLight(s: Settings): Promise<LagStats> {
  return withCountd(s, async (_daemon, client) => {
    const probe = new Probe(client);
    probe.start();
    await sleep(s.lightSeconds * 1000);
    return probe.stop();
  });
}

async function countdSustained(s: Settings, keys: KeySet): Promise<CountdRun> {
  return withCountd(s, async (daemon, client, rss) => {
    const probe = new Probe(client);
    const start = performance.now();
    probe.start();
    const load = await runPipeline(frameProtocol(keys, 1, 50, DEFAULT_FIELD_SIZES), { port: daemon.writePort, connections: 50, inFlight: 16, seconds: s.seconds });
    const loadEnd = performance.now();
    const lag = await probe.stop();
    const ready = await waitReadable(daemon, client, { keyspace: SENTINEL_KEYSPACE, key: SENTINEL_KEY }, loadEnd + s.drainTimeout * 1000);
    if (ready === undefined) throw new Error('countd: not readable before the drain timeout');
    const back = await readAllCounts(daemon.readPort, keys);
    return {
      acked: load.total,
      ackedPerSecond: load.total / ((loadEnd - start) / 1000),
      endToEnd: load.total / ((ready - start) / 1000),
      readableAfterLoad: (ready - loadEnd) / 1000,
      lag,
      peakSum: rss.peakSum(),
      sumOfPeaks: rss.sumOfPeaks(),
      byProcess: byProcess(daemon),
      verified: back.sum === BigInt(load.total),
    };
  });
}

async function countdBigboard(s: Settings): Promise<CountdRun> {
  return withCountd(s, async (daemon, client, rss) => {
    const start = performance.now();
    const load = await runPipeline(boardFrames(s.bigKeys), { port: daemon.writePort, connections: 50, inFlight: 16, seconds: Infinity, requests: s.bigKeys });
    const loadEnd = performance.now();
    const ready = await waitReadable(daemon, client, { keyspace: SENTINEL_KEYSPACE, key: SENTINEL_KEY }, loadEnd + s.drainTimeout * 1000);
    if (ready === undefined) throw new Error('countd: not readable before the drain timeout');
    const board = (await client.keyspaces()).find((k) => k.name.toString() === BOARD);
    return {
      acked: load.total,
      ackedPerSecond: load.total / ((loadEnd - start) / 1000),
      endToEnd: load.total / ((ready - start) / 1000),
      readableAfterLoad: (ready - loadEnd) / 1000,
      peakSum: rss.peakSum(),
      sumOfPeaks: rss.sumOfPeaks(),
      byProcess: byProcess(daemon),
      verified: board !== undefined && board.size === BigInt(s.bigKeys),
    };
  });
}

function byProcess(daemon: CountdDaemon): string {
  return daemon.peakRssByProcess().map((p) => `${p.role} ${mib(p.bytes)}`).join(', ');
}

interface RedisRun {
  perSecond: number;
  peakRss: number;
}

async function redisRun(binary: string, protocol: Protocol, options: { seconds: number; requests?: number }): Promise<RedisRun> {
  const server = await startRedis(binary, 'always');
  try {
    const start = performance.now();
    const load = await runPipeline(protocol, { port: server.port, connections: 50, inFlight: 16, ...options });
    const seconds = options.requests === undefined ? load.seconds : (performance.now() - start) / 1000;
    return { perSecond: (options.requests === undefined ? load.inWindow : load.total) / seconds, peakRss: server.peakRss() };
  } finally {
    await server.stop();
  }
}

const range = (xs: number[], f: (x: number) => string): string => {
  if (xs.length === 0) return '–';
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo === hi ? f(lo) : `${f(lo)}–${f(hi)}`;
};
const x = (n: number): string => `${n.toFixed(2)}x`;
const secs = (ms: number): string => (ms / 1000).toFixed(2);

/** Issue 14's targets, each with the worst run's figure and whether it is met. */
function targetLines(light: LagStats[], sustained: Array<{ countd: CountdRun; redis?: RedisRun }>, board: Array<{ countd: CountdRun; redis?: RedisRun }>): string[] {
  const out = ['Targets (issue 14; the worst run):', ''];
  const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
  const ratio = (runs: Array<{ countd: CountdRun; redis?: RedisRun }>): number | undefined => {
    const r = runs.flatMap((x) => (x.redis ? [x.countd.endToEnd / x.redis.perSecond] : []));
    return r.length > 0 ? Math.min(...r) : undefined;
  };
  const s = ratio(sustained);
  if (s !== undefined) out.push(`- sustained end to end ≥ 1.5x Redis always: ${x(s)} (${verdict(s >= 1.5)})`);
  const lags = sustained.flatMap((r) => (r.countd.lag ? [r.countd.lag.p99] : []));
  if (lags.length > 0) out.push(`- sustained write-to-readable lag p99 ≤ 2 s: ${secs(Math.max(...lags))} s (${verdict(Math.max(...lags) <= 2000)})`);
  if (light.length > 0) out.push(`- light traffic lag p99 ≤ 1.2 s: ${secs(Math.max(...light.map((l) => l.p99)))} s (${verdict(Math.max(...light.map((l) => l.p99)) <= 1200)})`);
  const b = ratio(board);
  if (b !== undefined) out.push(`- bigboard (distinct keys, one keyspace) end to end ≥ 1.0x Redis always: ${x(b)} (${verdict(b >= 1)})`);
  const peaks = [...sustained, ...board].map((r) => r.countd.peakSum);
  if (peaks.length > 0) out.push(`- peak RSS of all countd processes ≤ 512 MiB through the loads: ${mib(Math.max(...peaks))} MiB (${verdict(Math.max(...peaks) <= 512 * 1024 * 1024)})`);
  return out.length > 2 ? out : [];
}

async function main(): Promise<void> {
  const s = parseSettings(process.argv.slice(2));
  const redisBinary = s.redis ? findRedisServer() : undefined;
  if (s.redis && redisBinary === undefined) say('redis-server not found (apt-get install -y redis-server): Redis skipped');
  const startedAt = new Date();
  const cpu0 = cpuSnapshot();
  const lines: string[] = [];
  const light: LagStats[] = [];
  const sustained: Array<{ countd: CountdRun; redis?: RedisRun }> = [];
  const board: Array<{ countd: CountdRun; redis?: RedisRun }> = [];
  for (let run = 1; run <= s.runs; run++) {
    if (s.phases.has('light')) {
      const l = await countdLight(s);
      light.push(l);
      say(`run ${run} light traffic: write-to-readable ${formatLag(l)}`);
    }
    if (s.phases.has('sustained')) {
      const keys = new KeySet({ keys: s.keys, keyspaces: s.keyspaces, distribution: 'uniform' });
      const c = await countdSustained(s, keys);
      say(`run ${run} sustained countd: acked ${rate(c.ackedPerSecond)}/s, end to end ${rate(c.endToEnd)}/s (readable ${c.readableAfterLoad.toFixed(2)} s after the load), lag ${formatLag(c.lag!)}, peak RSS ${mib(c.peakSum)} MiB (sum of peaks ${mib(c.sumOfPeaks)}: ${c.byProcess}), verified ${c.verified}`);
      let r: RedisRun | undefined;
      if (redisBinary !== undefined) {
        keys.resetSeen();
        r = await redisRun(redisBinary, redisWriteProtocol(keys, 1, 50), { seconds: s.seconds });
        say(`run ${run} sustained Redis always: ${rate(r.perSecond)}/s, peak RSS ${mib(r.peakRss)} MiB; countd/Redis ${x(c.endToEnd / r.perSecond)}`);
      }
      sustained.push({ countd: c, ...(r ? { redis: r } : {}) });
    }
    if (s.phases.has('bigboard')) {
      const c = await countdBigboard(s);
      say(`run ${run} bigboard countd: acked ${rate(c.ackedPerSecond)}/s, end to end ${rate(c.endToEnd)}/s (readable ${c.readableAfterLoad.toFixed(2)} s after the load), peak RSS ${mib(c.peakSum)} MiB (sum of peaks ${mib(c.sumOfPeaks)}: ${c.byProcess}), verified ${c.verified}`);
      let r: RedisRun | undefined;
      if (redisBinary !== undefined) {
        r = await redisRun(redisBinary, boardZincrby(s.bigKeys), { seconds: Infinity, requests: s.bigKeys });
        say(`run ${run} bigboard Redis always: ${rate(r.perSecond)}/s, peak RSS ${mib(r.peakRss)} MiB; countd/Redis ${x(c.endToEnd / r.perSecond)}`);
      }
      board.push({ countd: c, ...(r ? { redis: r } : {}) });
    }
  }
  const other = otherCpuCores(cpu0, cpuSnapshot());
  const elapsed = (Date.now() - startedAt.getTime()) / 1000;
  const section = board.length > 0 && sustained.length === 0 && light.length === 0 ? 'bigboard' : 'e2e';
  lines.push(`## End to end ${section === 'bigboard' ? '(`npm run bench:bigboard`)' : '(`npm run bench:e2e`)'}`, '');
  lines.push(`Run ${startedAt.toISOString().replace(/\.\d+Z$/, 'Z')}, ${elapsed.toFixed(0)} s in all, ${s.runs} run(s) of each phase (countd then Redis, back to back), with \`node dist/bench/e2e.js ${process.argv.slice(2).join(' ')}\`.`, '');
  lines.push('### Machine', '', ...formatMachineFacts(machineFacts(os.tmpdir(), redisBinary)), `- Other work on the machine during the run: ${other.toFixed(2)} cores on average`, '');
  lines.push('### Results (ranges over the runs)', '', '| phase | countd acked/s | countd end to end/s | readable after the load | write-to-readable lag (p50 / p99 / max, s) | countd peak RSS, all processes (MiB) | Redis always /s | Redis peak RSS (MiB) | countd end to end / Redis |', '| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |');
  if (light.length > 0) lines.push(`| light traffic (probe alone, ${s.lightSeconds} s) | – | – | – | ${range(light.map((l) => l.p50), secs)} / ${range(light.map((l) => l.p99), secs)} / ${range(light.map((l) => l.max), secs)} | – | – | – | – |`);
  const row = (name: string, runs: Array<{ countd: CountdRun; redis?: RedisRun }>): string => {
    const c = runs.map((r) => r.countd);
    const rr = runs.flatMap((r) => (r.redis ? [r.redis] : []));
    const ratios = runs.flatMap((r) => (r.redis ? [r.countd.endToEnd / r.redis.perSecond] : []));
    const lag = c.every((r) => r.lag) ? `${range(c.map((r) => r.lag!.p50), secs)} / ${range(c.map((r) => r.lag!.p99), secs)} / ${range(c.map((r) => r.lag!.max), secs)}` : '–';
    return `| ${name} | ${range(c.map((r) => r.ackedPerSecond), rate)} | ${range(c.map((r) => r.endToEnd), rate)} | ${range(c.map((r) => r.readableAfterLoad), (v) => v.toFixed(1) + ' s')} | ${lag} | ${range(c.map((r) => r.peakSum), mib)} | ${range(rr.map((r) => r.perSecond), rate)} | ${range(rr.map((r) => r.peakRss), mib)} | ${range(ratios, x)} |`;
  };
  if (sustained.length > 0) lines.push(row(`sustained, ${s.seconds} s, ${s.keys.toLocaleString('en-US')} keys over ${s.keyspaces} keyspaces`, sustained));
  if (board.length > 0) lines.push(row(`${s.bigKeys.toLocaleString('en-US')} distinct keys, one keyspace`, board));
  lines.push('', ...targetLines(light, sustained, board));
  const unverified = [...sustained, ...board].filter((r) => !r.countd.verified).length;
  lines.push('', `Every countd run was verified (every count read back, or the keyspace's size): ${unverified === 0 ? 'yes' : `NO, ${unverified} run(s) failed`}.`);
  lines.push('', 'Method: 50 connections × 16 frames in flight, one client process on the same machine. End to end = acknowledged increments / time from the start of the load until every one is readable (a sentinel increment written after the load is visible and no commit log is dirty). The lag probe writes one increment every 250 ms on its own connection and polls the read port every 10 ms until it is visible. Peak RSS = the largest sum of VmRSS over the supervisor and its children, sampled every 100 ms. Redis: `appendfsync always`, ZINCRBY, same keys; readable at once.');
  const body = lines.join('\n');
  say('');
  say(body);
  if (s.write) await writeSection(BENCHMARKS_MD, section, body);
}

process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});
main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  killAll();
  process.exitCode = 1;
});
