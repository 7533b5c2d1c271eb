// Version 2 of the extended write protocol (docs/write-protocol-extensions.md,
// "Version 2"): the worked example's bytes are what the codecs make, and the
// frame and reply codecs accept and refuse what the document says.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_FIELD_SIZES } from '../../lib/protocol/fields.js';
import {
  FLAG_PROMPT,
  REPLY2_SIZE,
  Reply2,
  checkProducerFields,
  decodeReply2,
  encodeHello,
  encodeOpFrame,
  helloReply,
  helloVersion,
  validateOpFrame,
  writeReply2,
} from '../../lib/protocol/write-ops.js';
import { isCountdError } from '../../lib/errors.js';
import { docBlocksBytes } from '../harness/doc-bytes.js';

const sizes = DEFAULT_FIELD_SIZES;

function reply(status: number, token: bigint, detail: bigint): Buffer {
  const b = Buffer.alloc(REPLY2_SIZE);
  writeReply2(b, 0, status, token, detail);
  return b;
}

describe('write protocol version 2 (docs/write-protocol-extensions.md)', () => {
  it('worked example: the frame and the replies printed are what the codecs make', () => {
    const doc = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/write-protocol-extensions.md'), 'utf8');
    const section = doc.slice(doc.indexOf('### Worked example, version 2'));
    const [frame, win, dup] = docBlocksBytes(section);
    assert.deepEqual(frame, encodeOpFrame('increment', 1, 'pages', 'home', sizes, { producer: { producer: 42n, epoch: 1, sequence: 7n } }));
    const token = (1796659200000n << 20n) + 5n;
    assert.deepEqual(win, reply(Reply2.win, token, 7n));
    assert.deepEqual(dup, reply(Reply2.duplicate, token, 7n));
    assert.deepEqual(decodeReply2(dup!, 0), { status: 0x44, token, detail: 7n });
    assert.equal(helloVersion(encodeHello(sizes, 2), 0, sizes), 2);
    assert.deepEqual(helloReply(2), Buffer.from([0x45, 0x58, 0x02]));
    assert.deepEqual(helloReply(7, 1), Buffer.from([0x45, 0x58, 0x01]));
  });

  it('validates a version-2 frame: producer fields allowed, reserved bytes and a stray flag refused', () => {
    const lengths = new Int32Array(2);
    const ok = encodeOpFrame('increment', 1, 'a', 'b', sizes, { producer: { producer: 1n, epoch: 2, sequence: 3n }, prompt: true });
    assert.equal(ok[1], FLAG_PROMPT);
    assert.equal(validateOpFrame(ok, 0, sizes, lengths, 2), 1);
    assert.equal(validateOpFrame(ok, 0, sizes, lengths, 1), 0, 'version 1 refuses producer fields and flags');
    const damaged: Array<[string, (f: Buffer) => void]> = [
      ['flag bit 2', (f) => (f[1] = 4)],
      ['reserved byte 2', (f) => (f[2] = 1)],
      ['reserved byte 28', (f) => (f[28] = 1)],
      ['a token in the request', (f) => (f[40] = 1)],
      ['an epoch without a producer', (f) => (f.fill(0, 16, 24), (f[24] = 1))],
      ['a sequence without a producer', (f) => (f.fill(0, 16, 24), f.fill(0, 24, 28), (f[32] = 1))],
    ];
    for (const [what, damage] of damaged) {
      const f = Buffer.from(ok);
      damage(f);
      assert.equal(validateOpFrame(f, 0, sizes, lengths, 2), 0, what);
    }
  });

  it('refuses producer fields out of range, and replies it does not know', () => {
    for (const bad of [{ producer: 0n, epoch: 0, sequence: 0n }, { producer: 1n << 64n, epoch: 0, sequence: 0n }, { producer: 1n, epoch: -1, sequence: 0n }, { producer: 1n, epoch: 2 ** 32, sequence: 0n }, { producer: 1n, epoch: 0, sequence: -1n }]) {
      assert.throws(() => checkProducerFields(bad), (err: unknown) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'), JSON.stringify(bad, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
    }
    assert.equal(decodeReply2(reply(0x58, 0n, 0n), 0), null);
    const nonZero = reply(Reply2.win, 1n, 1n);
    nonZero[3] = 1;
    assert.equal(decodeReply2(nonZero, 0), null);
  });
});
