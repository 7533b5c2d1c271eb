// lib/util/int64.ts: the same bytes and the same range errors as Buffer's
// writeBigUInt64LE / writeBigInt64LE, across the range and its edges.

import assert from 'node:assert/strict';
import { readI64LE, readU64LE, writeI64LE, writeU64LE } from '../../lib/util/int64.js';

describe('util/int64', () => {
  const unsigned = [0n, 1n, 255n, 256n, 0xffff_ffffn, 0x1_0000_0000n, 0x0123_4567_89ab_cdefn, 0x7fff_ffff_ffff_ffffn, 0x8000_0000_0000_0000n, 0xffff_ffff_ffff_ffffn];
  const signed = [0n, 1n, -1n, 255n, -256n, 0x7fff_ffff_ffff_ffffn, -0x8000_0000_0000_0000n, -0x0123_4567_89ab_cdefn];

  it('writes unsigned values as Buffer#writeBigUInt64LE does', () => {
    for (const v of unsigned) {
      for (const offset of [0, 3, 8]) {
        const a = Buffer.alloc(16, 0xaa);
        const b = Buffer.alloc(16, 0xaa);
        writeU64LE(a, offset, v);
        b.writeBigUInt64LE(v, offset);
        assert.deepEqual(a, b, `${v} at ${offset}`);
      }
    }
  });
  it('writes signed values as Buffer#writeBigInt64LE does', () => {
    for (const v of signed) {
      const a = Buffer.alloc(12, 0x55);
      const b = Buffer.alloc(12, 0x55);
      writeI64LE(a, 2, v);
      b.writeBigInt64LE(v, 2);
      assert.deepEqual(a, b, String(v));
    }
  });
  it('rejects values out of range, and writes nothing', () => {
    const a = Buffer.alloc(8);
    assert.throws(() => writeU64LE(a, 0, -1n), RangeError);
    assert.throws(() => writeU64LE(a, 0, 0x1_0000_0000_0000_0000n), RangeError);
    assert.throws(() => writeI64LE(a, 0, 0x8000_0000_0000_0000n), RangeError);
    assert.throws(() => writeI64LE(a, 0, -0x8000_0000_0000_0001n), RangeError);
    assert.deepEqual(a, Buffer.alloc(8));
  });
  it('rejects an offset that leaves no room for 8 bytes', () => {
    assert.throws(() => writeU64LE(Buffer.alloc(8), 1, 1n), RangeError);
    assert.throws(() => writeI64LE(Buffer.alloc(8), -1, 1n), RangeError);
    assert.throws(() => readU64LE(Buffer.alloc(8), 1), RangeError);
    assert.throws(() => readI64LE(Buffer.alloc(7), 0), RangeError);
  });
  it('reads what Buffer#writeBig(U)Int64LE wrote', () => {
    for (const v of unsigned) {
      const b = Buffer.alloc(13);
      b.writeBigUInt64LE(v, 5);
      assert.equal(readU64LE(b, 5), v);
    }
    for (const v of signed) {
      const b = Buffer.alloc(9);
      b.writeBigInt64LE(v, 1);
      assert.equal(readI64LE(b, 1), v);
    }
  });
});
