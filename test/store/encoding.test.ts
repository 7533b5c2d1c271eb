import assert from 'node:assert/strict';
import { PREFIX_SIZE, TAG_INDEX, decodeIndexSuffix, idPrefix, indexKey, indexKeyFromCount, indexSuffix, prefixEnd, readId, readRankCount, writeId, writeRankCount } from '../../lib/store/encoding.js';
import { INT64_MAX, INT64_MIN } from '../../lib/protocol/fields.js';
import { random, randomInt64 } from './helpers.js';

/** Rank order of docs/protocol.md: count descending, then key bytes ascending. */
function rankCompare(a: { count: bigint; key: Buffer }, b: { count: bigint; key: Buffer }): number {
  if (a.count !== b.count) return a.count > b.count ? -1 : 1;
  return Buffer.compare(a.key, b.key);
}

describe('store encoding', () => {
  it('rank counts round-trip at the edges of the signed 64-bit range', () => {
    const buf = Buffer.alloc(8);
    // Both decode paths: within +-2^53 (one number conversion) and beyond it, at their boundaries.
    const edges = [2n ** 53n, 2n ** 53n - 1n, 2n ** 53n + 1n, -(2n ** 53n), -(2n ** 53n) - 1n, 2n ** 32n - 1n, 2n ** 32n, -(2n ** 32n), -(2n ** 32n) - 1n];
    for (const c of [INT64_MIN, INT64_MIN + 1n, -1n, 0n, 1n, 2n ** 60n + 1n, INT64_MAX - 1n, INT64_MAX, ...edges]) {
      writeRankCount(buf, 0, c);
      assert.equal(readRankCount(buf, 0), c);
    }
    writeRankCount(buf, 0, INT64_MAX);
    assert.equal(buf.toString('hex'), '0000000000000000');
    writeRankCount(buf, 0, INT64_MIN);
    assert.equal(buf.toString('hex'), 'ffffffffffffffff');
  });

  it('sorts index keys in rank order over random counts, ties and prefix keys', () => {
    const rand = random(7);
    const counts = [INT64_MIN, INT64_MAX, 0n, -1n, 1n];
    for (let i = 0; i < 60; i++) counts.push(randomInt64(rand));
    const keys = ['a', 'ab', 'abc', 'b', 'ba', '\xff', '\xff\xff', '\x01'].map((k) => Buffer.from(k, 'latin1'));
    for (let i = 0; i < 20; i++) keys.push(Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 4) }, () => 1 + Math.floor(rand() * 255))));
    const entries: Array<{ count: bigint; key: Buffer }> = [];
    for (let i = 0; i < 3000; i++) entries.push({ count: counts[Math.floor(rand() * counts.length)], key: keys[Math.floor(rand() * keys.length)] });
    const prefix = idPrefix(TAG_INDEX, 42);
    const byBytes = entries.map((e) => indexKey(prefix, e.count, e.key)).sort(Buffer.compare);
    const expected = [...entries].sort(rankCompare);
    assert.deepEqual(
      byBytes.map((k) => decodeIndexSuffix(k.subarray(PREFIX_SIZE))),
      expected.map((e) => ({ key: e.key, count: e.count })),
    );
  });

  it('builds index keys from count bytes exactly as from the bigint', () => {
    const rand = random(11);
    const prefix = idPrefix(TAG_INDEX, 3);
    const key = Buffer.from('k');
    for (const c of [INT64_MIN, INT64_MAX, 0n, -1n, 1n, ...Array.from({ length: 500 }, () => randomInt64(rand))]) {
      const value = Buffer.alloc(8);
      value.writeBigInt64BE(c);
      assert.deepEqual(indexKeyFromCount(prefix, value, key), indexKey(prefix, c, key), `count ${c}`);
    }
  });

  it('a shorter key sorts before its extensions at equal counts', () => {
    assert.ok(Buffer.compare(indexSuffix(5n, Buffer.from('ab')), indexSuffix(5n, Buffer.from('abc'))) < 0);
    assert.ok(Buffer.compare(indexSuffix(6n, Buffer.from('zzz')), indexSuffix(5n, Buffer.from('a'))) < 0);
    assert.ok(Buffer.compare(indexSuffix(-1n, Buffer.from('a')), indexSuffix(-2n, Buffer.from('a'))) < 0);
  });

  it('ids round-trip up to 2^53 and keyspace ranges do not overlap', () => {
    const buf = Buffer.alloc(8);
    for (const id of [0, 1, 255, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      writeId(buf, 0, id);
      assert.equal(readId(buf, 0), id);
    }
    const a = idPrefix(TAG_INDEX, 255);
    const b = idPrefix(TAG_INDEX, 256);
    assert.ok(Buffer.compare(prefixEnd(a), b) <= 0);
    assert.ok(Buffer.compare(indexKey(a, INT64_MIN, Buffer.from('\xff\xff\xff', 'latin1')), prefixEnd(a)) < 0);
  });
});
