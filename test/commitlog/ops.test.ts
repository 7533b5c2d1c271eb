// OPS records (docs/commit-log-format.md section 3a): the worked example's
// bytes, and the reader's rules for op entries.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OP_CREATE_KEYSPACE, OP_DELETE_KEYSPACE, OP_INCREMENT, OP_SET, RECORD_BATCH, TIMED_RECORD_HEADER_SIZE, copyProducerTrailer, countOps, decodeOps, encodeEntry, writeOpEntry, writeOpEntryCopy, writeProducerTrailer, writeTimedRecordHeader } from '../../lib/commitlog/format.js';
import { OP_HEADER_SIZE, encodeHello, encodeOpFrame, helloReply, helloVersion, validateOpFrame } from '../../lib/protocol/write-ops.js';
import { parseWindow, settingsTail } from '../../lib/protocol/window-settings.js';
import { docBlockBytes } from '../harness/doc-bytes.js';

const SPEC = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/commit-log-format.md'), 'utf8');
const sizes = { keyspaceSize: 256, keySize: 256 };

function exampleBytes(): Buffer {
  const section = SPEC.slice(SPEC.indexOf('### 3a. OPS records'), SPEC.indexOf('## 4. Sequence numbers'));
  const block = /```\n([\s\S]*?)```/.exec(section)![1]!;
  return Buffer.from(block.split('\n').map((l) => l.split(/ {2,}/)[0]!.trim()).join(' ').trim().split(/\s+/).map((h) => parseInt(h, 16)));
}

describe('commit log: writtenAt (section 3b)', () => {
  it('the worked example: the writer\'s record header with flag 0x01 and writtenAt, then the entry, are the bytes the spec prints', () => {
    const section = SPEC.slice(SPEC.indexOf('### 3b. writtenAt'), SPEC.indexOf('## 4. Sequence numbers'));
    const block = /```\n([\s\S]*?)```/.exec(section)![1]!;
    const spec = Buffer.from(block.split('\n').map((l) => l.split(/ {2,}/)[0]!.trim()).join(' ').trim().split(/\s+/).map((h) => parseInt(h, 16)));
    const entries = Buffer.alloc(21);
    encodeEntry(entries, 0, 5n, Buffer.from('pages'), Buffer.from('home'));
    const header = Buffer.alloc(TIMED_RECORD_HEADER_SIZE);
    writeTimedRecordHeader(header, RECORD_BATCH, 0x0123456789abcdefn, 0n, 1, entries, Date.parse('2026-12-07T10:00:12.345Z'));
    assert.deepEqual(Buffer.concat([header, entries]), spec);
    assert.equal(spec.length, 61);
  });
});

function trailerExampleBytes(): Buffer {
  const section = SPEC.slice(SPEC.indexOf('### 3c. Producer trailer'), SPEC.indexOf('## 4. Sequence numbers'));
  const block = /```\n([\s\S]*?)```/.exec(section)![1]!;
  return Buffer.from(block.split('\n').map((l) => l.split(/ {2,}/)[0]!.trim()).join(' ').trim().split(/\s+/).map((h) => parseInt(h, 16)));
}

describe('commit log: producer trailer (section 3b)', () => {
  it('the worked example: writeOpEntry + writeProducerTrailer write the bytes the spec prints, and they decode back', () => {
    const buf = Buffer.alloc(64);
    const end = writeOpEntry(buf, 0, OP_INCREMENT, 1n, Buffer.from('pageshome'), 0, 5, 5, 4);
    const p = writeProducerTrailer(buf, 0, end, 42n, 1, 7n);
    assert.deepEqual(buf.subarray(0, p), trailerExampleBytes());
    assert.equal(countOps(trailerExampleBytes(), sizes), 1);
    const [op] = decodeOps(trailerExampleBytes());
    assert.equal(op!.op, OP_INCREMENT);
    assert.deepEqual(op!.producer, { producer: 42n, epoch: 1, sequence: 7n });
  });

  it('the write path copies the value and producer fields from the op frame: the same bytes as writeOpEntry + writeProducerTrailer', () => {
    const cases: Array<[bigint, bigint, number, bigint]> = [[1n, 42n, 1, 7n], [-5n, 0xffff_ffff_ffff_ffffn, 0xffff_ffff, 0x1_0000_0001n], [-(1n << 63n), 1n, 0, 0n]];
    for (const [value, producer, epoch, sequence] of cases) {
      const frame = encodeOpFrame('increment', value, 'pages', 'home', sizes, { producer: { producer, epoch, sequence } });
      const want = Buffer.alloc(80);
      const wantEnd = writeProducerTrailer(want, 3, writeOpEntry(want, 3, OP_INCREMENT, value, Buffer.from('pageshome'), 0, 5, 5, 4), producer, epoch, sequence);
      const got = Buffer.alloc(80);
      const ksOff = OP_HEADER_SIZE;
      const gotEnd = copyProducerTrailer(got, 3, writeOpEntryCopy(got, 3, OP_INCREMENT, frame, 8, frame, ksOff, 5, ksOff + sizes.keyspaceSize, 4), frame, 16);
      assert.equal(gotEnd, wantEnd);
      assert.deepEqual(got, want, `value ${value}, producer ${producer}, epoch ${epoch}, sequence ${sequence}`);
      assert.deepEqual(decodeOps(got.subarray(3, gotEnd))[0]!.producer, { producer, epoch, sequence });
    }
  });

  it('a trailer cut short makes the record malformed', () => {
    const b = trailerExampleBytes().subarray(0, 40);
    assert.equal(countOps(b, sizes), -1);
    assert.throws(() => decodeOps(b), (err: unknown) => (err as { code?: string }).code === 'COUNTD_CORRUPTION');
  });
});

describe('commit log: OPS records', () => {
  it('the worked example: writeOpEntry writes the bytes the spec prints, and they decode back', () => {
    const buf = Buffer.alloc(64);
    let p = writeOpEntry(buf, 0, OP_SET, 1000n, Buffer.from('pageshome'), 0, 5, 5, 4);
    p = writeOpEntry(buf, p, OP_DELETE_KEYSPACE, 0n, Buffer.from('old'), 0, 3, 0, 0);
    assert.deepEqual(buf.subarray(0, p), exampleBytes());
    assert.equal(countOps(exampleBytes(), sizes), 2);
    assert.deepEqual(
      decodeOps(exampleBytes()).map((o) => [o.op, o.value, o.keyspace.toString(), o.key.toString()]),
      [
        [OP_SET, 1000n, 'pages', 'home'],
        [OP_DELETE_KEYSPACE, 0n, 'old', ''],
      ],
    );
  });

  const broken: Array<[string, (b: Buffer) => void]> = [
    ['op 0', (b) => (b[0] = 0)],
    ['op 5', (b) => (b[0] = 5)],
    ['a delete keyspace with a value', (b) => (b[23] = 1)],
    ['a delete keyspace with a key length', (b) => (b[24] = 1)],
    ['a set without a key', (b) => (b[11] = 0)],
    ['a truncated entry', (b) => b.writeUInt16LE(200, 9)],
  ];
  for (const [what, damage] of broken) {
    it(`an OPS payload with ${what} is malformed (-1; decodeOps throws COUNTD_CORRUPTION)`, () => {
      const b = Buffer.from(exampleBytes());
      damage(b);
      assert.equal(countOps(b, sizes), -1);
      assert.throws(() => decodeOps(b), (err: unknown) => (err as { code?: string }).code === 'COUNTD_CORRUPTION');
    });
  }
});

describe('create ops with settings bytes (the tie rule)', () => {
  const lengths = new Int32Array(2);
  it('a create frame carries the tie rule in its key field; validateOpFrame gives its length, the log entry carries it as the key', () => {
    const frame = encodeOpFrame('createKeyspace', 2, 'lb', Buffer.from([1]), sizes);
    assert.equal(frame[48 + 256], 1);
    assert.equal(validateOpFrame(frame, 0, sizes, lengths), 5);
    assert.deepEqual([...lengths], [2, 1]);
    const plain = encodeOpFrame('createKeyspace', 2, 'lb', null, sizes);
    assert.equal(validateOpFrame(plain, 0, sizes, lengths), 5);
    assert.deepEqual([...lengths], [2, 0]);
    const buf = Buffer.alloc(32);
    const p = writeOpEntry(buf, 0, OP_CREATE_KEYSPACE, 2n, frame, 48, 2, 48 + 256, 1);
    assert.deepEqual(decodeOps(buf.subarray(0, p)).map((o) => [o.op, o.value, o.keyspace.toString(), [...o.key]]), [[OP_CREATE_KEYSPACE, 2n, 'lb', [1]]]);
  });

  it('a create entry with up to 15 settings bytes is valid (the tie rule, then a window); with 16 the record is malformed', () => {
    // Ties first and a 10 s window kept 3 periods: 15 bytes, the last one non-zero.
    const settings = Buffer.concat([settingsTail(parseWindow('10s', 3), 1), Buffer.from([1])]);
    for (const [n, want] of [[15, 1], [16, -1]] as const) {
      const names = Buffer.concat([Buffer.from('lb'), settings.subarray(0, n)]);
      const buf = Buffer.alloc(64);
      const p = writeOpEntry(buf, 0, OP_CREATE_KEYSPACE, 1n, names, 0, 2, 2, n);
      assert.equal(countOps(buf.subarray(0, p), sizes), want, `${n} bytes`);
    }
  });

  it('a create frame with a settings byte past the 15th, or a malformed window, is malformed', () => {
    const frame = encodeOpFrame('createKeyspace', 1, 'lb', null, sizes);
    frame[48 + 256 + 15] = 1;
    assert.equal(validateOpFrame(frame, 0, sizes, lengths), 0);
    const window = encodeOpFrame('createKeyspace', 1, 'lb', Buffer.from([1]), sizes, { window: parseWindow('day', 2) });
    assert.equal(validateOpFrame(window, 0, sizes, lengths), 5);
    window[48 + 256 + 1] = 9; // unit 9
    assert.equal(validateOpFrame(window, 0, sizes, lengths), 0);
  });

  it('encodeOpFrame refuses settings it cannot send: a tie rule above 1, more than 15 bytes', () => {
    const invalid = (err: unknown): boolean => (err as { code?: string }).code === 'COUNTD_INVALID_ARGUMENT';
    assert.throws(() => encodeOpFrame('createKeyspace', 1, 'lb', Buffer.from([2]), sizes), invalid);
    assert.throws(() => encodeOpFrame('createKeyspace', 1, 'lb', Buffer.from([0, 1]), sizes), invalid);
    assert.throws(() => encodeOpFrame('createKeyspace', 1, 'lb', Buffer.alloc(16), sizes), invalid);
  });
});

describe('docs/write-protocol-extensions.md, worked example', () => {
  it('the op frame printed is what encodeOpFrame makes for a set of pages/home to 1000, and the hello is a plain-size frame', () => {
    const doc = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/write-protocol-extensions.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Worked example'));
    assert.deepEqual(docBlockBytes(section), encodeOpFrame('set', 1000, 'pages', 'home', sizes));
    assert.equal(encodeHello(sizes, 1).length, 520);
    assert.equal(helloVersion(encodeHello(sizes, 1), 0, sizes), 1);
    assert.deepEqual(helloReply(1), Buffer.from([0x45, 0x58, 0x01]));
    // A server speaking version 2 answers a version-1 hello with version 1.
    assert.deepEqual(helloReply(1, 2), Buffer.from([0x45, 0x58, 0x01]));
  });
});
