// Fences (lib/store/rank-fences.ts) keep their keys in memory of their own:
// one Buffer per Fences, never views of the Buffers they were built from
// (which would keep an apply's key slabs, or one allocation per fence, alive
// for as long as the keyspace stays cached).

import assert from 'node:assert/strict';
import { Fences } from '../../lib/store/rank-fences.js';

describe('Fences keys', () => {
  it('are copies, packed into one Buffer, equal byte for byte to the keys given', () => {
    // Slices of one pooled Buffer, as an apply's index keys are.
    const source = Buffer.from('\u0000abc\u0000defg\u0000hi', 'latin1');
    const given = [Buffer.alloc(0), source.subarray(0, 4), source.subarray(4, 9), source.subarray(9)];
    const fences = new Fences(given, [3, 4, 5, 6]);
    assert.deepEqual(fences.keys.map((k) => k.toString('latin1')), given.map((k) => k.toString('latin1')));
    const packs = new Set(fences.keys.map((k) => k.buffer));
    assert.equal(packs.size, 1, 'one Buffer for all keys');
    assert.notEqual([...packs][0], source.buffer, 'not the Buffer they came from');
    source.fill(0x7a);
    assert.equal(fences.keys[2]!.toString('latin1'), '\u0000defg', 'unchanged when the source is reused');
    assert.equal(fences.blockOf(Buffer.from('\u0000e', 'latin1')), 2);
  });
});
