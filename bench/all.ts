// `npm run bench`: countd side by side with Redis sorted sets.
//
// Every system gets the same client shape (50 connections × 16 requests in
// flight), the same key sequences and the same phases:
//   1. durable increments for --seconds (countd write frames vs ZINCRBY, Redis
//      with appendfsync always and again with everysec);
//   2. countd only: the worker drain after the load stops (backlog back to 0,
//      every acknowledged increment readable, checked by reading all back);
//   3. top-100 page reads for --seconds on a read data set written the same
//      way into every system (countd page requests vs ZREVRANGE k 0 99
//      WITHSCORES), after checking a few first pages against the expected answer;
// then peak RSS and bytes on disk per key. A "null server" run first shows
// how far the same generator goes against a server that does no work. Last,
// the concurrency sweep (bench/lib/sweep.ts, once; `npm run bench:sweep`
// repeats it): 1, 2, 8, 50 connections with one write in flight and 50 × 16,
// countd against Redis appendfsync always, beside the disk's floor.
// Prints a table and rewrites its section of BENCHMARKS.md.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { DEFAULT_FIELD_SIZES, readRecordSize } from '../lib/protocol/fields.js';
import { DEFAULT_STORE_MEMORY, storeChildMemoryBudget, storeChildSettingsFor } from '../lib/roles/memory-budget.js';
import { formatSize, parseSize } from '../lib/util/size.js';
import { Client } from '../lib/client/client.js';
import { killAll, track, untrack } from './lib/cleanup.js';
import { BacklogSample, CountdDaemon, frameProtocol, readSetFrameProtocol, startCountd } from './lib/countd.js';
import { KeyDistribution, KeySet, ReadDataSet, SENTINEL_KEY, SENTINEL_KEYSPACE, readKeyspaceName } from './lib/keys.js';
import { cpuSnapshot, formatMachineFacts, machineFacts, otherCpuCores } from './lib/machine.js';
import { PipelineOptions, PipelineResult, runPipeline } from './lib/pipeline.js';
import { dirBytes, processCpuSeconds } from './lib/proc-stats.js';
import { PageStats, pageProtocol, readAllCounts } from './lib/read-load.js';
import { AppendFsync, findRedisServer, redisKeyCount, redisReadProtocol, redisReadSetProtocol, redisWriteProtocol, startRedis } from './lib/redis.js';
import { Cell, Table, formatBytes, markdownTable, ratio, textTable, writeSection } from './lib/report.js';
import { SweepResult, floorLine, runSweep, sweepMarkdown, sweepTable, sweepTargets } from './lib/sweep.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BENCHMARKS_MD = path.resolve(HERE, '../../BENCHMARKS.md');
const SECTION = 'all';

const WRITE_PHASE = 1;
const READ_PHASE = 2;

interface Settings {
  seconds: number;
  connections: number;
  inFlight: number;
  keys: number;
  keyspaces: number;
  distribution: KeyDistribution;
  page: number;
  readKeys: number;
  calibrationSeconds: number;
  drainTimeoutSeconds: number;
  redis: boolean;
  countd: boolean;
  writeMarkdown: boolean;
  output: string;
  countdArgs: string[];
  /** Bytes: `countd start --store-memory`. */
  storeMemory: number;
  sweep: boolean;
  sweepSeconds: number;
}

interface SystemResult {
  name: string;
  writes?: PipelineResult;
  writeServerCpu?: number;
  reads?: PipelineResult;
  readServerCpu?: number;
  /** Average records per page answered (shows the pages were full). */
  pageFill?: number;
  keysHeld?: number;
  incrementsAcked?: number;
  peakRss?: number;
  /** countd: peak RSS per process. */
  rssBreakdown?: string;
  /** countd: peak RSS of the store child (worker + reader), the process whose memory could grow with data. */
  storePeakRss?: number;
  diskBytes?: number;
  diskNote?: string;
  drainSeconds?: number;
  drainVerified?: boolean;
  backlogAtLoadEnd?: number;
  backlogMax?: number;
  /** Dirty logs, the most seen in each second: "load: 0 1 3 … | after: 8 5 2 0". */
  backlogSeries?: string;
  notes: string[];
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', default: '10' },
      connections: { type: 'string', default: '50' },
      'in-flight': { type: 'string', default: '16' },
      keys: { type: 'string', default: '1000000' },
      keyspaces: { type: 'string', default: '1000' },
      distribution: { type: 'string', default: 'uniform' },
      page: { type: 'string', default: '100' },
      'read-keys': { type: 'string', default: '200' },
      'calibration-seconds': { type: 'string', default: '3' },
      'drain-timeout': { type: 'string', default: '60' },
      'no-redis': { type: 'boolean', default: false },
      'no-countd': { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      'no-sweep': { type: 'boolean', default: false },
      'sweep-seconds': { type: 'string', default: '3' },
      output: { type: 'string', default: BENCHMARKS_MD },
      'countd-arg': { type: 'string', multiple: true, default: [] },
      'store-memory': { type: 'string', default: formatSize(DEFAULT_STORE_MEMORY) },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`Usage: npm run bench -- [options]

  --seconds N              length of each write and read phase (default 10)
  --connections N          client connections (default 50)
  --in-flight N            requests in flight per connection (default 16)
  --keys N                 keys in the data set (default 1000000)
  --keyspaces N            keyspaces; key i lives in keyspace i % N (default 1000)
  --distribution D         uniform | zipf (default uniform)
  --page N                 entries per page read (default 100)
  --read-keys N            keys per keyspace of the read data set (default 200)
  --calibration-seconds N  length of each null-server phase (default 3)
  --drain-timeout N        give up waiting for the countd worker after N s (default 60)
  --no-redis               skip Redis
  --no-countd              skip countd
  --no-write               print only; leave BENCHMARKS.md alone
  --no-sweep               skip the concurrency sweep
  --sweep-seconds N        length of each point of the sweep (default 3)
  --output FILE            the Markdown file whose "all" section is rewritten (default BENCHMARKS.md)
  --store-memory SIZE      \`countd start --store-memory\`, and the bound its peak RSS is checked against (default ${formatSize(DEFAULT_STORE_MEMORY)})
  --countd-arg ARG         pass ARG to \`countd start\` (repeatable)
`);
    process.exit(0);
  }
  const num = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got ${v}`);
    return n;
  };
  const storeMemory = parseSize(values['store-memory'] as string);
  if (storeMemory === undefined) throw new Error(`--store-memory must be a size (e.g. 1GiB, 768MiB), got ${values['store-memory']}`);
  const distribution = values.distribution as string;
  if (distribution !== 'uniform' && distribution !== 'zipf') throw new Error(`--distribution must be uniform or zipf`);
  return {
    seconds: num('seconds', values.seconds as string, 0.5),
    connections: Math.floor(num('connections', values.connections as string, 1)),
    inFlight: Math.floor(num('in-flight', values['in-flight'] as string, 1)),
    keys: Math.floor(num('keys', values.keys as string, 1)),
    keyspaces: Math.floor(num('keyspaces', values.keyspaces as string, 1)),
    distribution,
    page: Math.floor(num('page', values.page as string, 1)),
    readKeys: Math.floor(num('read-keys', values['read-keys'] as string, 1)),
    calibrationSeconds: num('calibration-seconds', values['calibration-seconds'] as string, 0),
    drainTimeoutSeconds: num('drain-timeout', values['drain-timeout'] as string, 1),
    redis: !values['no-redis'],
    countd: !values['no-countd'],
    writeMarkdown: !values['no-write'],
    output: path.resolve(values.output as string),
    countdArgs: values['countd-arg'] as string[],
    storeMemory,
    sweep: !values['no-sweep'],
    sweepSeconds: num('sweep-seconds', values['sweep-seconds'] as string, 0.5),
  };
}

function say(line: string): void {
  process.stdout.write(line + '\n');
}

function loadLine(label: string, r: PipelineResult, serverCpu?: number): string {
  const server = serverCpu === undefined ? '' : `, server CPU ${serverCpu.toFixed(2)} cores`;
  return `  ${label}: ${Math.round(r.perSecond).toLocaleString('en-US')}/s over ${r.seconds.toFixed(1)} s (${r.inWindow.toLocaleString('en-US')} in window), client CPU ${r.clientCpuCores.toFixed(2)} cores${server}`;
}

// ---------------------------------------------------------------- null server

async function runNullServer(s: Settings, keys: KeySet): Promise<SystemResult> {
  const script = path.join(HERE, 'lib', 'null-server.js');
  const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const entry = track({ what: 'null server', pid: child.pid! });
  try {
    const ports = await new Promise<{ writePort: number; readPort: number }>((resolve, reject) => {
      let text = '';
      child.stdout!.on('data', (d: Buffer) => {
        text += d.toString();
        const nl = text.indexOf('\n');
        if (nl >= 0) resolve(JSON.parse(text.slice(0, nl)) as { writePort: number; readPort: number });
      });
      child.once('exit', (code) => reject(new Error(`null server exited (${code})`)));
    });
    const opts = (port: number): PipelineOptions => ({ port, connections: s.connections, inFlight: s.inFlight, seconds: s.calibrationSeconds });
    const cpu0 = processCpuSeconds(child.pid!);
    keys.resetSeen();
    const writes = await runPipeline(frameProtocol(keys, WRITE_PHASE, s.connections, DEFAULT_FIELD_SIZES), opts(ports.writePort));
    const cpu1 = processCpuSeconds(child.pid!);
    const stats: PageStats = { records: 0 };
    const reads = await runPipeline(pageProtocol(keys, READ_PHASE, s.connections, s.page, DEFAULT_FIELD_SIZES, stats), opts(ports.readPort));
    const cpu2 = processCpuSeconds(child.pid!);
    const result: SystemResult = {
      name: 'null server',
      writes,
      writeServerCpu: (cpu1 - cpu0) / writes.seconds,
      reads,
      readServerCpu: (cpu2 - cpu1) / reads.seconds,
      notes: [],
    };
    say(loadLine('writes (WIN per frame, no work)', writes, result.writeServerCpu));
    say(loadLine('reads (fixed 100-record page)', reads, result.readServerCpu));
    return result;
  } finally {
    child.kill('SIGTERM');
    untrack(entry);
  }
}

// ---------------------------------------------------------------- countd

/**
 * Wait until the worker has applied everything written so far: write one
 * sentinel increment, then poll until no commit log is dirty and the
 * sentinel's count is `expected`. False on timeout.
 */
async function waitApplied(daemon: CountdDaemon, client: Client, expected: bigint, deadline: number): Promise<boolean> {
  await client.increment(SENTINEL_KEYSPACE, SENTINEL_KEY, 1);
  for (;;) {
    if ((await daemon.dirtyLogs()) === 0 && (await client.get(SENTINEL_KEYSPACE, SENTINEL_KEY)) === expected) return true;
    if (performance.now() > deadline) return false;
    await sleep(25);
  }
}

/**
 * Time from the end of the load until every acknowledged increment is
 * readable: wait for no dirty log and the sentinel (written right after the
 * load) to be visible, then confirm by reading every count back; if the sum
 * is short, keep reading back until it matches.
 */
async function measureDrain(daemon: CountdDaemon, client: Client, s: Settings, keys: KeySet, acked: number, loadEnd: number): Promise<{ seconds?: number; verified: boolean; held: number }> {
  const deadline = loadEnd + s.drainTimeoutSeconds * 1000;
  if (!(await waitApplied(daemon, client, 1n, deadline))) return { verified: false, held: -1 };
  let readyAt = performance.now();
  for (;;) {
    const back = await readAllCounts(daemon.readPort, keys);
    if (back.sum === BigInt(acked)) return { seconds: (readyAt - loadEnd) / 1000, verified: true, held: back.keys };
    say(`  read back ${back.sum} of ${acked} increments; waiting`);
    if (back.sum > BigInt(acked) || performance.now() > deadline) return { seconds: (readyAt - loadEnd) / 1000, verified: false, held: back.keys };
    await sleep(100);
    readyAt = performance.now();
  }
}

/** The most dirty logs seen in each second of [from, to), as "a b c". */
function perSecondMax(samples: BacklogSample[], from: number, to: number): string {
  const out: number[] = [];
  for (let t = from; t < to; t += 1000) {
    const inSecond = samples.filter((b) => b.at >= t && b.at < Math.min(t + 1000, to)).map((b) => b.dirty);
    if (inSecond.length) out.push(Math.max(...inSecond));
  }
  return out.join(' ');
}

function backlogSeries(samples: BacklogSample[], writeStart: number, loadEnd: number, drainEnd: number): string {
  return `during the load: ${perSecondMax(samples, writeStart, loadEnd) || '–'} | after it: ${perSecondMax(samples, loadEnd, drainEnd) || '–'}`;
}

/** The top `n` (count, key) of read keyspace j, computed from the data set: the answer both systems must give. */
function expectedTop(set: ReadDataSet, j: number, n: number): { count: number; key: string }[] {
  const entries: { count: number; key: string }[] = [];
  for (let i = j; i < set.size; i += set.keyspaces) entries.push({ count: set.count(i), key: set.key(i) });
  entries.sort((x, y) => y.count - x.count || Buffer.compare(Buffer.from(x.key), Buffer.from(y.key)));
  return entries.slice(0, n);
}

/** Keyspaces whose first page is checked against expectedTop in each system. */
function checkedKeyspaces(set: ReadDataSet): number[] {
  return [...new Set([0, Math.floor(set.keyspaces / 2), set.keyspaces - 1])];
}

async function runCountd(s: Settings, keys: KeySet, readSet: ReadDataSet): Promise<SystemResult> {
  const daemon = await startCountd({ extraArgs: ['--store-memory', String(s.storeMemory), ...s.countdArgs] });
  const result: SystemResult = { name: 'countd', notes: [] };
  const client = new Client({ host: '127.0.0.1', writePort: daemon.writePort, readPort: daemon.readPort });
  try {
    say(`  daemon pid ${daemon.pid}, write port ${daemon.writePort}, read port ${daemon.readPort}, data dir ${daemon.dataDir}`);
    const opts = (port: number): PipelineOptions => ({ port, connections: s.connections, inFlight: s.inFlight, seconds: s.seconds });

    // 1. Durable increments.
    keys.resetSeen();
    let cpu = daemon.cpuSeconds();
    const writeStart = performance.now();
    result.writes = await runPipeline(frameProtocol(keys, WRITE_PHASE, s.connections, DEFAULT_FIELD_SIZES), opts(daemon.writePort));
    const loadEnd = performance.now();
    result.writeServerCpu = (daemon.cpuSeconds() - cpu) / result.writes.seconds;
    result.incrementsAcked = result.writes.total;
    say(loadLine('durable increments (write frames)', result.writes, result.writeServerCpu));

    // 2. Worker drain.
    result.backlogAtLoadEnd = await daemon.dirtyLogs();
    const drain = await measureDrain(daemon, client, s, keys, result.writes.total, loadEnd);
    const drainEnd = performance.now();
    const during = daemon.backlog.filter((b) => b.at >= writeStart && b.at <= loadEnd);
    result.backlogMax = Math.max(result.backlogAtLoadEnd, ...during.map((b) => b.dirty));
    result.backlogSeries = backlogSeries(daemon.backlog, writeStart, loadEnd, drainEnd);
    result.drainSeconds = drain.seconds;
    result.drainVerified = drain.verified;
    result.keysHeld = drain.held >= 0 ? drain.held : keys.distinct;
    say(`  dirty logs, most per second: ${result.backlogSeries}`);
    say(
      `  worker: backlog max ${result.backlogMax} dirty logs, ${result.backlogAtLoadEnd} at load end; ` +
        (drain.seconds === undefined
          ? `NOT drained within ${s.drainTimeoutSeconds} s`
          : `all ${result.incrementsAcked.toLocaleString('en-US')} increments readable ${drain.seconds.toFixed(2)} s after the load (${drain.verified ? 'verified by reading every count back' : 'read-back sum DID NOT MATCH'})`),
    );
    result.diskBytes = await dirBytes(daemon.dataDir, 'allocated');
    result.diskNote = 'du of the data dir (commit-log pool + LevelDB)';
    say(`  data dir ${formatBytes(result.diskBytes)} for ${result.keysHeld.toLocaleString('en-US')} keys`);

    // 3. Pages of the read data set.
    const loadStart = performance.now();
    await runPipeline(readSetFrameProtocol(readSet, DEFAULT_FIELD_SIZES), { ...opts(daemon.writePort), seconds: Infinity, requests: readSet.size });
    if (!(await waitApplied(daemon, client, 2n, performance.now() + s.drainTimeoutSeconds * 1000))) {
      throw new Error(`the read data set was not applied within ${s.drainTimeoutSeconds} s`);
    }
    say(`  read data set written and applied in ${((performance.now() - loadStart) / 1000).toFixed(1)} s`);
    for (const j of checkedKeyspaces(readSet)) {
      const got = (await client.page(readKeyspaceName(j), 0, s.page)).map((e) => ({ count: Number(e.count), key: e.key.toString('latin1') }));
      assert.deepEqual(got, expectedTop(readSet, j, s.page), `countd's first page of ${readKeyspaceName(j)} is wrong`);
    }
    const stats: PageStats = { records: 0 };
    cpu = daemon.cpuSeconds();
    result.reads = await runPipeline(pageProtocol(keys, READ_PHASE, s.connections, s.page, DEFAULT_FIELD_SIZES, stats), opts(daemon.readPort));
    result.readServerCpu = (daemon.cpuSeconds() - cpu) / result.reads.seconds;
    result.pageFill = stats.records / Math.max(1, result.reads.total);
    say(loadLine(`top-${s.page} pages`, result.reads, result.readServerCpu) + `, ${result.pageFill.toFixed(1)} entries per page`);

    result.peakRss = daemon.peakRss();
    const byProcess = daemon.peakRssByProcess();
    result.rssBreakdown = byProcess.map((p) => `${p.role} ${formatBytes(p.bytes)}`).join(', ');
    result.storePeakRss = byProcess.find((p) => p.role === 'store')?.bytes;
    say(`  peak RSS ${formatBytes(result.peakRss)}: ${result.rssBreakdown}`);
  } finally {
    await client.close().catch(() => {});
    await daemon.stop();
  }
  return result;
}

// ---------------------------------------------------------------- Redis

async function runRedis(s: Settings, keys: KeySet, readSet: ReadDataSet, binary: string, fsync: AppendFsync): Promise<SystemResult> {
  const server = await startRedis(binary, fsync);
  const result: SystemResult = { name: fsync === 'always' ? 'Redis always' : 'Redis everysec', notes: [] };
  try {
    say(`  redis-server pid ${server.pid}, port ${server.port}, dir ${server.dir}, appendonly yes, appendfsync ${fsync}, save ''`);
    const opts: PipelineOptions = { port: server.port, connections: s.connections, inFlight: s.inFlight, seconds: s.seconds };

    // 1. Durable increments.
    keys.resetSeen();
    let cpu = processCpuSeconds(server.pid);
    result.writes = await runPipeline(redisWriteProtocol(keys, WRITE_PHASE, s.connections), opts);
    result.writeServerCpu = (processCpuSeconds(server.pid) - cpu) / result.writes.seconds;
    result.incrementsAcked = result.writes.total;
    say(loadLine('durable increments (ZINCRBY)', result.writes, result.writeServerCpu));
    result.keysHeld = await redisKeyCount(server, keys);
    result.diskBytes = await server.aofBytes();
    result.diskNote = 'AOF files (appendonlydir)';
    say(`  AOF ${formatBytes(result.diskBytes)} for ${result.keysHeld.toLocaleString('en-US')} keys`);

    // 3. Pages of the read data set.
    await runPipeline(redisReadSetProtocol(readSet), { ...opts, seconds: Infinity, requests: readSet.size });
    for (const j of checkedKeyspaces(readSet)) {
      const reply = (await server.command('ZREVRANGE', readKeyspaceName(j), 0, s.page - 1, 'WITHSCORES')) as string[];
      const counts = reply.filter((_, i) => i % 2 === 1).map(Number);
      assert.deepEqual(counts, expectedTop(readSet, j, s.page).map((e) => e.count), `Redis's first page of ${readKeyspaceName(j)} is wrong`);
    }
    cpu = processCpuSeconds(server.pid);
    result.reads = await runPipeline(redisReadProtocol(keys, READ_PHASE, s.connections, s.page), opts);
    result.readServerCpu = (processCpuSeconds(server.pid) - cpu) / result.reads.seconds;
    say(loadLine(`ZREVRANGE 0 ${s.page - 1} WITHSCORES`, result.reads, result.readServerCpu));

    result.peakRss = server.peakRss();
    say(`  peak RSS ${formatBytes(result.peakRss)}`);
  } finally {
    await server.stop();
  }
  return result;
}

// ---------------------------------------------------------------- report

function comparisonTable(s: Settings, results: SystemResult[]): Table {
  const c = results.find((r) => r.name === 'countd');
  const always = results.find((r) => r.name === 'Redis always');
  const everysec = results.find((r) => r.name === 'Redis everysec');
  const nul = results.find((r) => r.name === 'null server');
  const row = (label: string, get: (r: SystemResult) => number | undefined, fmt: (n: number) => Cell = (n) => n): Cell[] => {
    const cv = c ? get(c) : undefined;
    const av = always ? get(always) : undefined;
    const ev = everysec ? get(everysec) : undefined;
    const nv = nul ? get(nul) : undefined;
    const f = (v: number | undefined): Cell => (v === undefined ? undefined : fmt(v));
    return [label, f(cv), f(av), f(ev), ratio(cv, av), ratio(cv, ev), f(nv)];
  };
  const perKey = (r: SystemResult): number | undefined => (r.diskBytes !== undefined && r.keysHeld ? r.diskBytes / r.keysHeld : undefined);
  return {
    headers: ['', 'countd', 'Redis always', 'Redis everysec', 'countd / always', 'countd / everysec', 'null server'],
    rows: [
      row('durable increments/s', (r) => r.writes?.perSecond),
      row(`top-${s.page} page reads/s`, (r) => r.reads?.perSecond),
      row('keys held after the write phase', (r) => r.keysHeld),
      row('peak RSS of the server (MiB)', (r) => (r.peakRss === undefined ? undefined : r.peakRss / 2 ** 20)),
      row('bytes on disk per key', perKey),
      row('server CPU, writes (cores)', (r) => r.writeServerCpu),
      row('server CPU, reads (cores)', (r) => r.readServerCpu),
      row('client CPU, writes (cores)', (r) => r.writes?.clientCpuCores),
      row('client CPU, reads (cores)', (r) => r.reads?.clientCpuCores),
    ],
  };
}

function targetsTable(s: Settings, results: SystemResult[]): Table {
  const c = results.find((r) => r.name === 'countd');
  const always = results.find((r) => r.name === 'Redis always');
  const everysec = results.find((r) => r.name === 'Redis everysec');
  const verdict = (ok: boolean | undefined): string => (ok === undefined ? 'not measured' : ok ? 'met' : 'NOT met');
  const w = c?.writes && always?.writes ? c.writes.perSecond / always.writes.perSecond : undefined;
  const rA = c?.reads && always?.reads ? c.reads.perSecond / always.reads.perSecond : undefined;
  const rE = c?.reads && everysec?.reads ? c.reads.perSecond / everysec.reads.perSecond : undefined;
  const rMin = rA === undefined ? rE : rE === undefined ? rA : Math.min(rA, rE);
  return {
    headers: ['target (issue)', 'measured', 'verdict'],
    rows: [
      ['durable writes ≥ 1.5x Redis appendfsync always', w === undefined ? undefined : `${w.toFixed(2)}x`, verdict(w === undefined ? undefined : w >= 1.5)],
      ['top-100 reads ≥ 1x Redis', rMin === undefined ? undefined : `${rMin.toFixed(2)}x (lower of the two)`, verdict(rMin === undefined ? undefined : rMin >= 1)],
      [
        'backlog back to 0 within 10 s after load stops',
        c?.drainSeconds === undefined ? (c ? 'not drained' : undefined) : `${c.drainSeconds.toFixed(2)} s${c.drainVerified ? ', verified' : ', read-back mismatch'}`,
        verdict(c ? c.drainSeconds !== undefined && c.drainSeconds <= 10 && c.drainVerified === true : undefined),
      ],
      [
        'countd memory bounded by settings',
        c?.storePeakRss === undefined ? undefined : `store child peak RSS ${formatBytes(c.storePeakRss)}, --store-memory ${formatBytes(s.storeMemory)} (${c.rssBreakdown})`,
        verdict(c?.storePeakRss === undefined ? undefined : c.storePeakRss <= s.storeMemory),
      ],
    ],
    leftColumns: [0, 1, 2],
  };
}

/** Share of a ceiling at or above which a phase may have been limited by the generator. */
const NEAR_CEILING = 0.8;

/** Each measured phase against the generator's ceiling (its rate against the null server). */
function generatorTable(results: SystemResult[]): Table {
  const nul = results.find((r) => r.name === 'null server');
  const rows: Table['rows'] = [];
  for (const r of results) {
    for (const [phase, res, ceiling] of [
      ['writes', r.writes, nul?.writes],
      ['reads', r.reads, nul?.reads],
    ] as const) {
      if (!res) continue;
      const share = ceiling && r !== nul ? res.perSecond / ceiling.perSecond : undefined;
      const verdict =
        r === nul ? 'the ceiling' : share === undefined ? 'no ceiling measured' : share < NEAR_CEILING ? 'no' : 'possibly: at least this fast';
      rows.push([`${r.name} ${phase}`, Math.round(res.perSecond), share === undefined ? undefined : `${Math.round(share * 100)}%`, res.clientCpuCores, verdict]);
    }
  }
  return { headers: ['phase', 'rate /s', 'share of the ceiling', 'client CPU (cores)', 'limited by the generator?'], rows, leftColumns: [0, 4] };
}

function markdownBody(s: Settings, keys: KeySet, readSet: ReadDataSet, facts: string[], results: SystemResult[], skipped: string[], started: Date, elapsed: number): string {
  const c = results.find((r) => r.name === 'countd');
  const nul = results.find((r) => r.name === 'null server');
  const lines = [
    '## countd vs Redis sorted sets (`npm run bench`)',
    '',
    `Run ${started.toISOString().replace(/\.\d+Z$/, 'Z')}, ${elapsed.toFixed(0)} s in all, with \`npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}\`.`,
    '',
    '### Machine',
    '',
    ...facts.map((f) => `- ${f}`),
    '',
    '### Method',
    '',
    `- Client shape, the same for every system: ${s.connections} TCP connections, each keeping ${s.inFlight} requests in flight (a connection sends as many new requests as replies it gets, in one write). One Node.js client process, on the same machine as the server.`,
    `- Data: ${keys.describe()}. Each connection draws from its own seeded generator, so every system receives the same key sequences.`,
    `- Writes, ${s.seconds} s: countd write frames (520 bytes, increment 1), acknowledged \`WIN\` once fsynced; Redis \`ZINCRBY ks<i%${s.keyspaces}> 1 key<i>\`. Rate = replies received within the window / window.`,
    `- Redis: a private \`redis-server\` started by the benchmark on 127.0.0.1 (free port, temp dir, \`--save ''\`, \`appendonly yes\`), once with \`appendfsync always\` (an fsync before replying: the same durability as countd's \`WIN\`) and once with \`appendfsync everysec\` (up to 1 s of acknowledged writes lost on a crash).`,
    `- countd: the real daemon, \`bin/countd start --listen 127.0.0.1 --write-port 0 --read-port 0\`${s.countdArgs.length ? ' ' + s.countdArgs.join(' ') : ''} in a child process (supervisor + writer child + store child), ports read from \`daemon.json\`.`,
    `- Drain (countd): the dirty-log backlog (commit logs in mode 0400) is sampled every 200 ms. When the load stops, one sentinel increment is written; the drain time runs from the last acknowledgement until no log is dirty and the sentinel is readable, and is then confirmed by reading every keyspace back and checking that the counts sum to the number of acknowledged increments.`,
    `- Reads, ${s.seconds} s, on the same data in every system: before the read phase each system is given the read data set (${readSet.describe()}; ${readSet.size.toLocaleString('en-US')} increments through its normal write path, countd frames / ZINCRBY), kept apart from the write phase's keyspaces so that it does not depend on how fast a system wrote. countd page requests (272 bytes, offset 0, length ${s.page}) vs \`ZREVRANGE rks<j> ${'0'} ${s.page - 1} WITHSCORES\`, keyspace j uniform. The first page of ${checkedKeyspaces(readSet).length} keyspaces is checked against the expected answer in each system before the phase.`,
    `- Peak RSS over the whole run: VmHWM from /proc/<pid>/status, summed over countd's processes (sampled every 200 ms so every child is counted); Redis: the one redis-server process. Bytes on disk per key, after the write phase (and, for countd, its drain): countd = allocated bytes of the data directory (preallocated commit-log pool + LevelDB, as du counts them) / keys held (read back); Redis = size of its AOF files / keys held (ZCARD summed). Redis's default AOF rewrite policy was left on.`,
    `- Server CPU: utime + stime from /proc/<pid>/stat over the phase, in cores.`,
    '',
    '### Results',
    '',
    markdownTable(comparisonTable(s, results)),
    '',
    'Ratios are countd / Redis: above 1x is better for rates, below 1x is better for memory and disk.',
    ...(c
      ? [
          '',
          `countd worker: backlog at most ${c.backlogMax} dirty commit logs during the write phase, ${c.backlogAtLoadEnd} when the load stopped (most per second: ${c.backlogSeries}); ` +
            (c.drainSeconds === undefined
              ? `not drained within ${s.drainTimeoutSeconds} s.`
              : `every acknowledged increment (${c.incrementsAcked?.toLocaleString('en-US')}) readable ${c.drainSeconds.toFixed(2)} s after the load stopped${c.drainVerified ? ' (sum of counts read back = acknowledged increments)' : ' (read-back sum did NOT match)'}.`),
        ]
      : []),
    ...(skipped.length ? ['', ...skipped.map((x) => `Skipped: ${x}`)] : []),
    '',
    '### Targets',
    '',
    markdownTable(targetsTable(s, results)),
    '',
    `Memory: the store child (worker + reader) is the process whose memory could grow with the data; \`countd start --store-memory ${formatBytes(s.storeMemory)}\` sets its parts (\`lib/roles/memory-budget.ts\`): ${storeChildMemoryBudget(storeChildSettingsFor(s.storeMemory)).parts.map(([what, bytes]) => `${what} ${formatBytes(bytes)}`).join(', ')}. None of them depends on the number of keys or keyspaces. The writer and the supervisor hold no per-key state (frames in flight are bounded by the writer's pending-frame limit).`,
    '',
    '### Is the load generator the bottleneck?',
    '',
    nul
      ? `The ceiling of the generator is its rate against the null server (${s.calibrationSeconds} s each): a child process that answers \`WIN\` per 520-byte frame and a fixed 100-entry page per 272-byte request, without validation or disk. A phase far below the ceiling was not limited by the generator; a phase near it may have been, and then the system is at least as fast as measured (its ratios are lower bounds). A countd page of ${s.page} entries is ${(8 + s.page * readRecordSize(DEFAULT_FIELD_SIZES)).toLocaleString('en-US')} bytes (fixed-size keys, docs/protocol.md), so the page ceiling is mostly the kernel copying those bytes through loopback at both ends.`
      : 'Null-server calibration was not run: the phases below have no ceiling to compare with.',
    '',
    markdownTable(generatorTable(results)),
    '',
    `The machine has ${facts[0]?.match(/(\d+) cores/)?.[1] ?? '?'} cores shared by the client and the server, so the client's CPU is CPU the server did not get; the server CPU rows above show how much each server used.`,
  ];
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const s = parseSettings(process.argv.slice(2));
  const started = new Date();
  const t0 = performance.now();
  const cpu0 = cpuSnapshot();
  const redisBinary = s.redis ? findRedisServer() : undefined;
  const skipped: string[] = [];
  if (!s.redis) skipped.push('Redis (--no-redis).');
  else if (!redisBinary) {
    skipped.push('Redis: redis-server is not on the PATH (install it, e.g. `apt-get install redis-server`).');
    say('note: redis-server is not on the PATH; skipping Redis (install it, e.g. `apt-get install redis-server`)');
  }
  if (!s.countd) skipped.push('countd (--no-countd).');

  const facts = formatMachineFacts(machineFacts(os.tmpdir(), redisBinary));
  say('machine:');
  for (const f of facts) say(`  ${f}`);
  const keys = new KeySet({ keys: s.keys, keyspaces: s.keyspaces, distribution: s.distribution });
  const readSet = new ReadDataSet(s.keyspaces, s.readKeys);
  say(`data: ${keys.describe()}`);
  say(`read data set: ${readSet.describe()}`);
  say(`client: ${s.connections} connections × ${s.inFlight} in flight; phases of ${s.seconds} s`);

  const results: SystemResult[] = [];
  if (s.calibrationSeconds > 0) {
    say('\nnull server (generator calibration):');
    results.push(await runNullServer(s, keys));
  }
  if (s.countd) {
    say('\ncountd:');
    try {
      results.push(await runCountd(s, keys, readSet));
    } catch (err) {
      const msg = (err as Error).message;
      say(`  countd run failed: ${msg}`);
      skipped.push(`countd: the run failed: ${msg.split('\n')[0]}`);
    }
  }
  if (redisBinary) {
    for (const fsync of ['always', 'everysec'] as const) {
      say(`\nRedis, appendfsync ${fsync}:`);
      results.push(await runRedis(s, keys, readSet, redisBinary, fsync));
    }
  }

  let sweep: SweepResult | undefined;
  if (s.sweep && s.countd) {
    say('\nconcurrency sweep (countd vs Redis appendfsync always):');
    sweep = await runSweep({ seconds: s.sweepSeconds, repeat: 1, redisBinary, countdArgs: s.countdArgs, log: say });
  }

  const elapsed = (performance.now() - t0) / 1000;
  const other = otherCpuCores(cpu0, cpuSnapshot());
  const cores = os.availableParallelism();
  facts.push(
    `Other work on the machine during the run: ${other.toFixed(2)} cores on average (busy CPU from /proc/stat minus this benchmark's processes)` +
      (other > 0.2 ? ` — the figures are skewed by it; rerun on a quiet machine` : ''),
  );
  say(`\nother work on the machine during the run: ${other.toFixed(2)} of ${cores} cores on average${other > 0.2 ? ' (figures skewed; rerun on a quiet machine)' : ''}`);
  say('');
  say(textTable(comparisonTable(s, results)));
  say('');
  say(textTable(targetsTable(s, results)));
  say('');
  say(textTable(generatorTable(results)));
  if (sweep) {
    say(`\nfloor: ${floorLine(sweep)}`);
    say(textTable(sweepTable(sweep)));
    say('');
    say(textTable(sweepTargets(sweep)));
  }
  if (s.writeMarkdown) {
    let body = markdownBody(s, keys, readSet, facts, results, skipped, started, elapsed);
    if (sweep) body += `\n\n### Concurrency sweep\n\n${sweepMarkdown(sweep, { seconds: s.sweepSeconds, repeat: 1 })}`;
    await writeSection(s.output, SECTION, body);
    say(`\nwrote the "${SECTION}" section of ${s.output}`);
  }
  say(`done in ${elapsed.toFixed(0)} s`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

main().then(
  () => {
    killAll();
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    killAll();
    process.exit(1);
  },
);
