// npm run bench:flow — flow control at the default bounds (README
// "Operations: flow control"): writes/s and acknowledgement latency of
// 50 connections × 16 frames in flight, first with the worker free ("1x"),
// then with the store child stopped (SIGSTOP) two thirds of the time, so the
// worker can apply at most a third of what it could ("3x" overload). Prints
// the backlog's peak (sampled every 20 ms) against the hard bound and the
// writer's stalls (its flow record). Each phase on a fresh daemon.
//
// Flags: --seconds 30 (per phase), --countd-arg X (repeatable: extra flags for countd start).

import { parseArgs } from 'node:util';
import path from 'node:path';
import { scanBacklog } from '../lib/commitlog/backlog.js';
import { readFlowRecords } from '../lib/roles/write/flow-record.js';
import { DEFAULT_FIELD_SIZES } from '../lib/protocol/fields.js';
import { frameProtocol, startCountd } from './lib/countd.js';
import { KeySet } from './lib/keys.js';
import { runLatencyLoad } from './lib/latency-load.js';

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function phase(name: string, seconds: number, throttle: boolean, extra: string[]): Promise<string> {
  const countd = await startCountd({ extraArgs: extra });
  try {
    const store = countd.peakRssByProcess().find((p) => p.role === 'store')?.pid;
    if (throttle && store === undefined) throw new Error('no store child found');
    let running = true;
    let peak = 0;
    const sampler = (async () => {
      while (running) {
        peak = Math.max(peak, (await scanBacklog(path.join(countd.dataDir, 'commitlog'))).bytes);
        await sleep(20);
      }
    })();
    const slow = (async () => {
      while (running && throttle) {
        process.kill(store!, 'SIGSTOP');
        await sleep(200);
        process.kill(store!, 'SIGCONT');
        await sleep(100);
      }
    })();
    const keys = new KeySet({ keys: 1_000_000, keyspaces: 1000, distribution: 'uniform' });
    const load = await runLatencyLoad(frameProtocol(keys, 1, 50, DEFAULT_FIELD_SIZES), { port: countd.writePort, connections: 50, inFlight: 16, seconds, warmupSeconds: 2 });
    const [flow] = await readFlowRecords(countd.dataDir);
    running = false;
    await Promise.all([sampler, slow]);
    if (store !== undefined) process.kill(store, 'SIGCONT');
    const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
    return (
      `${name}: ${Math.round(load.perSecond).toLocaleString('en-US')} writes/s, ack p50 ${(load.p50Us / 1000).toFixed(2)} ms, p99 ${(load.p99Us / 1000).toFixed(2)} ms; ` +
      `backlog peak ${mib(peak)} (soft ${mib(flow?.soft ?? 0)}, hard ${mib(flow?.hard ?? 0)}); ` +
      `delayed ${flow?.delayed.count ?? '?'}× ${flow?.delayed.seconds.toFixed(1) ?? '?'} s, stopped ${flow?.stopped.count ?? '?'}× ${flow?.stopped.seconds.toFixed(1) ?? '?'} s (up to the last change; now ${flow?.state ?? '?'})`
    );
  } finally {
    await countd.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { seconds: { type: 'string', default: '30' }, 'countd-arg': { type: 'string', multiple: true, default: [] } },
  });
  const seconds = Number(values.seconds);
  if (!(seconds >= 2)) throw new Error(`--seconds must be a number >= 2, got ${values.seconds}`);
  const extra = values['countd-arg'] as string[];
  console.log(await phase('1x (worker free)', seconds, false, extra));
  console.log(await phase('3x (worker stopped 2/3 of the time)', seconds, true, extra));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
