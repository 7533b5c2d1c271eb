// npm run bench:idem — what idempotence and tokens cost (issue 16).
//
// 1. Throughput: the real daemon (`countd start`), N connections each keeping
//    M frames in flight, in three modes, alternated round by round so that
//    the load of the machine falls on each alike:
//      plain     520-byte frames, 3-byte WINs (the original protocol)
//      v2        version-2 op frames without producer, 24-byte replies
//      producer  version-2 op frames of an idempotent producer per connection
//                (producer = connection, sequences 0, 1, 2, …)
//    Printed per round and as min … max, with producer / plain (target >= 90%).
// 2. Read-your-writes at light load, one client, one write at a time:
//      visible   incrementAck({ visible: true }) (prompt hand-over): time to readable
//      token     incrementAck() then get({ after: token }): from the ack to the answer
//    p50 / p99 / max over --samples writes (target <= 1.2 s).
// 3. The same under full load (issue 16 against issue 14's lag target, p99
//    <= 2 s): while N x M plain frames run for --loaded-seconds, one client
//    writes visible and token writes one after the other (--loaded-seconds 0: skip).
// Each throughput line also splits the daemon's CPU per write by process
// (writer child, store child), where the cost of a mode shows first.
//
// Flags: --seconds 5 (per mode per round), --rounds 3, --connections 50,
// --in-flight 16, --samples 50, --loaded-seconds 20, --countd-arg X
// (repeatable), --modes plain,v2,producer.

import { readFileSync } from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Client } from '../lib/client/client.js';
import { DEFAULT_FIELD_SIZES, writeFrameSize } from '../lib/protocol/fields.js';
import { encodeFrame } from '../lib/protocol/write-frame.js';
import { REPLY2_SIZE, encodeHello, encodeOpFrame, opFrameSize } from '../lib/protocol/write-ops.js';
import { startCountd } from './lib/countd.js';
import { processCpuSeconds, processTree } from './lib/proc-stats.js';

type Mode = 'plain' | 'v2' | 'producer';
const sizes = DEFAULT_FIELD_SIZES;
const KEYS = 1000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One connection's frames: `fill(buf, n)` writes the next n frames into buf. */
function frameSource(mode: Mode, connection: number): { size: number; fill(buf: Buffer, n: number): void } {
  let next = 0;
  if (mode === 'plain') {
    const size = writeFrameSize(sizes);
    const pool = Buffer.concat(Array.from({ length: KEYS }, (_, i) => encodeFrame(1, `ks${connection % 10}`, `key${i}`, sizes)));
    return { size, fill: (buf, n) => { for (let i = 0; i < n; i++, next++) pool.copy(buf, i * size, (next % KEYS) * size, (next % KEYS + 1) * size); } };
  }
  const size = opFrameSize(sizes);
  const producer = mode === 'producer' ? { producer: BigInt(connection + 1), epoch: 1, sequence: 0n } : undefined;
  const pool = Buffer.concat(Array.from({ length: KEYS }, (_, i) => encodeOpFrame('increment', 1, `ks${connection % 10}`, `key${i}`, sizes, producer === undefined ? {} : { producer })));
  return {
    size,
    fill: (buf, n) => {
      for (let i = 0; i < n; i++, next++) {
        pool.copy(buf, i * size, (next % KEYS) * size, (next % KEYS + 1) * size);
        if (producer !== undefined) buf.writeUInt32LE(next, i * size + 32); // sequence (below 2^32 here; the high word stays 0)
      }
    },
  };
}

interface ModeRun {
  /** WINs per second. */
  rate: number;
  /** CPU of all the daemon's processes per WIN, µs (NaN when the daemon is not ours). */
  cpuUs: number;
  /** The same split: the writer child's and the store child's CPU per WIN, µs. */
  writerUs: number;
  storeUs: number;
  /** Seconds of the window in which flow control held acknowledgements or stopped the writer. */
  held: number;
}

/** CPU seconds so far of the daemon's children by role (their fork argument: writer, store). */
function cpuByRole(daemon: Daemon): Record<string, number> {
  const out: Record<string, number> = {};
  if (daemon.pid === undefined) return out;
  for (const p of processTree(daemon.pid)) {
    let role = 'other';
    try {
      const args = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const script = args.findIndex((a) => a.endsWith('.js'));
      role = (script >= 0 ? args[script + 1] : undefined) ?? 'other';
    } catch {
      continue;
    }
    out[role] = (out[role] ?? 0) + processCpuSeconds(p);
  }
  return out;
}

/** Run `mode` for `seconds` on a fresh set of connections. */
async function throughput(port: number, mode: Mode, connections: number, inFlight: number, seconds: number, round: number, daemon: Daemon): Promise<ModeRun> {
  let acked = 0;
  let failed = 0;
  let sending = true;
  const replySize = mode === 'plain' ? 3 : REPLY2_SIZE;
  const done: Array<Promise<void>> = [];
  for (let c = 0; c < connections; c++) {
    // Each round's producers are new ids (round × 1000 + connection): sequences start at 0.
    const src = frameSource(mode, round * 1000 + c);
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    if (mode !== 'plain') {
      socket.write(encodeHello(sizes, 2));
      await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    }
    let outstanding = 0;
    let partial = 0;
    const send = (n: number): void => {
      const buf = Buffer.allocUnsafe(n * src.size);
      src.fill(buf, n);
      outstanding += n;
      socket.write(buf);
    };
    done.push(
      new Promise<void>((resolve) => {
        socket.on('data', (chunk: Buffer) => {
          let replies = 0;
          for (let i = 0; i < chunk.length; ) {
            if (partial === 0) {
              if (chunk[i] === 0x57) acked++;
              else failed++;
            }
            const take = Math.min(replySize - partial, chunk.length - i);
            i += take;
            partial = (partial + take) % replySize;
            if (partial === 0) replies++;
          }
          outstanding -= replies;
          if (sending) send(replies);
          else if (outstanding === 0) socket.end();
        });
        socket.on('close', () => resolve());
        socket.on('error', () => resolve());
      }),
    );
    send(inFlight);
  }
  await sleep(1000); // warm-up
  const before = acked;
  const cpu0 = daemon.cpuSeconds();
  const roles0 = cpuByRole(daemon);
  const flow0 = daemon.flowSeconds();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const rate = ((acked - before) * 1000) / (performance.now() - t0);
  const cpuUs = ((daemon.cpuSeconds() - cpu0) * 1e6) / (acked - before);
  const roles1 = cpuByRole(daemon);
  const roleUs = (role: string): number => (((roles1[role] ?? NaN) - (roles0[role] ?? NaN)) * 1e6) / (acked - before);
  const flow1 = daemon.flowSeconds();
  const held = flow1.delayed + flow1.stopped - flow0.delayed - flow0.stopped;
  sending = false;
  await Promise.race([Promise.all(done), sleep(5000)]);
  if (failed > 0) throw new Error(`${mode}: ${failed} replies other than WIN`);
  return { rate, cpuUs, writerUs: roleUs('writer'), storeUs: roleUs('store'), held };
}

type Daemon = { pid?: number; writePort: number; readPort: number; stop(): Promise<void>; cpuSeconds(): number; flowSeconds(): { delayed: number; stopped: number } };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function latencyLine(name: string, ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  if (s.length === 0) return `${name.padEnd(9)} no write finished in the window`;
  return `${name.padEnd(9)} p50 ${percentile(s, 50).toFixed(0)} ms, p99 ${percentile(s, 99).toFixed(0)} ms, max ${s[s.length - 1]!.toFixed(0)} ms (${s.length} writes)`;
}

/**
 * While `connections` x `inFlight` plain frames run for `seconds` (after the
 * load's 1 s warm-up), one client alternates a visible write and a token
 * read: the time of each, as at light load.
 */
async function underLoad(client: Client, daemon: Daemon, connections: number, inFlight: number, seconds: number): Promise<{ load: ModeRun; visible: number[]; token: number[] }> {
  const visible: number[] = [];
  const token: number[] = [];
  let loading = true;
  const load = throughput(daemon.writePort, 'plain', connections, inFlight, seconds, 99, daemon).finally(() => (loading = false));
  await sleep(1500);
  for (let i = 0; loading; i++) {
    const t0 = performance.now();
    await client.incrementAck('loaded', `v${i % 10}`, 1, { visible: true });
    if (!loading) break;
    visible.push(performance.now() - t0);
    const ack = await client.incrementAck('loaded', `t${i % 10}`, 1);
    const t1 = performance.now();
    await client.get('loaded', `t${i % 10}`, { after: ack.token });
    if (!loading) break;
    token.push(performance.now() - t1);
  }
  return { load: await load, visible, token };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      'in-flight': { type: 'string', default: '16' },
      samples: { type: 'string', default: '50' },
      'countd-arg': { type: 'string', multiple: true, default: [] },
      modes: { type: 'string', default: 'plain,v2,producer' },
      'write-port': { type: 'string' },
      'loaded-seconds': { type: 'string', default: '20' },
    },
  });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const connections = Number(values.connections);
  const inFlight = Number(values['in-flight']);
  const samples = Number(values.samples);
  // --write-port: load a server already running (throughput only; for profiling it).
  const countd: Daemon =
    values['write-port'] !== undefined
      ? { writePort: Number(values['write-port']), readPort: 0, stop: async () => {}, cpuSeconds: () => NaN, flowSeconds: () => ({ delayed: 0, stopped: 0 }) }
      : await startCountd({ extraArgs: values['countd-arg'] as string[] });
  try {
    process.stdout.write(`bench:idem: ${connections} connections x ${inFlight} in flight, ${seconds} s per mode, ${rounds} rounds (modes alternated)\n`);
    const runs: Record<Mode, ModeRun[]> = { plain: [], v2: [], producer: [] };
    const modes = (values.modes as string).split(',') as Mode[];
    for (let r = 0; r < rounds; r++) {
      for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) {
        const run = await throughput(countd.writePort, mode, connections, inFlight, seconds, r, countd);
        runs[mode].push(run);
        process.stdout.write(`  round ${r + 1} ${mode.padEnd(8)} ${Math.round(run.rate).toLocaleString('en-US')} writes/s, daemon CPU ${run.cpuUs.toFixed(1)} µs/write (writer ${run.writerUs.toFixed(1)}, store ${run.storeUs.toFixed(1)}), flow control held ${run.held.toFixed(2)} s of ${seconds} s\n`);
      }
    }
    const range = (xs: number[], digits = 0): string => (xs.length === 0 ? '–' : `${Math.min(...xs).toLocaleString('en-US', { maximumFractionDigits: digits })} … ${Math.max(...xs).toLocaleString('en-US', { maximumFractionDigits: digits })}`);
    const rate = (m: Mode): number[] => runs[m].map((x) => x.rate);
    const cpu = (m: Mode): number[] => runs[m].map((x) => x.cpuUs);
    const ratios = runs.producer.map((p, i) => p.rate / (runs.plain[i]?.rate ?? NaN));
    const cpuRatios = runs.producer.map((p, i) => (runs.plain[i]?.cpuUs ?? NaN) / p.cpuUs);
    const pct = (xs: number[]): string => `${xs.map((x) => `${(x * 100).toFixed(0)}%`).join(', ')} (median ${(median(xs) * 100).toFixed(0)}%)`;
    process.stdout.write(`throughput  plain ${range(rate('plain'))}, v2 ${range(rate('v2'))}, producer ${range(rate('producer'))} writes/s\n`);
    process.stdout.write(`daemon CPU  plain ${range(cpu('plain'), 1)}, v2 ${range(cpu('v2'), 1)}, producer ${range(cpu('producer'), 1)} µs/write\n`);
    const writer = (m: Mode): number[] => runs[m].map((x) => x.writerUs);
    process.stdout.write(`writer CPU  plain ${range(writer('plain'), 1)}, v2 ${range(writer('v2'), 1)}, producer ${range(writer('producer'), 1)} µs/write\n`);
    process.stdout.write(`producer / plain per round, throughput: ${pct(ratios)}; target >= 90%\n`);
    process.stdout.write(`producer / plain per round, writes per CPU-second of the daemon (steadier than throughput on a shared machine): ${pct(cpuRatios)}\n`);

    if (values['write-port'] !== undefined) return;
    const client = new Client({ writePort: countd.writePort, readPort: countd.readPort, producer: { id: 999_999n } });
    try {
      const visible: number[] = [];
      const token: number[] = [];
      for (let i = 0; i < samples; i++) {
        const t0 = performance.now();
        await client.incrementAck('light', `v${i % 10}`, 1, { visible: true });
        visible.push(performance.now() - t0);
        const ack = await client.incrementAck('light', `t${i % 10}`, 1);
        const t1 = performance.now();
        await client.get('light', `t${i % 10}`, { after: ack.token });
        token.push(performance.now() - t1);
        await sleep(20);
      }
      process.stdout.write(`read-your-writes at light load (target <= 1200 ms):\n  ${latencyLine('visible', visible)}\n  ${latencyLine('token', token)}\n`);
      const loadedSeconds = Number(values['loaded-seconds']);
      if (loadedSeconds > 0) {
        const loaded = await underLoad(client, countd, connections, inFlight, loadedSeconds);
        process.stdout.write(
          `read-your-writes under full load (${connections} x ${inFlight} plain frames, ${Math.round(loaded.load.rate).toLocaleString('en-US')} writes/s, flow control held ${loaded.load.held.toFixed(2)} s of ${loadedSeconds} s; target: issue 14's lag p99 <= 2000 ms):\n  ${latencyLine('visible', loaded.visible)}\n  ${latencyLine('token', loaded.token)}\n`,
        );
      }
    } finally {
      await client.close();
    }
  } finally {
    await countd.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:idem: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
