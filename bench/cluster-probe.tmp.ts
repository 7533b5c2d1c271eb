import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NatsCluster } from '../test/harness/nats-cluster.js';
import { startCountd } from './lib/countd.js';
import { buildFramePool, runWriteLoad } from './lib/write-load.js';
import net from 'node:net';

async function freePort(): Promise<number> { return new Promise((r) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => r(p)); }); }); }
async function scrape(port: number): Promise<string> { const r = await fetch(`http://127.0.0.1:${port}/metrics`); return r.text(); }
function pick(text: string, names: string[]): string { return text.split('\n').filter((l) => names.some((n) => l.startsWith(n)) && (l.includes('_sum') || l.includes('_count') || l.includes('_total'))).join('\n'); }
const cluster = process.argv.includes('--cluster');
const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-probe-'));
const nats = cluster ? await NatsCluster.start(root) : undefined;
const mp = await freePort();
const node = await startCountd({ extraArgs: [...(nats ? ['--nats', nats.urls] : []), '--metrics-port', String(mp)] });
await new Promise((r) => setTimeout(r, cluster ? 4000 : 500));
import { readFileSync } from 'node:fs';
function cpuOf(pid: number): number { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return (Number(f[11]) + Number(f[12])) / 100; }
const natsCpu = () => (nats ? nats.servers.reduce((s, x) => s + cpuOf(x.proc!.pid!), 0) : 0);
const roles0 = node.peakRssByProcess().map((x) => ({ ...x, cpu: cpuOf(x.pid) }));
const n0 = natsCpu(); const c0 = node.cpuSeconds();
const before = await scrape(mp);
const res = await runWriteLoad({ port: node.writePort, connections: 48, inFlight: 16, durationMs: 6000, warmupMs: 1000, requests: buildFramePool() });
const after = await scrape(mp);
console.log(roles0.map((x) => `${x.role} ${x.pid} ${(cpuOf(x.pid) - x.cpu).toFixed(2)}s`).join(', '));
const n1 = natsCpu(); const c1 = node.cpuSeconds();
console.log('acked', res.acked, 'countd cpu s', (c1-c0).toFixed(2), 'nats cpu s', (n1-n0).toFixed(2), 'µs cpu/inc countd', ((c1-c0)/res.acked*7/6*1e6).toFixed(1), 'nats', ((n1-n0)/res.acked*7/6*1e6).toFixed(1));
console.log('rate', Math.round(res.perSecond), 'mean latency ms', res.meanLatencyMs.toFixed(1), 'client cpu', res.clientCpuCores.toFixed(2));
const names = ['countd_cluster_publish_seconds', 'countd_fsync_seconds', 'countd_write_group_commit_frames', 'countd_cluster_apply_lag', 'countd_write_fsync'];
console.log('BEFORE\n' + pick(before, names)); console.log('AFTER\n' + pick(after, names));
console.log('cpu seconds', node.cpuSeconds().toFixed(1));
await node.stop(); await nats?.stopAll(); await fsp.rm(root, { recursive: true, force: true });
