// npm run bench:visible — how soon a write is readable at light load
// (issue 16: a `visible` write or a token read within 1.2 s; issue 14: a
// plain write under light traffic readable within 1.2 s at p99).
//
// The real daemon (`countd start`), one client, one write every --interval ms
// (250), in each mode, the modes taking turns write by write so that the load
// of the machine falls on each alike:
//   visible  incrementAck({ visible: true }): from the call to its resolution
//   token    incrementAck(), then get({ after: token }): from the call to the answer
//   plain    increment() on the original protocol (520-byte frame, WIN), then
//            get() every --probe-ms (2) until the count shows it: from the call
//            to the first read that sees it (the write-to-readable lag)
//   result   incrementResult(): the reply carries the key's count and rank
//            once applied (flag 0x02): from the call to its resolution
//   cli      `countd write ... --visible` as a process (with --cli N: N of
//            them, after the rest; Node.js's start-up included); cli-wait:
//            each minus the same command without --visible run next to it
// Prints p50 / p99 / max of each and met / MISSED against the 1.2 s target.
// The machine is shared: run it several times and report ranges.
//
// Flags: --samples 100 (per mode), --interval 250, --probe-ms 2, --cli 0,
// --countd-arg X (repeatable: flags for countd start).

import { execFile } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import { Client } from '../lib/client/client.js';
import { COUNTD_BIN, startCountd } from './lib/countd.js';
import { PoolPhases } from './lib/pool-phases.js';

const TARGET_MS = 1200;
const run = promisify(execFile);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function line(name: string, ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const p99 = percentile(s, 99);
  const verdict = p99 <= TARGET_MS ? 'met' : 'MISSED';
  return `  ${name.padEnd(8)} p50 ${percentile(s, 50).toFixed(0).padStart(5)} ms, p99 ${p99.toFixed(0).padStart(5)} ms, max ${s[s.length - 1]!.toFixed(0).padStart(5)} ms (${s.length} writes)  ${verdict} (p99 <= ${TARGET_MS} ms)\n`;
}

/**
 * A plain write's time split by what the pool showed: WIN to the log's chmod
 * 0400, to the writer's unlock (fsync), to the worker's claim, to its release
 * after the apply; and WIN to readable. A write is paired with the first log
 * handed over after its WIN (its own, as the modes are 250 ms apart).
 */
function phasesReport(pool: PoolPhases, writes: Array<{ ack: number; readable: number }>): string {
  const phases: Record<string, number[]> = { 'win->chmod 0400': [], 'chmod->unlocked': [], 'unlocked->claimed': [], 'claimed->applied': [], 'win->readable': [] };
  for (const w of writes) {
    const use = pool.after(w.ack);
    phases['win->readable']!.push(w.readable - w.ack);
    if (use === undefined) continue;
    phases['win->chmod 0400']!.push(use.dirtyAt - w.ack);
    if (use.unlockedAt !== undefined) phases['chmod->unlocked']!.push(use.unlockedAt - use.dirtyAt);
    if (use.unlockedAt !== undefined && use.claimedAt !== undefined) phases['unlocked->claimed']!.push(use.claimedAt - use.unlockedAt);
    if (use.claimedAt !== undefined && use.cleanAt !== undefined) phases['claimed->applied']!.push(use.cleanAt - use.claimedAt);
  }
  const fmt = (ms: number[]): string => {
    const s = [...ms].sort((a, b) => a - b);
    return s.length === 0 ? 'not seen' : `p50 ${percentile(s, 50).toFixed(0)} ms, p99 ${percentile(s, 99).toFixed(0)} ms (${s.length})`;
  };
  return `where a plain write's time goes (inotify on the pool):\n${Object.entries(phases).map(([k, v]) => `  ${k.padEnd(17)} ${fmt(v)}\n`).join('')}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      samples: { type: 'string', default: '100' },
      interval: { type: 'string', default: '250' },
      'probe-ms': { type: 'string', default: '2' },
      cli: { type: 'string', default: '0' },
      'countd-arg': { type: 'string', multiple: true, default: [] },
    },
  });
  const samples = Number(values.samples);
  const interval = Number(values.interval);
  const probeMs = Number(values['probe-ms']);
  const cli = Number(values.cli);
  const countd = await startCountd({ extraArgs: values['countd-arg'] as string[] });
  const client = new Client({ writePort: countd.writePort, readPort: countd.readPort });
  const plainClient = new Client({ writePort: countd.writePort, readPort: countd.readPort });
  try {
    process.stdout.write(`bench:visible: one write every ${interval} ms, ${samples} per mode, modes in turn\n`);
    const times: Record<'visible' | 'token' | 'plain' | 'result', number[]> = { visible: [], token: [], plain: [], result: [] };
    const plainCounts = new Map<string, bigint>();
    const pool = new PoolPhases(path.join(countd.dataDir, 'commitlog'));
    const plainAcks: Array<{ ack: number; readable: number }> = [];
    for (let i = 0; i < samples; i++) {
      const key = `k${i % 20}`;
      let t0 = performance.now();
      await client.incrementAck('visible', key, 1, { visible: true });
      times.visible.push(performance.now() - t0);
      await sleep(interval);

      t0 = performance.now();
      const ack = await client.incrementAck('token', key, 1);
      await client.get('token', key, { after: ack.token });
      times.token.push(performance.now() - t0);
      await sleep(interval);

      const expected = (plainCounts.get(key) ?? 0n) + 1n;
      plainCounts.set(key, expected);
      t0 = performance.now();
      await plainClient.increment('plain', key, 1);
      const acked = performance.now();
      while (((await plainClient.get('plain', key)) ?? 0n) < expected) await sleep(probeMs);
      times.plain.push(performance.now() - t0);
      plainAcks.push({ ack: acked, readable: performance.now() });
      await sleep(interval);

      t0 = performance.now();
      await client.incrementResult('result', key, 1);
      times.result.push(performance.now() - t0);
      await sleep(interval);
    }
    // The CLI with and without --visible, in turn: their difference is what --visible costs, the rest Node.js's start-up.
    const cliTimes: number[] = [];
    const cliDurable: number[] = [];
    const cliArgs = (i: number, visible: boolean): string[] => [COUNTD_BIN, 'write', 'cli', `k${i % 20}`, ...(visible ? ['--visible'] : []), '--write-port', String(countd.writePort), '--read-port', String(countd.readPort), '--listen', '127.0.0.1', '--data-dir', countd.dataDir];
    for (let i = 0; i < cli; i++) {
      for (const visible of [true, false]) {
        const t0 = performance.now();
        await run(process.execPath, cliArgs(i, visible));
        (visible ? cliTimes : cliDurable).push(performance.now() - t0);
        await sleep(interval);
      }
    }
    process.stdout.write(`write to readable at light load (target: p99 <= ${TARGET_MS} ms):\n`);
    for (const [name, ms] of Object.entries(times)) if (ms.length > 0) process.stdout.write(line(name, ms));
    process.stdout.write(phasesReport(pool, plainAcks));
    pool.close();
    if (cli > 0) {
      process.stdout.write(line('cli', cliTimes));
      process.stdout.write(line('cli-wait', cliTimes.map((ms, i) => ms - (cliDurable[i] ?? 0))).replace(/ {2}(met|MISSED).*/, '  (--visible minus the same write without it: Node.js start-up left out)'));
    }
  } finally {
    await client.close();
    await plainClient.close();
    await countd.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:visible: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
