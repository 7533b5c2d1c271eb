// npm run bench:cluster — durable increments per second and end-to-end lag
// of cluster mode (docs/cluster.md) on this machine: one countd node without
// a cluster (the reference), then 1, 2 and 3 `countd start --nats` nodes on a
// fresh 3-node nats-server cluster (R3, loopback) each. The load is spread
// over the nodes' write ports (bench/lib/write-load.ts); every WIN is durable
// (fdatasync + JetStream ack in cluster mode). The lag is from an increment's
// WIN to its count read back through node 0 (routed to the partition's owner),
// sampled every 100 ms during the load.
//
// Then the same on paper for N machines: a node on a machine of its own
// does at least what the 1-node row does here, and every message of every
// node goes through the one stream's leader, whose message rate is measured
// on its own (a scratch R3 stream, the same message sizes); the smaller
// bound names the bottleneck.
//
// Flags: --seconds 8, --connections 48, --in-flight 16, --nodes 1,2,3.
// Everything runs on this machine: the nats-servers, the nodes and the load
// share its cores.

import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RetentionPolicy, StorageType, jetstreamManager } from '@nats-io/jetstream';
import { Client } from '../lib/client/client.js';
import { connectCluster } from '../lib/cluster/nats.js';
import { PARTITIONS } from '../lib/cluster/partition.js';
import { MESSAGE_HEADER_SIZE } from '../lib/cluster/message.js';
import { NatsCluster } from '../test/harness/nats-cluster.js';
import { startCountd, type CountdDaemon } from './lib/countd.js';
import { buildFramePool, runWriteLoad } from './lib/write-load.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const SECONDS = flag('seconds', 8);
const CONNECTIONS = flag('connections', 48);
const IN_FLIGHT = flag('in-flight', 16);
/** Cluster sizes to measure, e.g. --nodes 1 (default 1,2,3). */
const NODES = (process.argv.includes('--nodes') ? process.argv[process.argv.indexOf('--nodes') + 1]! : '1,2,3').split(',').map(Number);

/** WIN → visible through node 0, sampled while `running()`. */
async function probeLag(nodes: CountdDaemon[], running: () => boolean): Promise<number[]> {
  const writer = new Client({ host: '127.0.0.1', writePort: nodes[0]!.writePort, readPort: nodes[0]!.readPort });
  const samples: number[] = [];
  let expected = 0n;
  try {
    while (running()) {
      const t0 = performance.now();
      await writer.increment('lag-probe', 'k', 1);
      expected++;
      while (((await writer.get('lag-probe', 'k')) ?? 0n) < expected) await new Promise((r) => setTimeout(r, 2));
      samples.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await writer.close();
  }
  return samples.sort((a, b) => a - b);
}

/** CPU seconds (user + system) of the processes `pids` so far (/proc/<pid>/stat). */
async function cpuOf(pids: number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks / 100;
}

/** Messages stored in the COUNTD stream so far (0 without a cluster). */
async function streamMessages(urls: string | undefined): Promise<number> {
  if (urls === undefined) return 0;
  const conn = await connectCluster({ servers: urls.split(','), replicas: 3, name: 'bench' });
  try {
    return (await conn.jsm.streams.info('COUNTD')).state.last_seq;
  } finally {
    await conn.close();
  }
}

async function measure(label: string, nodes: CountdDaemon[], nats?: NatsCluster): Promise<{ line: string; rate: number }> {
  const requests = buildFramePool();
  let running = true;
  const lag = probeLag(nodes, () => running);
  const per = Math.max(1, Math.floor(CONNECTIONS / nodes.length));
  const natsPids = nats?.servers.map((s) => s.proc?.pid ?? 0) ?? [];
  const [countdBefore, natsBefore, messagesBefore, t0] = [nodes.reduce((s, n) => s + n.cpuSeconds(), 0), await cpuOf(natsPids), await streamMessages(nats?.urls), performance.now()];
  const results = await Promise.all(nodes.map((n) => runWriteLoad({ port: n.writePort, connections: per, inFlight: IN_FLIGHT, durationMs: SECONDS * 1000, warmupMs: 1000, requests })));
  running = false;
  const samples = await lag;
  const seconds = (performance.now() - t0) / 1000;
  const countdCores = (nodes.reduce((s, n) => s + n.cpuSeconds(), 0) - countdBefore) / seconds;
  const natsCores = ((await cpuOf(natsPids)) - natsBefore) / seconds;
  const messages = (await streamMessages(nats?.urls)) - messagesBefore;
  const rate = results.reduce((s, r) => s + r.perSecond, 0);
  const total = results.reduce((s, r) => s + r.ackedTotal, 0);
  const failed = results.reduce((s, r) => s + r.failedReplies, 0);
  const q = (f: number): string => (samples.length ? samples[Math.min(samples.length - 1, Math.floor(f * samples.length))]!.toFixed(0) : '-');
  const cells = [Math.round(rate).toLocaleString('en-US'), q(0.5), q(0.99), samples.length, failed, countdCores.toFixed(2), nats ? natsCores.toFixed(2) : '-', messages > 0 ? Math.round(total / messages) : '-'];
  return { line: `| ${label} | ${cells.join(' | ')} |`, rate };
}

/** Messages per second one R3 stream takes from one connection, 4 group commits' worth in flight, `bytes` each. */
async function streamRate(urls: string, bytes: number): Promise<number> {
  const conn = await connectCluster({ servers: urls.split(','), replicas: 3, name: 'bench' });
  try {
    const jsm = await jetstreamManager(conn.nc);
    await jsm.streams.add({ name: 'BENCH', subjects: ['bench.>'], storage: StorageType.File, retention: RetentionPolicy.Limits, num_replicas: 3 });
    const body = Buffer.alloc(bytes);
    const round = (): Promise<unknown> => Promise.all(Array.from({ length: PARTITIONS }, (_, p) => conn.js.publish(`bench.${p}`, body)));
    for (let i = 0; i < 20; i++) await round();
    let messages = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (performance.now() - t0 < 3000) {
        await round();
        messages += PARTITIONS;
      }
    }));
    return messages / ((performance.now() - t0) / 1000);
  } finally {
    await conn.close();
  }
}

async function main(): Promise<void> {
  const lines = [
    '| configuration | durable increments/s | lag p50 ms | lag p99 ms | lag samples | failed replies | countd CPU (cores) | nats-server CPU (cores) | increments per message |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const single = await startCountd();
  try {
    lines.push((await measure('1 node, no cluster', [single])).line);
  } finally {
    await single.stop();
  }
  let perNode = 0;
  let streamMessages = 0;
  /**
   * Frames per partition message at this load: a group commit holds about
   * half of what the connections have in flight (the other half waits for
   * its WINs or rides the next one: countd_write_group_commit_frames shows
   * ~380 of 768), spread over the partitions.
   */
  const framesPerMessage = Math.max(1, (CONNECTIONS * IN_FLIGHT) / 2 / PARTITIONS);
  for (const k of NODES) {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-bench-cluster-'));
    const nats = await NatsCluster.start(root);
    const nodes: CountdDaemon[] = [];
    try {
      for (let i = 0; i < k; i++) nodes.push(await startCountd({ extraArgs: ['--nats', nats.urls] }));
      // Let the nodes share out the partitions (about two ownership rounds per join).
      await new Promise((r) => setTimeout(r, 4000));
      const row = await measure(`${k} cluster node${k > 1 ? 's' : ''} (R3)`, nodes, nats);
      lines.push(row.line);
      if (k === 1) {
        perNode = row.rate;
        streamMessages = await streamRate(nats.urls, MESSAGE_HEADER_SIZE + Math.round(framesPerMessage * 30));
      }
    } finally {
      for (const n of nodes) await n.stop().catch(() => {});
      await nats.stopAll();
      await fsp.rm(root, { recursive: true, force: true });
    }
  }
  console.log(`cluster benchmark: ${os.cpus().length} cores, ${SECONDS} s per configuration, ${CONNECTIONS} connections × ${IN_FLIGHT} in flight\n`);
  console.log(lines.join('\n'));
  if (perNode > 0) {
    const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
    const streamBound = streamMessages * framesPerMessage;
    console.log(`\nOn paper, N machines of one countd node each (3 nats-server machines, R3): a node does at least ${fmt(perNode)}/s (the 1-node row, which shares this machine with the nats-servers);`);
    console.log(`the stream takes ${fmt(streamMessages)} messages/s here (${PARTITIONS} partitions, 4 group commits in flight), × ${fmt(framesPerMessage)} frames per message at this load = ${fmt(streamBound)} increments/s.\n`);
    console.log('| machines | increments/s (bound) | bottleneck |\n| ---: | ---: | --- |');
    for (const n of [1, 2, 3, 5, 10, 20, 50]) {
      const nodesBound = n * perNode;
      console.log(`| ${n} | ${fmt(Math.min(nodesBound, streamBound))} | ${nodesBound <= streamBound ? "the nodes' fdatasync + JetStream ack latency (each node's own)" : "the single COUNTD stream's leader (one raft group): split the partitions over several streams"} |`);
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
