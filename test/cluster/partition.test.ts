// The cluster's partition function and its marks' codecs (docs/cluster.md,
// docs/storage-format.md "Marks"): fixed for the life of a cluster, so
// checked against published FNV-1a test vectors and the documented example.

import assert from 'node:assert/strict';
import { PARTITIONS, partitionOf, partitionOfSubject, subjectOf } from '../../lib/cluster/partition.js';
import { clusterPositionMarkName, clusterWriterMarkName, decodeClusterPosition, decodeU64Mark, encodeClusterPosition, encodeU64Mark } from '../../lib/store/marks.js';

describe('cluster partitions and marks', () => {
  it('partition = FNV-1a-32 of the name mod 16 (published vectors: "" 0x811c9dc5, "a" 0xe40c292c, "foobar" 0xbf9cf968)', () => {
    assert.equal(PARTITIONS, 16);
    assert.equal(partitionOf(Buffer.from('')), 0x811c9dc5 % 16);
    assert.equal(partitionOf(Buffer.from('a')), 0xe40c292c % 16);
    assert.equal(partitionOf(Buffer.from('foobar')), 0xbf9cf968 % 16);
    assert.equal(partitionOf(Buffer.from('alpha')), 0x5d8b6dab % 16, 'the example of docs/cluster.md: 11');
  });

  it('subjects name their partition; anything else is no partition', () => {
    assert.equal(partitionOfSubject(subjectOf(13)), 13);
    for (const bad of ['countd.p.16', 'countd.p.-1', 'countd.p.x', 'other.p.1', 'countd.p.']) assert.equal(partitionOfSubject(bad), -1, bad);
  });

  it('position mark: the documented bytes of sequence 42 under epoch 3; absent or short reads as nothing applied', () => {
    assert.equal(clusterPositionMarkName(7), 'cluster/p/7');
    assert.equal(encodeClusterPosition(42, 3).toString('hex'), '2a000000000000000300000000000000');
    assert.deepEqual(decodeClusterPosition(encodeClusterPosition(42, 3)), { seq: 42, epoch: 3 });
    assert.deepEqual(decodeClusterPosition(undefined), { seq: 0, epoch: 0 });
    assert.deepEqual(decodeClusterPosition(Buffer.alloc(15, 1)), { seq: 0, epoch: 0 });
  });

  it('writer watermark mark: u64 LE; absent or short reads as 0', () => {
    assert.equal(clusterWriterMarkName(7, 'w0123456789abcdef'), 'cluster/w/7/w0123456789abcdef');
    assert.equal(decodeU64Mark(encodeU64Mark(123456789)), 123456789);
    assert.equal(decodeU64Mark(undefined), 0);
    assert.equal(decodeU64Mark(Buffer.alloc(7, 1)), 0);
  });
});
