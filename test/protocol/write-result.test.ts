// The count and rank in a version-2 reply (docs/write-protocol-extensions.md,
// "Count and rank in the reply"): the worked example's bytes are what the
// codecs make, and the codecs accept and refuse what the document says.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isCountdError } from '../../lib/errors.js';
import { DEFAULT_FIELD_SIZES } from '../../lib/protocol/fields.js';
import {
  FLAG_PROMPT,
  FLAG_RESULT,
  REPLY2_RESULT_SIZE,
  Reply2,
  ResultState,
  decodeReplyResult,
  encodeOpFrame,
  validateOpFrame,
  writeReplyResult,
} from '../../lib/protocol/write-ops.js';
import { docBlocksBytes } from '../harness/doc-bytes.js';

const sizes = DEFAULT_FIELD_SIZES;

describe('write protocol: count and rank in the reply (FLAG_RESULT)', () => {
  it('worked example: the frame and the 40-byte reply printed are what the codecs make', () => {
    const doc = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/write-protocol-extensions.md'), 'utf8');
    const section = doc.slice(doc.indexOf('### Count and rank in the reply'));
    const [frame, reply] = docBlocksBytes(section);
    assert.deepEqual(frame, encodeOpFrame('increment', 5, 'scores', 'alice', sizes, { result: true }));
    const built = Buffer.alloc(REPLY2_RESULT_SIZE, 0xff);
    writeReplyResult(built, 0, Reply2.win, 0x1a2513bc00000009n, 0n, { state: ResultState.found, count: 35n, rank: 2n });
    assert.deepEqual(reply, built);
    assert.deepEqual(decodeReplyResult(reply!, 0), { status: Reply2.win, token: 0x1a2513bc00000009n, detail: 0n, state: ResultState.found, count: 35n, rank: 2n });
  });

  it('the flag is valid on increment and set of version 2 only; other ops, other bits and version 1 are malformed', () => {
    const lengths = new Int32Array(2);
    const withFlags = (op: 'increment' | 'set' | 'deleteKey', flags: number): Buffer => {
      const b = encodeOpFrame(op, op === 'deleteKey' ? 0 : 1, 'ks', 'k', sizes);
      b[1] = flags;
      return b;
    };
    assert.equal(validateOpFrame(withFlags('increment', FLAG_RESULT | FLAG_PROMPT), 0, sizes, lengths, 2), 1);
    assert.equal(validateOpFrame(withFlags('set', FLAG_RESULT), 0, sizes, lengths, 2), 2);
    assert.equal(validateOpFrame(withFlags('deleteKey', FLAG_RESULT), 0, sizes, lengths, 2), 0);
    assert.equal(validateOpFrame(withFlags('increment', 0x04), 0, sizes, lengths, 2), 0);
    assert.equal(validateOpFrame(withFlags('increment', FLAG_RESULT), 0, sizes, lengths, 1), 0);
    assert.throws(() => encodeOpFrame('deleteKey', 0, 'ks', 'k', sizes, { result: true }), (err: unknown) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
  });

  it('decodeReplyResult refuses an unknown result state, status or non-zero padding', () => {
    const good = Buffer.alloc(REPLY2_RESULT_SIZE);
    writeReplyResult(good, 0, Reply2.duplicate, 7n, 3n, { state: ResultState.absent, count: 0n, rank: 0n });
    assert.deepEqual(decodeReplyResult(good, 0), { status: Reply2.duplicate, token: 7n, detail: 3n, state: ResultState.absent, count: 0n, rank: 0n });
    for (const [at, value] of [[1, 4], [0, 0x41], [5, 1]] as const) {
      const bad = Buffer.from(good);
      bad[at] = value;
      assert.equal(decodeReplyResult(bad, 0), null, `byte ${at} = ${value}`);
    }
  });
});
