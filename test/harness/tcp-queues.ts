// The kernel's view of a TCP connection (/proc/net/tcp, /proc/net/tcp6):
// how many bytes wait in the send and receive queues of one end. Tests use
// it to wait for a condition instead of sleeping: "the server has read
// everything this client sent" is the client's write flushed and the
// server end's receive queue empty (on loopback a send lands in the
// receiver's queue within the sending syscall).

import fs from 'node:fs';
import type net from 'node:net';

export interface TcpQueues {
  /** Bytes sent by this end and not yet acknowledged by the peer. */
  tx: number;
  /** Bytes received by this end and not yet read by its process. */
  rx: number;
}

function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}

/** Queues of the end bound to local port `localPort` whose peer is on port `remotePort` (both on this host); null when no such connection. */
export function tcpQueues(localPort: number, remotePort: number): TcpQueues | null {
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 5) continue;
      if (!f[1]!.endsWith(':' + hexPort(localPort)) || !f[2]!.endsWith(':' + hexPort(remotePort))) continue;
      const [tx, rx] = f[4]!.split(':').map((h) => parseInt(h, 16));
      return { tx: tx!, rx: rx! };
    }
  }
  return null;
}

/** The server end's queues of a client socket connected to a server on this host. */
export function serverEndQueues(client: net.Socket): TcpQueues | null {
  return tcpQueues(client.remotePort!, client.localPort!);
}

/**
 * Resolves once the server has read every byte `client` wrote: nothing left
 * in the client's buffers, nothing unread in the server end's receive queue.
 */
export async function serverReadAll(client: net.Socket, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const server = serverEndQueues(client);
    const mine = tcpQueues(client.localPort!, client.remotePort!);
    if (client.writableLength === 0 && server !== null && server.rx === 0 && mine !== null && mine.tx === 0) return;
    if (Date.now() > deadline) throw new Error(`the server did not read what the client sent within ${timeoutMs} ms (server end ${JSON.stringify(server)})`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Resolves once the server (in this process) has stopped reading from
 * `client`'s connection: `blocked()` says the client waits for 'drain', the
 * server end holds unread bytes, and one whole event-loop turn (a poll
 * phase, in which a server socket that is still read would be read) changes
 * neither the queues of both ends nor `progress()` (e.g. requests sent and
 * answered). Rejects if `done()` comes true first or after `timeoutMs`.
 */
export async function serverStoppedReading(
  client: net.Socket,
  o: { blocked: () => boolean; progress: () => Promise<string> | string; done: () => boolean; timeoutMs?: number },
): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 20_000);
  const look = async (): Promise<{ key: string; unread: number }> => {
    const server = serverEndQueues(client);
    const mine = tcpQueues(client.localPort!, client.remotePort!);
    return { key: JSON.stringify([server, mine, client.writableLength, await o.progress()]), unread: server?.rx ?? 0 };
  };
  for (;;) {
    if (o.done()) throw new Error('the server read everything: it never stopped reading');
    if (Date.now() > deadline) throw new Error('timed out waiting for the server to stop reading');
    await nextTurn();
    if (!o.blocked()) continue;
    const a = await look();
    await nextTurn();
    const b = await look();
    if (o.blocked() && a.unread > 0 && a.key === b.key) return;
  }
}
