// IncrementBatch: summing, and the transferable form (SummedBatch, built by
// the summing thread's PairSums) that carries a batch to the store.

import assert from 'node:assert/strict';
import { INT64_MAX, INT64_MIN } from '../../lib/protocol/fields.js';
import { encodeEntry, entrySize } from '../../lib/commitlog/format.js';
import { PairSums } from '../../lib/roles/work/pair-sums.js';
import { batchFromSummed } from '../../lib/roles/work/summed-batch.js';
import { IncrementBatch } from '../../lib/store/increment-batch.js';
import { random } from './helpers.js';

function shape(batch: IncrementBatch): Array<[string, Array<[string, string, string]>]> {
  const bytes = batch.keyBytes;
  return [...batch.keyspaces()].map((g) => [
    g.name.toString('latin1'),
    g.items.map((p) => [p.pair, bytes.subarray(p.keyStart, p.keyStart + p.keyLength).toString('latin1'), p.delta.toString()] as [string, string, string]),
  ]);
}

describe('IncrementBatch', () => {
  it('sums per (keyspace, key), ignores zero deltas, keeps first-seen order', () => {
    const b = new IncrementBatch();
    b.add(Buffer.from('a'), Buffer.from('x'), 1n);
    b.add(Buffer.from('b'), Buffer.from('x'), 5n);
    b.add(Buffer.from('a'), Buffer.from('y'), 0n);
    b.add(Buffer.from('a'), Buffer.from('x'), -3n);
    b.add(Buffer.from('a'), Buffer.from('z'), 7n);
    assert.equal(b.keys, 3);
    assert.deepEqual(
      shape(b).map(([ks, items]) => [ks, items.map(([, key, delta]) => [key, delta])]),
      [
        ['a', [['x', '-2'], ['z', '7']]],
        ['b', [['x', '5']]],
      ],
    );
  });

  it('survives PairSums#toSummed/batchFromSummed exactly, sums beyond int64 included (seeded)', () => {
    const rand = random(7);
    const b = new IncrementBatch();
    const table = new PairSums();
    const name = (n: number): Buffer => Buffer.from(Array.from({ length: 1 + Math.floor(rand() * n) }, () => 1 + Math.floor(rand() * 255)));
    const spaces = Array.from({ length: 5 }, () => name(4));
    const keys = Array.from({ length: 300 }, () => name(40));
    for (let i = 0; i < 3000; i++) {
      const r = rand();
      const delta = r < 0.05 ? INT64_MAX : r < 0.1 ? INT64_MIN : BigInt(Math.floor(rand() * 2001) - 1000);
      const ks = spaces[Math.floor(rand() * spaces.length)]!;
      const key = keys[Math.floor(rand() * keys.length)]!;
      b.add(ks, key, delta);
      const payload = Buffer.alloc(entrySize(ks.length, key.length));
      encodeEntry(payload, 0, delta, ks, key);
      table.addPayload(payload);
    }
    const summed = table.toSummed();
    assert.ok(summed.big.length > 0, 'some sums left the int64 range');
    // As a worker thread would: structured-clone it, transferring the buffers.
    const copy = structuredClone(summed, { transfer: [summed.pairBytes.buffer, summed.keyBytes.buffer, summed.keyStarts.buffer, summed.deltas.buffer] as ArrayBuffer[] });
    const back = batchFromSummed(copy);
    assert.equal(back.keys, b.keys);
    assert.deepEqual(shape(back), shape(b));
    assert.throws(() => back.add(Buffer.from('a'), Buffer.from('b'), 1n), /complete/);
  });

  it('an empty batch round-trips', () => {
    const back = batchFromSummed(new PairSums().toSummed());
    assert.equal(back.keys, 0);
    assert.deepEqual([...back.keyspaces()], []);
  });
});
