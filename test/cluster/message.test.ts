// The partition message of docs/cluster.md ("Partition messages"): the
// documented bytes of the worked example, and one test per way decodeMessage
// refuses a body.

import assert from 'node:assert/strict';
import { encodeEntry, OP_SET, OP_DELETE_KEYSPACE, RECORD_BATCH, RECORD_OPS, writeOpEntry } from '../../lib/commitlog/format.js';
import { decodeMessage, MESSAGE_HEADER_SIZE, writeMessageHeader, writerName } from '../../lib/cluster/message.js';

const SIZES = { keyspaceSize: 16, keySize: 16 };
const WRITER = Buffer.from('0123456789abcdef', 'hex');

function message(type: number, frames: number, seq: number, entries: Buffer): Buffer {
  const body = Buffer.alloc(MESSAGE_HEADER_SIZE + entries.length);
  writeMessageHeader(body, type, frames, WRITER, seq);
  entries.copy(body, MESSAGE_HEADER_SIZE);
  return body;
}

function batchEntries(): Buffer {
  const buf = Buffer.alloc(64);
  const end = encodeEntry(buf, 0, 3n, Buffer.from('alpha'), Buffer.from('k'));
  return buf.subarray(0, end);
}

function opsEntries(): Buffer {
  const names = Buffer.from('pageshomeold');
  const buf = Buffer.alloc(64);
  let end = writeOpEntry(buf, 0, OP_SET, 1000n, names, 0, 5, 5, 4);
  end = writeOpEntry(buf, end, OP_DELETE_KEYSPACE, 0n, names, 9, 3, 0, 0);
  return buf.subarray(0, end);
}

describe('cluster partition messages', () => {
  it('the worked example of docs/cluster.md: writer 0123456789abcdef, sequence 7, one BATCH entry alpha/k +3', () => {
    const body = message(RECORD_BATCH, 1, 7, batchEntries());
    assert.equal(body.toString('hex'), '010100000100000001234567' + '89abcdef07000000' + '00000000' + '0300000000000000' + '05000100' + Buffer.from('alphak').toString('hex'));
    const m = decodeMessage(body, SIZES);
    assert.deepEqual({ writer: m.writer, seq: m.seq, type: m.type, frames: m.frames }, { writer: writerName(WRITER), seq: 7, type: RECORD_BATCH, frames: 1 });
    assert.equal(m.writer, 'w0123456789abcdef');
    assert.deepEqual(m.entries, batchEntries());
  });

  it('an OPS message carries op entries in their order', () => {
    const m = decodeMessage(message(RECORD_OPS, 2, 1, opsEntries()), SIZES);
    assert.equal(m.type, RECORD_OPS);
    assert.deepEqual(m.entries, opsEntries());
  });

  it('refuses a body shorter than the header', () => {
    assert.throws(() => decodeMessage(Buffer.alloc(MESSAGE_HEADER_SIZE - 1), SIZES), { code: 'COUNTD_CORRUPTION', message: /23 bytes, shorter than the 24-byte header/ });
  });

  it('refuses a version it does not know as written by a newer countd (COUNTD_CLUSTER, not skipped as corrupt)', () => {
    const body = message(RECORD_BATCH, 1, 1, batchEntries());
    body[0] = 2;
    assert.throws(() => decodeMessage(body, SIZES), { code: 'COUNTD_CLUSTER', message: /version 2: written by a newer countd/ });
  });

  it('refuses an unknown record type', () => {
    assert.throws(() => decodeMessage(message(2, 1, 1, batchEntries()), SIZES), { code: 'COUNTD_CORRUPTION', message: /unknown record type 2/ });
  });

  it('refuses non-zero reserved bytes', () => {
    const body = message(RECORD_BATCH, 1, 1, batchEntries());
    body[3] = 1;
    assert.throws(() => decodeMessage(body, SIZES), { code: 'COUNTD_CORRUPTION', message: /reserved bytes not zero/ });
  });

  it('refuses sequence 0', () => {
    assert.throws(() => decodeMessage(message(RECORD_BATCH, 1, 0, batchEntries()), SIZES), { code: 'COUNTD_CORRUPTION', message: /sequence 0/ });
  });

  it('refuses a frame count that does not match the entries', () => {
    assert.throws(() => decodeMessage(message(RECORD_BATCH, 2, 1, batchEntries()), SIZES), { code: 'COUNTD_CORRUPTION', message: /1 entries where the header says 2/ });
  });

  it('refuses malformed entries (a name longer than the field sizes; BATCH entries in an OPS message)', () => {
    const long = Buffer.alloc(64);
    const end = encodeEntry(long, 0, 1n, Buffer.from('a-keyspace-name-of-20'), Buffer.from('k'));
    assert.throws(() => decodeMessage(message(RECORD_BATCH, 1, 1, long.subarray(0, end)), SIZES), { code: 'COUNTD_CORRUPTION', message: /malformed entries where the header says 1/ });
    assert.throws(() => decodeMessage(message(RECORD_OPS, 1, 1, batchEntries()), SIZES), { code: 'COUNTD_CORRUPTION', message: /malformed entries/ });
  });
});
