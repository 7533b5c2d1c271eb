import { NatsCluster } from './dist/test/harness/nats-cluster.js';
import { startCountd } from './dist/bench/lib/countd.js';
import { buildFramePool, runWriteLoad } from './dist/bench/lib/write-load.js';
import fs from 'node:fs';
const cluster = process.argv[2] === 'cluster';
function cpu(pid) { try { const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); return (Number(f[11]) + Number(f[12])) / 100; } catch { return 0; } }
function role(pid) { try { const a = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean); return a.includes('store') ? 'store' : a.includes('writer') ? 'writer' : a[0].includes('nats') ? 'nats-server' : 'supervisor'; } catch { return '?'; } }
const root = fs.mkdtempSync('/tmp/c3cpu-');
const nats = cluster ? await NatsCluster.start(root) : undefined;
const n = await startCountd({ extraArgs: cluster ? ['--nats', nats.urls] : [], env: process.env });
await new Promise(r => setTimeout(r, 3000));
const pids = [...n.pids(), ...(nats ? nats.servers.map(s => s.proc.pid) : [])];
const before = new Map(pids.map(p => [p, cpu(p)]));
const r = await runWriteLoad({ port: n.writePort, connections: 48, inFlight: 16, durationMs: 6000, warmupMs: 1000, requests: buildFramePool() });
await new Promise(r => setTimeout(r, 2000)); // the applies of what was acknowledged
const total = r.ackedTotal;
const by = {};
for (const p of pids) { const k = role(p); by[k] = (by[k] ?? 0) + (cpu(p) - before.get(p)) * 1e6 / total; }
console.log(`${cluster ? 'cluster' : 'single '} ${Math.round(r.perSecond)}/s load ${fs.readFileSync('/proc/loadavg','utf8').split(' ')[0]} µs CPU/increment: ` + Object.entries(by).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ') + ` total ${Object.values(by).reduce((a, b) => a + b, 0).toFixed(1)}`);
await n.stop().catch(() => {}); await nats?.stopAll(); fs.rmSync(root, { recursive: true, force: true });
