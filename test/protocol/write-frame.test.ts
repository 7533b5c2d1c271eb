import assert from 'node:assert/strict';
import { DEFAULT_FIELD_SIZES, fieldNameLength, nameBytes, writeFrameSize } from '../../lib/protocol/fields.js';
import { decodeFrame, encodeFrame, validateFrame } from '../../lib/protocol/write-frame.js';
import { INT64_MAX, INT64_MIN } from '../../lib/protocol/fields.js';
import { isCountdError } from '../../lib/errors.js';

const sizes = DEFAULT_FIELD_SIZES;
const small = { keyspaceSize: 4, keySize: 3 };

describe('write frame codec', () => {
  it('is 520 bytes with the default field sizes', () => {
    assert.equal(writeFrameSize(sizes), 520);
  });

  it('round-trips increment, keyspace and key', () => {
    for (const inc of [1n, -1n, 0n, INT64_MAX, INT64_MIN, 2n ** 60n + 1n]) {
      const buf = encodeFrame(inc, 'pages', 'home', sizes);
      assert.equal(buf.length, 520);
      const f = decodeFrame(buf, 0, sizes);
      assert.ok(f);
      assert.equal(f.increment, inc);
      assert.equal(f.keyspace.toString(), 'pages');
      assert.equal(f.key.toString(), 'home');
    }
  });

  it('accepts names that fill the whole field (no NUL)', () => {
    const buf = encodeFrame(5, 'abcd', 'xyz', small);
    const f = decodeFrame(buf, 0, small);
    assert.ok(f);
    assert.equal(f.keyspace.toString(), 'abcd');
    assert.equal(f.key.toString(), 'xyz');
  });

  it('keeps arbitrary non-NUL bytes, not only UTF-8', () => {
    const key = Buffer.from([0xff, 0x01, 0x80]);
    const f = decodeFrame(encodeFrame(1, 'k', key, small), 0, small);
    assert.deepEqual(f?.key, key);
  });

  it('decodes at an offset inside a larger buffer', () => {
    const buf = Buffer.alloc(3 * writeFrameSize(small));
    encodeFrame(7, 'ab', 'c', small, buf, writeFrameSize(small));
    assert.equal(decodeFrame(buf, writeFrameSize(small), small)?.increment, 7n);
    assert.equal(decodeFrame(buf, 0, small), null, 'an all-zero frame is invalid');
  });

  describe('rejects every invalid form of docs/protocol.md section 1', () => {
    const frame = (bytes: number[]): Buffer => Buffer.concat([Buffer.alloc(8, 1), Buffer.from(bytes)]);
    const cases: Array<[string, number[]]> = [
      ['empty keyspace', [0, 0, 0, 0, 0x61, 0, 0]],
      ['empty key', [0x61, 0, 0, 0, 0, 0, 0]],
      ['both empty', [0, 0, 0, 0, 0, 0, 0]],
      ['keyspace with a byte after its NUL', [0x61, 0, 0x62, 0, 0x61, 0, 0]],
      ['keyspace with a byte after its NUL at the field end', [0x61, 0, 0, 0x62, 0x61, 0, 0]],
      ['key with a byte after its NUL', [0x61, 0, 0, 0, 0x61, 0, 0x62]],
      ['keyspace starting with NUL then bytes', [0, 0x61, 0, 0, 0x61, 0, 0]],
    ];
    for (const [name, bytes] of cases) {
      it(name, () => {
        const buf = frame(bytes);
        assert.equal(validateFrame(buf, 0, small), false);
        assert.equal(decodeFrame(buf, 0, small), null);
      });
    }
    it('a frame shorter than the frame size', () => {
      assert.equal(decodeFrame(Buffer.alloc(10, 0x61), 0, small), null);
    });
  });

  it('fieldNameLength reports the name length', () => {
    assert.equal(fieldNameLength(Buffer.from([0x61, 0x62, 0, 0]), 0, 4), 2);
    assert.equal(fieldNameLength(Buffer.from([0x61, 0x62, 0x63, 0x64]), 0, 4), 4);
    assert.equal(fieldNameLength(Buffer.from([0x61, 0, 0, 1]), 0, 4), -1);
  });

  describe('encodeFrame validates its arguments', () => {
    const bad: Array<[string, () => unknown]> = [
      ['increment above 2^63-1', () => encodeFrame(2n ** 63n, 'a', 'b', sizes)],
      ['increment below -2^63', () => encodeFrame(-(2n ** 63n) - 1n, 'a', 'b', sizes)],
      ['unsafe number increment', () => encodeFrame(2 ** 60, 'a', 'b', sizes)],
      ['fractional increment', () => encodeFrame(1.5, 'a', 'b', sizes)],
      ['empty keyspace', () => encodeFrame(1, '', 'b', sizes)],
      ['NUL in key', () => encodeFrame(1, 'a', 'b\0c', sizes)],
      ['keyspace longer than its field', () => encodeFrame(1, 'abcde', 'b', small)],
      ['key longer than its field', () => encodeFrame(1, 'a', 'bcde', small)],
    ];
    for (const [name, fn] of bad) {
      it(name, () => assert.throws(fn, (err: unknown) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT')));
    }
    it('nameBytes measures UTF-8 bytes, not characters', () => {
      assert.throws(() => nameBytes('ééé', 'key', 5), /6 bytes/);
      assert.equal(nameBytes('éé', 'key', 4).length, 4);
    });
  });
});
