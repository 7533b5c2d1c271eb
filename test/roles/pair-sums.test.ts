// PairSums, the summing thread's table, against two models: IncrementBatch
// (the same sums, grouping and order through the same SummedBatch) and a
// plain Map of exact bigint sums. Seeded: every run sees the same entries.

import assert from 'node:assert/strict';
import { encodeEntry, entrySize } from '../../lib/commitlog/format.js';
import { CountdError } from '../../lib/errors.js';
import { INT64_MAX, INT64_MIN } from '../../lib/protocol/fields.js';
import { PairSums } from '../../lib/roles/work/pair-sums.js';
import { batchFromSummed } from '../../lib/roles/work/summed-batch.js';
import { IncrementBatch } from '../../lib/store/increment-batch.js';
import { random } from '../store/helpers.js';

type Entry = [bigint, Buffer, Buffer];

function payloadOf(entries: Entry[]): Buffer {
  const buf = Buffer.alloc(entries.reduce((n, [, ks, key]) => n + entrySize(ks.length, key.length), 0));
  let at = 0;
  for (const [inc, ks, key] of entries) at = encodeEntry(buf, at, inc, ks, key);
  return buf;
}

/** A batch as [keyspace, [key, delta]...] in its order. */
function shape(batch: IncrementBatch): Array<[string, Array<[string, string]>]> {
  const bytes = batch.keyBytes;
  return [...batch.keyspaces()].map((g) => [g.name.toString('latin1'), g.items.map((p) => [bytes.subarray(p.keyStart, p.keyStart + p.keyLength).toString('latin1'), p.delta.toString()] as [string, string])]);
}

function summedShape(table: PairSums): Array<[string, Array<[string, string]>]> {
  const summed = table.toSummed();
  // As the thread hands it over: transferred.
  const copy = structuredClone(summed, { transfer: [summed.pairBytes.buffer, summed.keyBytes.buffer, summed.keyStarts.buffer, summed.deltas.buffer] as ArrayBuffer[] });
  return shape(batchFromSummed(copy));
}

describe('PairSums (the summing thread)', () => {
  for (const seed of [1, 2, 3]) {
    it(`sums, groups and orders as IncrementBatch, exactly past 2^53 and int64 (seed ${seed})`, () => {
      const rand = random(seed);
      const name = (n: number): Buffer => Buffer.from(Array.from({ length: 1 + Math.floor(rand() * n) }, () => Math.floor(rand() * 256)));
      const spaces = Array.from({ length: 7 }, () => name(5));
      const keys = Array.from({ length: 2000 }, () => name(30));
      const table = new PairSums();
      const reference = new IncrementBatch();
      const model = new Map<string, bigint>();
      let entries = 0;
      for (let p = 0; p < 40; p++) {
        const batch: Entry[] = [];
        for (let i = 0; i < 500; i++) {
          const r = rand();
          const inc =
            r < 0.02 ? INT64_MAX : r < 0.04 ? INT64_MIN : r < 0.06 ? 0n : r < 0.08 ? BigInt(Number.MAX_SAFE_INTEGER) : r < 0.1 ? -(1n << 40n) : BigInt(Math.floor(rand() * 2001) - 1000);
          batch.push([inc, spaces[Math.floor(rand() * spaces.length)]!, keys[Math.floor(rand() * keys.length)]!]);
        }
        entries += table.addPayload(payloadOf(batch));
        for (const [inc, ks, key] of batch) {
          reference.add(ks, key, inc);
          if (inc !== 0n) {
            const k = `${ks.toString('hex')}/${key.toString('hex')}`;
            model.set(k, (model.get(k) ?? 0n) + inc);
          }
        }
      }
      assert.equal(entries, 40 * 500);
      assert.equal(table.count, reference.keys);
      assert.equal(table.count, model.size);
      const got = summedShape(table);
      assert.deepEqual(got, shape(reference));
      // And the sums themselves against the plain model.
      let big = 0;
      for (const [ks, items] of got) {
        for (const [key, delta] of items) {
          const expected = model.get(`${Buffer.from(ks, 'latin1').toString('hex')}/${Buffer.from(key, 'latin1').toString('hex')}`);
          assert.equal(delta, expected?.toString());
          if (BigInt(delta) > INT64_MAX || BigInt(delta) < INT64_MIN) big++;
        }
      }
      assert.ok(big > 0, 'some sums left the int64 range');
    });
  }

  it('keeps a pair whose increments sum to 0, and drops increments of 0', () => {
    const table = new PairSums();
    const a = Buffer.from('a');
    table.addPayload(payloadOf([[5n, a, Buffer.from('x')], [0n, a, Buffer.from('y')], [-5n, a, Buffer.from('x')]]));
    assert.equal(table.count, 1);
    assert.deepEqual(summedShape(table), [['a', [['x', '0']]]]);
  });

  it('grows past its initial table without losing a pair', () => {
    const table = new PairSums();
    const entries: Entry[] = [];
    for (let i = 0; i < 50_000; i++) entries.push([BigInt(i + 1), Buffer.from(`ks${i % 3}`), Buffer.from(`key-${i}`)]);
    table.addPayload(payloadOf(entries));
    table.addPayload(payloadOf(entries));
    assert.equal(table.count, 50_000);
    const got = summedShape(table);
    assert.deepEqual(got.map(([ks, items]) => [ks, items.length]), [['ks0', 16_667], ['ks1', 16_667], ['ks2', 16_666]]);
    assert.deepEqual(got[1]![1][5], ['key-16', '34']);
  });

  it('rejects a malformed payload with COUNTD_CORRUPTION', () => {
    const good = payloadOf([[1n, Buffer.from('a'), Buffer.from('b')]]);
    for (const [what, payload] of [
      ['truncated entry header', good.subarray(0, 10)],
      ['empty name', Buffer.concat([good.subarray(0, 8), Buffer.from([0, 0, 1, 0]), Buffer.from('b')])],
      ['entry runs past the end', good.subarray(0, good.length - 1)],
    ] as const) {
      assert.throws(() => new PairSums().addPayload(payload), (err: unknown) => err instanceof CountdError && err.code === 'COUNTD_CORRUPTION', what);
    }
  });
});
