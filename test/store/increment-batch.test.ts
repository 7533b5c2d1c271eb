// IncrementBatch: summing, and the transferable form (toSummed/fromSummed)
// that carries a batch from the worker's summing thread to the store.

import assert from 'node:assert/strict';
import { INT64_MAX, INT64_MIN } from '../../lib/protocol/write-frame.js';
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

  it('survives toSummed/fromSummed exactly, sums beyond int64 included (seeded)', () => {
    const rand = random(7);
    const b = new IncrementBatch();
    const name = (n: number): Buffer => Buffer.from(Array.from({ length: 1 + Math.floor(rand() * n) }, () => 1 + Math.floor(rand() * 255)));
    const spaces = Array.from({ length: 5 }, () => name(4));
    const keys = Array.from({ length: 300 }, () => name(40));
    for (let i = 0; i < 3000; i++) {
      const r = rand();
      const delta = r < 0.05 ? INT64_MAX : r < 0.1 ? INT64_MIN : BigInt(Math.floor(rand() * 2001) - 1000);
      b.add(spaces[Math.floor(rand() * spaces.length)]!, keys[Math.floor(rand() * keys.length)]!, delta);
    }
    const summed = b.toSummed();
    assert.ok(summed.big.length > 0, 'some sums left the int64 range');
    // As a worker thread would: structured-clone it, transferring the buffers.
    const copy = structuredClone(summed, { transfer: [summed.pairBytes.buffer, summed.keyBytes.buffer, summed.keyStarts.buffer, summed.deltas.buffer] as ArrayBuffer[] });
    const back = IncrementBatch.fromSummed(copy);
    assert.equal(back.keys, b.keys);
    assert.deepEqual(shape(back), shape(b));
    assert.throws(() => back.add(Buffer.from('a'), Buffer.from('b'), 1n), /complete/);
  });

  it('an empty batch round-trips', () => {
    const back = IncrementBatch.fromSummed(new IncrementBatch().toSummed());
    assert.equal(back.keys, 0);
    assert.deepEqual([...back.keyspaces()], []);
  });
});
