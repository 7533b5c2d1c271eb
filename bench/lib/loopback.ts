// The round trip without a disk: a server in its own Node.js process that
// answers each frame of `frameSize` bytes with "WIN" at once, driven by the
// same client as countd and Redis. With the pwrite + fdatasync floor beside
// it, floor + this round trip is about the least any server reached over
// loopback TCP from a Node.js client can answer a durable write in.
//
// With a file (startLoopback's `durableFile`), the server makes the frames of
// each read durable first: one write of them on that file, preallocated and
// opened O_DSYNC (as countd's commit logs are), then "WIN"s. That is the
// least server with a disk: one process, no batching, no log to hand over,
// nothing applied; the part of countd's round trip above it is countd's own.

import { spawn } from 'node:child_process';
import { track, untrack } from './cleanup.js';

export interface LoopbackServer {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

const SERVER = `
const net = require('node:net');
const size = Number(process.argv[1]);
const fs = require('node:fs');
const file = process.argv[2];
const WIN = Buffer.from('WIN');
const LOG = 2 * 1024 * 1024;
let fd = -1;
let at = 0;
if (file) {
  fd = fs.openSync(file, 'w');
  fs.writeSync(fd, Buffer.alloc(LOG), 0, LOG, 0);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_DSYNC);
}
const server = net.createServer({ noDelay: true }, (socket) => {
  let carry = 0;
  socket.on('data', (chunk) => {
    const n = Math.floor((carry + chunk.length) / size);
    carry = (carry + chunk.length) % size;
    if (fd >= 0) {
      if (at + chunk.length > LOG) at = 0;
      fs.writeSync(fd, chunk, 0, chunk.length, at);
      at += chunk.length;
    }
    if (n > 0) socket.write(n === 1 ? WIN : Buffer.alloc(3 * n, 'WIN'));
  });
  socket.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.on('disconnect', () => process.exit(0));
`;

/** `durableFile`: make each read's bytes durable in this file (created, 2 MiB, O_DSYNC) before answering. */
export async function startLoopback(frameSize: number, durableFile?: string): Promise<LoopbackServer> {
  const child = spawn(process.execPath, ['-e', SERVER, String(frameSize), ...(durableFile !== undefined ? [durableFile] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('cannot start the loopback server');
  const entry = track({ what: 'loopback server', pid });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', () => reject(new Error('the loopback server exited before listening')));
  });
  return {
    port,
    pid,
    stop: async () => {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      }
      untrack(entry);
    },
  };
}
