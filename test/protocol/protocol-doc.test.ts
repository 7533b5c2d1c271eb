// The worked examples of docs/protocol.md against real servers: the bytes the
// spec prints are sent as they are printed (a `…` run is the NUL padding of
// a 256-byte field), and the servers answer with the bytes it prints.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_FIELD_SIZES } from '../../lib/protocol/fields.js';
import { startReader } from '../../lib/roles/reader.js';
import { startWriter } from '../../lib/roles/writer.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { RawClient, removeDir, tempDataDir } from '../roles/writer-helpers.js';

const SPEC = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/protocol.md'), 'utf8');
const FIELD = 256;

/** The code blocks (```) of one section of the spec, as the bytes they print. */
function blocks(section: string): Buffer[] {
  const start = SPEC.indexOf(section);
  assert.ok(start >= 0, `no section ${section}`);
  const end = SPEC.indexOf('\n## ', start + section.length);
  const text = SPEC.slice(start, end < 0 ? undefined : end);
  const out: Buffer[] = [];
  for (const m of text.matchAll(/```\n([\s\S]*?)```/g)) {
    const bytes: number[] = [];
    for (const line of m[1]!.split('\n')) {
      const hex = line.split(/ {2,}/)[0]!.trim();
      if (hex === '') continue;
      const padded = hex.includes('…');
      const field = hex.replace('…', '').trim().split(/\s+/).map((h) => parseInt(h, 16));
      if (padded) while (field.length < FIELD) field.push(0);
      bytes.push(...field);
    }
    out.push(Buffer.from(bytes));
  }
  return out;
}

/** Send `request` on a fresh connection and collect `want` bytes of answer. */
async function exchange(port: number, request: Buffer, want: number): Promise<{ answer: Buffer; socket: net.Socket }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let got = 0;
  const answer = await new Promise<Buffer>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= want) resolve(Buffer.concat(chunks));
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.write(request);
  });
  return { answer, socket };
}

describe('docs/protocol.md, worked examples', () => {
  it('section 1: the frame printed is answered WIN; one with a byte after its keyspace field\'s first NUL is answered BAD, and the connection closes', async () => {
    const { root, dataDir } = await tempDataDir(DEFAULT_FIELD_SIZES);
    const writer = await startWriter({ dataDir, port: 0 });
    try {
      const [frame] = blocks('## 1. The write port');
      assert.equal(frame!.length, 520);
      const client = await RawClient.connect(writer.port);
      client.send(frame!);
      await client.replyCount(1);
      assert.deepEqual(Buffer.from(client.replies, 'latin1'), Buffer.from([0x57, 0x49, 0x4e]));
      // The keyspace field with a byte after its first NUL: BAD, and the connection closes.
      const bad = Buffer.from(frame!);
      bad[8 + 1] = 0x00;
      bad[8 + 2] = 0x61;
      client.send(bad);
      await client.waitClosed();
      assert.deepEqual(client.codes(), ['WIN', 'BAD']);
    } finally {
      await writer.close();
      await removeDir(root);
    }
  });

  it('section 2: the page request printed is answered with the response printed; a length above the limit with n = -2, the connection open', async () => {
    const { root, dataDir } = await tempDataDir(DEFAULT_FIELD_SIZES);
    const store = await Store.open({ location: dataDir.paths.db, sizes: DEFAULT_FIELD_SIZES });
    const batch = new IncrementBatch();
    for (const [key, count] of [['home', 7n], ['about', 3n], ['blog', 3n]] as const) batch.add(Buffer.from('pages'), Buffer.from(key), count);
    await store.apply(batch);
    const reader = await startReader({ store, sizes: DEFAULT_FIELD_SIZES, port: 0 });
    try {
      const [request, response] = blocks('## 2. The read port').slice(-2);
      assert.equal(request!.length, 272);
      assert.equal(response!.length, 536);
      const first = await exchange(reader.port, request!, response!.length);
      assert.deepEqual(first.answer, response);
      first.socket.destroy();

      const tooLong = Buffer.from(request!);
      tooLong.writeBigUInt64LE(20_000n, 8);
      const second = await exchange(reader.port, Buffer.concat([tooLong, request!]), 8 + response!.length);
      assert.deepEqual(second.answer.subarray(0, 8), Buffer.from('feffffffffffffff', 'hex'));
      assert.deepEqual(second.answer.subarray(8), response, 'the connection stayed open and answered the next request');
      second.socket.destroy();
    } finally {
      await reader.close();
      await store.close();
      await removeDir(root);
    }
  });
});
