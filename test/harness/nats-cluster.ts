// A real 3-node nats-server cluster with JetStream for the cluster suite:
// loopback ports picked at run time, store directories in a temp directory,
// each server a child process that kill() ends with SIGKILL and start()
// brings back on the same ports and directory. stopAll() in `after` hooks.

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { waitUntil } from './daemon.js';

/** The nats-server binary, or undefined when it is not installed. */
export function natsServerBinary(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export const MISSING_NATS =
  'nats-server is not installed: the cluster suite (test/cluster/) did NOT run. Install it (Debian: `apt-get update && apt-get install -y nats-server`; .ci/run does this) and run npm test again.';

/** A free loopback port (bound, then released). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
}

interface Server {
  name: string;
  clientPort: number;
  routePort: number;
  dir: string;
  proc: ChildProcess | undefined;
  log: string;
}

export class NatsCluster {
  readonly servers: Server[] = [];

  private constructor(readonly binary: string) {}

  static async start(root: string, n = 3): Promise<NatsCluster> {
    const binary = natsServerBinary();
    if (!binary) throw new Error(MISSING_NATS);
    const c = new NatsCluster(binary);
    // A port is released before the next is picked, so the kernel may give it twice: draw until all differ.
    const ports = new Set<number>();
    while (ports.size < 2 * n) ports.add(await freePort());
    const [...picked] = ports;
    for (let i = 0; i < n; i++) {
      const dir = path.join(root, `nats-${i}`);
      await fsp.mkdir(dir, { recursive: true });
      c.servers.push({ name: `n${i}`, clientPort: picked[2 * i]!, routePort: picked[2 * i + 1]!, dir, proc: undefined, log: '' });
    }
    for (let i = 0; i < n; i++) await c.writeConfig(i);
    for (let i = 0; i < n; i++) c.spawn(i);
    for (let i = 0; i < n; i++) await c.waitUp(i);
    return c;
  }

  /** The client URLs, comma-separated (the --nats value). */
  get urls(): string {
    return this.servers.map((s) => `nats://127.0.0.1:${s.clientPort}`).join(',');
  }

  private async writeConfig(i: number): Promise<void> {
    const s = this.servers[i]!;
    const routes = this.servers.filter((o) => o !== s).map((o) => `nats-route://127.0.0.1:${o.routePort}`);
    const conf = [
      `server_name: ${s.name}`,
      `listen: 127.0.0.1:${s.clientPort}`,
      `jetstream { store_dir: "${path.join(s.dir, 'js')}" }`,
      // One server alone is no cluster (JetStream refuses a cluster block without routes).
      ...(routes.length > 0 ? [`cluster { name: countd-test, listen: 127.0.0.1:${s.routePort}, routes: [${routes.join(', ')}] }`] : []),
    ].join('\n');
    await fsp.writeFile(path.join(s.dir, 'nats.conf'), conf + '\n');
  }

  private spawn(i: number): void {
    const s = this.servers[i]!;
    const proc = spawn(this.binary, ['-c', path.join(s.dir, 'nats.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    s.proc = proc;
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (s.log = (s.log + d).slice(-16_384)));
  }

  private async waitUp(i: number): Promise<void> {
    const s = this.servers[i]!;
    await waitUntil(`nats-server ${s.name} listening`, async () => {
      if (s.proc?.exitCode !== null) throw new Error(`nats-server ${s.name} exited: ${s.log.slice(-2000)}`);
      return accepts(s.clientPort);
    }, 20_000, 50);
  }

  /** SIGKILL server i; resolves once it is gone. */
  kill(i: number): Promise<void> {
    return this.signal(i, 'SIGKILL');
  }

  /** Stop server i as an operator would (SIGTERM: it flushes and leaves cleanly); resolves once it is gone. */
  stop(i: number): Promise<void> {
    return this.signal(i, 'SIGTERM');
  }

  private async signal(i: number, signal: NodeJS.Signals): Promise<void> {
    const proc = this.servers[i]!.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    await gone;
  }

  /** Start server i again (same ports, same store directory). */
  async start(i: number): Promise<void> {
    this.spawn(i);
    await this.waitUp(i);
  }

  async stopAll(): Promise<void> {
    for (let i = 0; i < this.servers.length; i++) await this.kill(i);
  }
}
