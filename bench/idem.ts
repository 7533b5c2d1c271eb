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
//
// Flags: --seconds 5 (per mode per round), --rounds 3, --connections 50,
// --in-flight 16, --samples 50, --countd-arg X (repeatable), --modes plain,v2,producer.

import net from 'node:net';
import { parseArgs } from 'node:util';
import { Client } from '../lib/client/client.js';
import { DEFAULT_FIELD_SIZES, writeFrameSize } from '../lib/protocol/fields.js';
import { encodeFrame } from '../lib/protocol/write-frame.js';
import { REPLY2_SIZE, encodeHello, encodeOpFrame, opFrameSize } from '../lib/protocol/write-ops.js';
import { startCountd } from './lib/countd.js';

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
  /** Seconds of the window in which flow control held acknowledgements or stopped the writer. */
  held: number;
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
  const flow0 = daemon.flowSeconds();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const rate = ((acked - before) * 1000) / (performance.now() - t0);
  const cpuUs = ((daemon.cpuSeconds() - cpu0) * 1e6) / (acked - before);
  const flow1 = daemon.flowSeconds();
  const held = flow1.delayed + flow1.stopped - flow0.delayed - flow0.stopped;
  sending = false;
  await Promise.race([Promise.all(done), sleep(5000)]);
  if (failed > 0) throw new Error(`${mode}: ${failed} replies other than WIN`);
  return { rate, cpuUs, held };
}

type Daemon = { writePort: number; readPort: number; stop(): Promise<void>; cpuSeconds(): number; flowSeconds(): { delayed: number; stopped: number } };

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
  return `${name.padEnd(9)} p50 ${percentile(s, 50).toFixed(0)} ms, p99 ${percentile(s, 99).toFixed(0)} ms, max ${s[s.length - 1]!.toFixed(0)} ms (${s.length} writes)`;
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
        process.stdout.write(`  round ${r + 1} ${mode.padEnd(8)} ${Math.round(run.rate).toLocaleString('en-US')} writes/s, daemon CPU ${run.cpuUs.toFixed(1)} µs/write, flow control held ${run.held.toFixed(2)} s of ${seconds} s\n`);
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
