// The "null server" used to calibrate the load generator: a child process
// that answers like countd without doing any work. Write port: `WIN` per
// complete 520-byte frame (no validation, no disk). Read port: a fixed page
// of 100 records per complete 272-byte request. If the generator drives this
// far faster than the real servers, the generator is not what limits them.
//
// Run as: node dist/bench/lib/null-server.js
// Prints {"writePort":N,"readPort":M} on stdout once listening; exits when
// its stdin closes (the parent went away) or on SIGTERM.

import net from 'node:net';
import { DEFAULT_FIELD_SIZES, readRecordSize, readRequestSize, writeFrameSize } from '../../lib/protocol/fields.js';

const FRAME = writeFrameSize(DEFAULT_FIELD_SIZES);
const REQUEST = readRequestSize(DEFAULT_FIELD_SIZES);
const PAGE_RECORDS = 100;

const wins = Buffer.from('WIN'.repeat(4096), 'latin1');
const page = Buffer.alloc(8 + PAGE_RECORDS * readRecordSize(DEFAULT_FIELD_SIZES));
page.writeBigInt64LE(BigInt(PAGE_RECORDS), 0);

function fixedAnswerServer(requestSize: number, answer: (n: number) => Buffer): net.Server {
  return net.createServer({ noDelay: true }, (socket) => {
    let partial = 0;
    socket.on('data', (chunk: Buffer) => {
      const bytes = partial + chunk.length;
      partial = bytes % requestSize;
      const n = Math.floor(bytes / requestSize);
      if (n > 0) socket.write(answer(n));
    });
    socket.on('error', () => socket.destroy());
  });
}

function winReplies(n: number): Buffer {
  if (n <= 4096) return wins.subarray(0, 3 * n);
  return Buffer.from('WIN'.repeat(n), 'latin1');
}

function pageReplies(n: number): Buffer {
  return n === 1 ? page : Buffer.concat(Array.from({ length: n }, () => page));
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

const writeServer = fixedAnswerServer(FRAME, winReplies);
const readServer = fixedAnswerServer(REQUEST, pageReplies);
const [writePort, readPort] = await Promise.all([listen(writeServer), listen(readServer)]);
process.stdout.write(JSON.stringify({ writePort, readPort }) + '\n');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
