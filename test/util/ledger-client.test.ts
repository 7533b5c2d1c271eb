// The crash tests' LedgerClient must stop when told to, whatever it is doing:
// a stop() that landed while the client was connecting once left it waiting
// forever on a connection the server keeps open (CI timed out on it).

import assert from 'node:assert/strict';
import net from 'node:net';
import { Ledger } from '../harness/ledger.js';
import { LedgerClient } from '../harness/ledger-client.js';
import { rng } from '../harness/rng.js';

describe('LedgerClient (test harness)', function () {
  this.timeout(10_000);

  it('stop() during a connect resolves, and no session starts', async () => {
    // A server that accepts and never answers nor closes.
    const accepted: net.Socket[] = [];
    const server = net.createServer((s) => accepted.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    let givePort: (p: number) => void = () => {};
    let asked: () => void = () => {};
    const portAsked = new Promise<void>((resolve) => (asked = resolve));
    const client = new LedgerClient({
      ledger: new Ledger(),
      rng: rng(1),
      sizes: { keyspaceSize: 16, keySize: 16 },
      name: 'c',
      keyspaces: ['a'],
      port: () => {
        asked();
        return new Promise<number>((resolve) => (givePort = resolve));
      },
    });
    client.start();
    // The client is inside its connect step: stop it there, then let the connect finish.
    await portAsked;
    const stopped = client.stop(0);
    givePort(port);
    const outcome = await Promise.race([stopped.then(() => 'stopped'), new Promise((r) => setTimeout(() => r('hung'), 3000))]);
    try {
      assert.equal(outcome, 'stopped');
      assert.equal(client.stats.sessions, 0, 'no session starts after stop()');
    } finally {
      for (const s of accepted) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
