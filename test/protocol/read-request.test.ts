import assert from 'node:assert/strict';
import { DEFAULT_FIELD_SIZES, UINT64_MAX, fieldNameLength, readRequestSize } from '../../lib/protocol/fields.js';
import {
  OPCODE_FLAG,
  OP_AROUND,
  OP_GET,
  OP_HEALTH,
  OP_HELLO,
  OP_KEYSPACES,
  OP_RANK,
  ReadRequestDecoder,
  decodeReadRequest,
  encodeReadRequest,
  requestSizeFor,
} from '../../lib/protocol/read-request.js';
import { isCountdError } from '../../lib/errors.js';

const sizes = DEFAULT_FIELD_SIZES;
const small = { keyspaceSize: 4, keySize: 3 };

function decodeOne(buf: Buffer, s = sizes, extended = true) {
  const r = decodeReadRequest(buf, 0, s, extended);
  assert.equal(r.kind, 'request', r.kind === 'malformed' ? r.reason : r.kind);
  if (r.kind !== 'request') throw new Error('unreachable');
  assert.equal(r.size, buf.length);
  return r.request;
}

describe('read request codec', () => {
  it('a page request is 272 bytes with the default sizes, laid out as docs/protocol.md section 2', () => {
    const buf = encodeReadRequest({ op: 'page', offset: 5, length: 10, keyspace: 'pages' }, sizes);
    assert.equal(buf.length, 272);
    assert.equal(readRequestSize(sizes), 272);
    assert.equal(buf.readBigUInt64LE(0), 5n);
    assert.equal(buf.readBigUInt64LE(8), 10n);
    assert.equal(buf.subarray(16, 21).toString(), 'pages');
    assert.ok(buf.subarray(21).every((b) => b === 0));
    assert.deepEqual(decodeOne(buf), { op: 'page', offset: 5n, length: 10n, keyspace: Buffer.from('pages') });
  });

  it('round-trips the full range of page offsets and lengths', () => {
    for (const [offset, length] of [[0n, 0n], [OPCODE_FLAG - 1n, UINT64_MAX], [2n ** 53n + 1n, 2n ** 32n]]) {
      const r = decodeOne(encodeReadRequest({ op: 'page', offset: offset!, length: length!, keyspace: 'k' }, sizes));
      assert.deepEqual(r, { op: 'page', offset, length, keyspace: Buffer.from('k') });
    }
  });

  it('round-trips every extension op', () => {
    const cases = [
      [{ op: 'hello' }, { op: 'hello', version: 2n }, 272],
      [{ op: 'dense', keyspace: 'ks', key: 'd' }, { op: 'dense', keyspace: Buffer.from('ks'), key: Buffer.from('d') }, 528],
      [{ op: 'count', keyspace: 'ks', min: -5n }, { op: 'count', keyspace: Buffer.from('ks'), min: -5n }, 280],
      [{ op: 'settings', offset: 4, length: 2 }, { op: 'settings', offset: 4n, length: 2n }, 280],
      [{ op: 'health' }, { op: 'health' }, 272],
      [{ op: 'get', keyspace: 'ks', key: 'a' }, { op: 'get', keyspace: Buffer.from('ks'), key: Buffer.from('a') }, 528],
      [{ op: 'rank', keyspace: 'ks', key: 'b' }, { op: 'rank', keyspace: Buffer.from('ks'), key: Buffer.from('b') }, 528],
      [{ op: 'around', keyspace: 'ks', key: 'c', length: 7 }, { op: 'around', length: 7n, keyspace: Buffer.from('ks'), key: Buffer.from('c') }, 528],
      [{ op: 'keyspaces', offset: 3, length: 9 }, { op: 'keyspaces', offset: 3n, length: 9n }, 280],
    ] as const;
    for (const [input, expected, size] of cases) {
      const buf = encodeReadRequest(input, sizes);
      assert.equal(buf.length, size, input.op);
      assert.deepEqual(decodeOne(buf), expected);
    }
  });

  it('puts the opcode in the offset field with the top bit set', () => {
    const buf = encodeReadRequest({ op: 'rank', keyspace: 'pages', key: 'blog' }, sizes);
    assert.deepEqual([...buf.subarray(0, 8)], [2, 0, 0, 0, 0, 0, 0, 0x80]);
    assert.equal(requestSizeFor(OPCODE_FLAG | BigInt(OP_HELLO), sizes), 272);
    assert.equal(requestSizeFor(OPCODE_FLAG | BigInt(OP_GET), sizes), 528);
    assert.equal(requestSizeFor(OPCODE_FLAG | BigInt(OP_RANK), sizes), 528);
    assert.equal(requestSizeFor(OPCODE_FLAG | BigInt(OP_AROUND), sizes), 528);
    assert.equal(requestSizeFor(OPCODE_FLAG | BigInt(OP_KEYSPACES), sizes), 280);
    assert.equal(requestSizeFor(OPCODE_FLAG | BigInt(OP_HEALTH), sizes), 272);
    assert.equal(requestSizeFor(OPCODE_FLAG | 6n, sizes), 528);
    assert.equal(requestSizeFor(OPCODE_FLAG | 7n, sizes), 280);
    assert.equal(requestSizeFor(OPCODE_FLAG | 8n, sizes), 280);
    assert.equal(requestSizeFor(OPCODE_FLAG | 9n, sizes), -1);
    assert.equal(requestSizeFor(UINT64_MAX, sizes), -1);
  });

  it('the hello is malformed under docs/protocol.md (empty keyspace field): offset 2^63, length = version, keyspace all NUL', () => {
    const buf = encodeReadRequest({ op: 'hello' }, sizes);
    assert.deepEqual([...buf.subarray(0, 16)], [0, 0, 0, 0, 0, 0, 0, 0x80, 2, 0, 0, 0, 0, 0, 0, 0]);
    assert.ok(buf.subarray(16).every((b) => b === 0));
    // What a server of docs/protocol.md alone checks: the keyspace field; an empty one is malformed.
    assert.equal(fieldNameLength(buf, 16, sizes.keyspaceSize), -1);
    assert.deepEqual(decodeOne(buf, sizes, false), { op: 'hello', version: 2n });
  });

  describe('on a plain connection (no hello yet), every request is a page of 16 + KS bytes', () => {
    for (const offset of [OPCODE_FLAG, OPCODE_FLAG | BigInt(OP_GET), OPCODE_FLAG | BigInt(OP_KEYSPACES), OPCODE_FLAG | BigInt(OP_HEALTH), OPCODE_FLAG | 77n, UINT64_MAX]) {
      it(`offset 0x${offset.toString(16)} is a page`, () => {
        const buf = Buffer.alloc(readRequestSize(small));
        buf.writeBigUInt64LE(offset, 0);
        buf.writeBigUInt64LE(offset === OPCODE_FLAG ? 1n : 0n, 8);
        buf.write('ab', 16);
        assert.equal(requestSizeFor(offset, small, false), 20);
        assert.deepEqual(decodeOne(buf, small, false), { op: 'page', offset, length: offset === OPCODE_FLAG ? 1n : 0n, keyspace: Buffer.from('ab') });
      });
    }
    it('the hello of version 1 of the extensions (keyspace "countd") is a page too', () => {
      const buf = Buffer.alloc(272);
      buf.writeBigUInt64LE(OPCODE_FLAG, 0);
      buf.writeBigUInt64LE(1n, 8);
      buf.write('countd', 16);
      assert.deepEqual(decodeOne(buf, sizes, false), { op: 'page', offset: OPCODE_FLAG, length: 1n, keyspace: Buffer.from('countd') });
    });
  });

  it('encodes a page offset of 2^63 or more as 2^63 - 1 (a page that selects nothing, on any connection)', () => {
    for (const offset of [OPCODE_FLAG, OPCODE_FLAG | 2n, UINT64_MAX]) {
      const buf = encodeReadRequest({ op: 'page', offset, length: 3, keyspace: 'a' }, sizes);
      assert.equal(buf.readBigUInt64LE(0), OPCODE_FLAG - 1n);
      assert.deepEqual(decodeOne(buf, sizes, true), { op: 'page', offset: OPCODE_FLAG - 1n, length: 3n, keyspace: Buffer.from('a') });
    }
  });

  it('accepts names that fill the whole field and arbitrary non-NUL bytes', () => {
    const r = decodeOne(encodeReadRequest({ op: 'get', keyspace: 'abcd', key: Buffer.from([0xff, 1, 0x80]) }, small), small);
    assert.deepEqual(r, { op: 'get', keyspace: Buffer.from('abcd'), key: Buffer.from([0xff, 1, 0x80]) });
  });

  it('reports partial input with the size it needs', () => {
    const buf = encodeReadRequest({ op: 'around', keyspace: 'ks', key: 'c', length: 3 }, sizes);
    assert.deepEqual(decodeReadRequest(buf.subarray(0, 7), 0, sizes), { kind: 'partial', size: 8 });
    assert.deepEqual(decodeReadRequest(buf.subarray(0, 300), 0, sizes), { kind: 'partial', size: 528 });
  });

  describe('rejects every malformed form', () => {
    const page = (offset: bigint, length: bigint, ks: number[], tail: number[] = [], s = small): Buffer => {
      const buf = Buffer.alloc(16 + s.keyspaceSize + tail.length);
      buf.writeBigUInt64LE(offset, 0);
      buf.writeBigUInt64LE(length, 8);
      Buffer.from(ks).copy(buf, 16);
      Buffer.from(tail).copy(buf, 16 + s.keyspaceSize);
      return buf;
    };
    const op = (n: number): bigint => OPCODE_FLAG | BigInt(n);
    const cases: Array<[string, Buffer]> = [
      ['page: empty keyspace', page(0n, 1n, [0, 0, 0, 0])],
      ['page: empty keyspace with junk after the NUL', page(0n, 1n, [0, 0x61, 0, 0])],
      ['page: junk after the NUL', page(0n, 1n, [0x61, 0, 0x62, 0])],
      ['page: junk in the last byte', page(0n, 1n, [0x61, 0, 0, 1])],
      ['unknown opcode 9', page(op(9), 0n, [0x61, 0, 0, 0])],
      ['dense: length 1', page(op(6), 1n, [0x61, 0, 0, 0], [0x62, 0, 0])],
      ['dense: empty key', page(op(6), 0n, [0x61, 0, 0, 0], [0, 0, 0])],
      ['count: length 1', page(op(7), 1n, [0x61, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0])],
      ['count: empty keyspace', page(op(7), 0n, [0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0])],
      ['settings: a keyspace name given', page(op(8), 3n, [0x61, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0])],
      ['offset 2^64 - 1 (unknown opcode)', page(UINT64_MAX, 0n, [0x61, 0, 0, 0])],
      ['hello: length 0', page(op(OP_HELLO), 0n, [0, 0, 0, 0])],
      ['hello: a keyspace name given', page(op(OP_HELLO), 1n, [0x61, 0, 0, 0])],
      ['health: length 1', page(op(OP_HEALTH), 1n, [0, 0, 0, 0])],
      ['health: a keyspace name given', page(op(OP_HEALTH), 0n, [0x61, 0, 0, 0])],
      ['get: length 1', page(op(OP_GET), 1n, [0x61, 0, 0, 0], [0x62, 0, 0])],
      ['get: empty key', page(op(OP_GET), 0n, [0x61, 0, 0, 0], [0, 0, 0])],
      ['get: junk after the key NUL', page(op(OP_GET), 0n, [0x61, 0, 0, 0], [0x62, 0, 0x63])],
      ['get: empty keyspace', page(op(OP_GET), 0n, [0, 0, 0, 0], [0x62, 0, 0])],
      ['rank: length 5', page(op(OP_RANK), 5n, [0x61, 0, 0, 0], [0x62, 0, 0])],
      ['rank: junk after the keyspace NUL', page(op(OP_RANK), 0n, [0x61, 0, 9, 0], [0x62, 0, 0])],
      ['around: length 0', page(op(OP_AROUND), 0n, [0x61, 0, 0, 0], [0x62, 0, 0])],
      ['around: empty key', page(op(OP_AROUND), 3n, [0x61, 0, 0, 0], [0, 0, 0])],
      ['keyspaces: a keyspace name given', page(op(OP_KEYSPACES), 3n, [0x61, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0])],
      ['keyspaces: junk in the keyspace field', page(op(OP_KEYSPACES), 3n, [0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0])],
    ];
    for (const [name, buf] of cases) {
      it(`extended: ${name}`, () => {
        const r = decodeReadRequest(buf, 0, small, true);
        assert.equal(r.kind, 'malformed');
      });
    }
    for (const [name, buf] of cases.filter(([, b]) => b.length === 20 && !(b.readBigUInt64LE(0) === op(OP_HELLO) && b.readBigUInt64LE(8) > 0n))) {
      const plain = fieldNameLength(buf, 16, 4) < 0;
      it(`plain: ${name}: ${plain ? 'malformed (invalid keyspace field)' : 'a page'}`, () => {
        const r = decodeReadRequest(buf, 0, small, false);
        assert.equal(r.kind, plain ? 'malformed' : 'request');
      });
    }

    it('decides an unknown opcode from the first 8 bytes alone', () => {
      const buf = Buffer.alloc(8);
      buf.writeBigUInt64LE(op(77), 0);
      assert.equal(decodeReadRequest(buf, 0, sizes, true).kind, 'malformed');
    });
  });

  describe('encodeReadRequest validates its arguments', () => {
    const bad: Array<[string, () => unknown]> = [
      ['empty keyspace', () => encodeReadRequest({ op: 'page', offset: 0, length: 1, keyspace: '' }, sizes)],
      ['NUL in keyspace', () => encodeReadRequest({ op: 'page', offset: 0, length: 1, keyspace: 'a\0b' }, sizes)],
      ['keyspace too long', () => encodeReadRequest({ op: 'page', offset: 0, length: 1, keyspace: 'abcde' }, small)],
      ['offset above 2^64 - 1', () => encodeReadRequest({ op: 'page', offset: UINT64_MAX + 1n, length: 1, keyspace: 'a' }, sizes)],
      ['negative length', () => encodeReadRequest({ op: 'page', offset: 0, length: -1, keyspace: 'a' }, sizes)],
      ['length above 2^64 - 1', () => encodeReadRequest({ op: 'page', offset: 0, length: UINT64_MAX + 1n, keyspace: 'a' }, sizes)],
      ['fractional offset', () => encodeReadRequest({ op: 'page', offset: 1.5, length: 1, keyspace: 'a' }, sizes)],
      ['empty key', () => encodeReadRequest({ op: 'get', keyspace: 'a', key: '' }, sizes)],
      ['around of length 0', () => encodeReadRequest({ op: 'around', keyspace: 'a', key: 'b', length: 0 }, sizes)],
    ];
    for (const [name, fn] of bad) {
      it(name, () => assert.throws(fn, (err: unknown) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT')));
    }
  });

  it('ReadRequestDecoder splits a pipelined stream fed one byte at a time, plain until the hello', () => {
    const opcodePage = Buffer.alloc(20);
    opcodePage.writeBigUInt64LE(OPCODE_FLAG | BigInt(OP_GET), 0);
    opcodePage.write('z', 16);
    const reqs = [
      encodeReadRequest({ op: 'page', offset: 1, length: 2, keyspace: 'a' }, small),
      opcodePage, // plain: a page (20 bytes), not a get (23)
      opcodePage,
      encodeReadRequest({ op: 'hello' }, small),
      encodeReadRequest({ op: 'get', keyspace: 'b', key: 'c' }, small),
      encodeReadRequest({ op: 'keyspaces', offset: 0, length: 4 }, small),
      encodeReadRequest({ op: 'health' }, small),
      encodeReadRequest({ op: 'hello' }, small),
    ];
    const stream = Buffer.concat(reqs);
    const d = new ReadRequestDecoder(small);
    const out = [];
    for (let i = 0; i < stream.length; i++) {
      d.push(stream.subarray(i, i + 1));
      for (let r = d.next(); r !== undefined; r = d.next()) out.push(r);
    }
    assert.deepEqual(out.map((r) => ('op' in r ? r.op : 'malformed')), ['page', 'page', 'page', 'hello', 'get', 'keyspaces', 'health', 'hello']);
    assert.ok(d.extended);
    assert.equal(d.buffered, 0);
  });

  it('ReadRequestDecoder stops at a malformed request and yields nothing after it', () => {
    const good = encodeReadRequest({ op: 'page', offset: 0, length: 2, keyspace: 'a' }, small);
    const bad = Buffer.alloc(good.length);
    const d = new ReadRequestDecoder(small);
    d.push(Buffer.concat([good, bad, good]));
    assert.equal((d.next() as { op: string }).op, 'page');
    assert.ok('malformed' in (d.next() ?? {}));
    assert.equal(d.next(), undefined);
    d.push(good);
    assert.equal(d.next(), undefined);
  });
});
