import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { isCountdError } from '../../lib/errors.js';
import {
  HEADER_SIZE,
  LOG_FORMAT_VERSION,
  RECORD_BATCH,
  RECORD_HEADER_SIZE,
  RECORD_SEAL,
  SEAL_RECORD_SIZE,
  decodeHeader,
  encodeEntry,
  encodeHeader,
  encodeSealRecord,
  entrySize,
  forEachEntry,
  writeEntryFromFrame,
  writeRecordHeader,
} from '../../lib/commitlog/format.js';
import { lockName, logName, newLogTempName, ownerName, ownerTempName, parseLogName, parsePoolName } from '../../lib/commitlog/filenames.js';
import { LogContents, headerUnverified, parseLog, readLogFile, streamGaps } from '../../lib/commitlog/reader.js';
import { encodeFrame, validateFrame } from '../../lib/protocol/write-frame.js';
import { INT64_MAX, INT64_MIN } from '../../lib/protocol/fields.js';
import { writeFrameSize } from '../../lib/protocol/fields.js';
import { BuiltLog, buildLog, decode, sizes, taggedBatch } from './helpers.js';

function recordsOf(c: LogContents): Array<{ seq: bigint; count: number; payload: string }> {
  return c.records.map((r) => ({ seq: r.seq, count: r.count, payload: r.payload.toString('hex') }));
}

function expected(log: BuiltLog, n = log.records.length): Array<{ seq: bigint; count: number; payload: string }> {
  return log.records.slice(0, n).map((r) => ({ seq: r.seq, count: r.count, payload: r.payload.toString('hex') }));
}

describe('commit log: file names', () => {
  it('builds and parses every name of the pool', () => {
    assert.equal(logName(3), '0000000003');
    assert.equal(lockName(3), 'lock-0000000003');
    assert.equal(ownerName(12), 'owner-0000000012');
    assert.deepEqual(parsePoolName('0000000003'), { kind: 'log', index: 3 });
    assert.deepEqual(parsePoolName('lock-0000000003'), { kind: 'lock', index: 3 });
    assert.deepEqual(parsePoolName('owner-9999999999'), { kind: 'owner', index: 9999999999 });
    assert.deepEqual(parsePoolName(ownerTempName(4, 123)), { kind: 'temp', pid: 123 });
    assert.deepEqual(parsePoolName(newLogTempName(77, 'ab12')), { kind: 'temp', pid: 77 });
    for (const junk of ['000000003', 'lock-3', '00000000031', 'x', 'owner-0000000003.bak']) assert.deepEqual(parsePoolName(junk), { kind: 'unknown' });
    assert.equal(parseLogName('0000000042'), 42);
    assert.equal(parseLogName('lock-0000000042'), null);
    assert.throws(() => logName(-1), RangeError);
    assert.throws(() => logName(1e10), RangeError);
  });
});

describe('commit log: entries', () => {
  it('round-trips increments and byte names', () => {
    const names = [Buffer.from('a'), Buffer.from([0xff, 0x01, 0x80]), Buffer.alloc(300, 0x41)];
    const incs = [0n, 1n, -1n, INT64_MAX, INT64_MIN];
    const size = incs.length * names.reduce((sum, n) => sum + entrySize(n.length, names[0]!.length), 0);
    const buf = Buffer.alloc(size);
    let off = 0;
    const want: Array<[bigint, string, string]> = [];
    for (const inc of incs) {
      for (const n of names) {
        off = encodeEntry(buf, off, inc, n, names[0]!);
        want.push([inc, n.toString('hex'), names[0]!.toString('hex')]);
      }
    }
    assert.equal(off, size);
    const got: Array<[bigint, string, string]> = [];
    assert.equal(forEachEntry(buf, (inc, ks, key) => got.push([inc, ks.toString('hex'), key.toString('hex')])), want.length);
    assert.deepEqual(got, want);
  });

  it('writeEntryFromFrame copies a validated wire frame into the same bytes as encodeEntry', () => {
    const frameSizes = { keyspaceSize: 40, keySize: 40 };
    const frames = Buffer.alloc(3 * writeFrameSize(frameSizes));
    encodeFrame(-5n, 'pages', 'home', frameSizes, frames, 0);
    encodeFrame(INT64_MAX, 'k'.repeat(40), 'x'.repeat(17), frameSizes, frames, writeFrameSize(frameSizes));
    encodeFrame(1n, 'a', 'b', frameSizes, frames, 2 * writeFrameSize(frameSizes));
    const lengths = new Int32Array(2);
    const viaFrame = Buffer.alloc(1000);
    const viaEncode = Buffer.alloc(1000);
    let a = 0;
    let b = 0;
    for (let i = 0; i < 3; i++) {
      const at = i * writeFrameSize(frameSizes);
      assert.ok(validateFrame(frames, at, frameSizes, lengths));
      a = writeEntryFromFrame(viaFrame, a, frames, at, lengths[0]!, lengths[1]!, frameSizes);
      const ks = frames.subarray(at + 8, at + 8 + lengths[0]!);
      const key = frames.subarray(at + 8 + 40, at + 8 + 40 + lengths[1]!);
      b = encodeEntry(viaEncode, b, frames.readBigInt64LE(at), ks, key);
    }
    assert.equal(a, b);
    assert.deepEqual(viaFrame.subarray(0, a), viaEncode.subarray(0, b));
    assert.deepEqual(decode(viaFrame.subarray(0, a)).map((e) => [e.increment, e.keyspace, e.key]), [
      [-5n, 'pages', 'home'],
      [INT64_MAX, 'k'.repeat(40), 'x'.repeat(17)],
      [1n, 'a', 'b'],
    ]);
  });

  it('forEachEntry rejects a payload that is not whole entries with COUNTD_CORRUPTION', () => {
    const good = taggedBatch('t', 2);
    for (const bad of [good.subarray(0, good.length - 1), good.subarray(0, 5), Buffer.concat([good, Buffer.alloc(12)])]) {
      assert.throws(() => forEachEntry(bad, () => {}), (err) => isCountdError(err, 'COUNTD_CORRUPTION'));
    }
  });
});

describe('commit log: header', () => {
  it('round-trips and detects damage', () => {
    const h = { version: LOG_FORMAT_VERSION, keyspaceSize: 256, keySize: 256, generation: 2n ** 64n - 1n, streamId: 5n, firstSeq: 12345n, openedAt: 1_700_000_000_123 };
    const buf = encodeHeader(h);
    assert.equal(buf.length, HEADER_SIZE);
    assert.deepEqual(decodeHeader(buf), { kind: 'ok', header: h });
    assert.deepEqual(decodeHeader(Buffer.alloc(HEADER_SIZE)), { kind: 'empty' });
    const flipped = Buffer.from(buf);
    flipped[30]! ^= 1;
    assert.equal(decodeHeader(flipped).kind, 'bad');
  });
});

describe('commit log: reader', () => {
  it('round-trips records, SEAL and entries', () => {
    const log = buildLog({ counts: [3, 1, 5], seal: true, firstSeq: 100n });
    const c = parseLog(log.buf, sizes, 9);
    assert.equal(c.index, 9);
    assert.deepEqual(c.problems, []);
    assert.equal(c.sealed, true);
    assert.equal(c.frames, 9);
    assert.equal(c.generation, 0x1122334455667788n);
    assert.equal(c.streamId, 7n);
    assert.deepEqual(recordsOf(c), expected(log));
    assert.deepEqual(c.records.map((r) => r.seq), [100n, 103n, 104n]);
    assert.equal(c.end, log.sealOffset + SEAL_RECORD_SIZE);
    assert.deepEqual(decode(c.records[2]!.payload).map((e) => e.key), ['r2-0', 'r2-1', 'r2-2', 'r2-3', 'r2-4']);
  });

  it('a never-used (zero) log has no header, no records and no problem', () => {
    const c = parseLog(Buffer.alloc(16384), sizes);
    assert.equal(c.header, null);
    assert.deepEqual(c.records, []);
    assert.deepEqual(c.problems, []);
  });

  it('a zero-filled tail is a clean end', () => {
    const log = buildLog({ counts: [2, 2], size: 1 << 20 });
    const c = parseLog(log.buf, sizes);
    assert.deepEqual(c.problems, []);
    assert.equal(c.sealed, false);
    assert.deepEqual(recordsOf(c), expected(log));
    assert.equal(c.end, log.end);
  });

  it('a log that ends exactly at the end of the file is whole', () => {
    const probe = buildLog({ counts: [2, 3], seal: true });
    const log = buildLog({ counts: [2, 3], seal: true, size: probe.end });
    const c = parseLog(log.buf, sizes);
    assert.deepEqual(c.problems, []);
    assert.equal(c.sealed, true);
  });

  it('a torn last record, cut at every byte offset, yields all earlier records and no problem', () => {
    const whole = buildLog({ counts: [2, 3, 4] });
    const last = whole.records[2]!;
    for (const filler of ['zero', 'stale'] as const) {
      // What lies beyond the cut: zeros (new file) or bytes of an earlier use (recycled file).
      const under = filler === 'zero' ? Buffer.alloc(whole.buf.length) : buildLog({ counts: [9, 9, 9, 9], generation: 99n, tag: 'old' }).buf;
      for (let cut = last.offset; cut < last.offset + last.size; cut++) {
        const buf = Buffer.from(under);
        whole.buf.copy(buf, 0, 0, cut);
        const c = parseLog(buf, sizes);
        assert.deepEqual(c.problems, [], `${filler} cut at ${cut}`);
        assert.deepEqual(recordsOf(c), expected(whole, 2), `${filler} cut at ${cut}`);
      }
    }
  });

  it('detects every single-byte flip inside a record', () => {
    const log = buildLog({ counts: [2, 1, 2], seal: true });
    const spans = [...log.records.map((r) => ({ offset: r.offset, size: r.size })), { offset: log.sealOffset, size: SEAL_RECORD_SIZE }];
    spans.forEach((span, which) => {
      for (let at = span.offset; at < span.offset + span.size; at++) {
        for (const mask of [0x01, 0x80, 0xff]) {
          const buf = Buffer.from(log.buf);
          buf[at]! ^= mask;
          const c = parseLog(buf, sizes);
          const msg = `record ${which}, byte ${at - span.offset}, mask ${mask}`;
          // The damaged record is never returned; every record returned is an original one.
          assert.deepEqual(recordsOf(c), expected(log).filter((_, i) => i !== which), msg);
          if (which < spans.length - 1) {
            // Valid data follows: reported as corruption, with the bytes dropped.
            assert.equal(c.problems[0]?.offset, span.offset, msg);
            assert.equal(c.problems[0]?.bytesDropped, span.size, msg);
            assert.equal(c.sealed, true, msg);
          } else {
            // The SEAL is last: damage there cannot be told from a torn write; the log reads as unsealed.
            assert.equal(c.sealed, false, msg);
            assert.deepEqual(c.problems, [], msg);
          }
        }
      }
    });
  });

  it('a recycled file refilled with fewer records yields exactly the new records', () => {
    const old = buildLog({ counts: [5, 5, 5, 5, 5], seal: true, generation: 1n, tag: 'old' });
    const fresh = buildLog({ counts: [1, 2], generation: 2n, tag: 'new', into: old.buf, firstSeq: 50n });
    assert.ok(fresh.end < old.sealOffset);
    const c = parseLog(fresh.buf, sizes);
    assert.deepEqual(c.problems, []);
    assert.equal(c.generation, 2n);
    assert.equal(c.sealed, false);
    assert.deepEqual(recordsOf(c), expected(fresh));
    // Sealed this time: the SEAL ends it too.
    const sealed = buildLog({ counts: [1, 2], generation: 3n, tag: 'new', into: Buffer.from(old.buf), seal: true });
    const c2 = parseLog(sealed.buf, sizes);
    assert.deepEqual(c2.problems, []);
    assert.equal(c2.sealed, true);
    assert.equal(c2.frames, 3);
  });

  it('reports a sequence hole between records (a record cut out exactly on its boundaries)', () => {
    const full = buildLog({ counts: [2, 3, 4] });
    // Rebuild without the middle record but keeping the seqs: 0, then 5.
    const log = buildLog({ counts: [2, 4], seqs: [0n, 5n] });
    const c = parseLog(log.buf, sizes);
    assert.equal(c.records.length, 2);
    assert.equal(c.problems.length, 1);
    assert.equal(c.problems[0]!.offset, log.records[1]!.offset);
    assert.equal(c.problems[0]!.bytesDropped, 0);
    assert.match(c.problems[0]!.reason, /sequence gap: expected seq 2, record has 5 \(3 frames missing\)/);
    assert.ok(full.records.length === 3);
  });

  it('reports a SEAL that counts more frames than found', () => {
    const log = buildLog({ counts: [2, 3] });
    // A SEAL claiming 3 records / 9 frames, at the right seq.
    encodeSealRecord(0x1122334455667788n, 5n, 9, 3).copy(log.buf, log.end);
    const c = parseLog(log.buf, sizes);
    assert.equal(c.sealed, true);
    assert.equal(c.problems.length, 1);
    assert.match(c.problems[0]!.reason, /seal counts 9 frames in 3 records, found 5 in 2/);
  });

  it('reports a hole between two logs of one stream (streamGaps)', () => {
    const a = parseLog(buildLog({ counts: [2, 3], streamId: 1n, firstSeq: 0n }).buf, sizes, 0);
    const b = parseLog(buildLog({ counts: [1], streamId: 1n, firstSeq: 5n }).buf, sizes, 1);
    const c = parseLog(buildLog({ counts: [1], streamId: 1n, firstSeq: 9n }).buf, sizes, 2);
    const other = parseLog(buildLog({ counts: [1], streamId: 2n, firstSeq: 40n }).buf, sizes, 3);
    assert.deepEqual(streamGaps([b, a, other]), []);
    assert.deepEqual(streamGaps([c, a, b, other]), [{ index: 2, streamId: 1n, expectedSeq: 6n, firstSeq: 9n }]);
  });

  describe('one test per error path', () => {
    const gen = 0x1122334455667788n;
    /** Replace record 1 of a 3-record log by `bytes` (same length or shorter, rest zero). */
    const withMiddle = (make: (rec: { offset: number; size: number; payload: Buffer; seq: bigint; count: number }, buf: Buffer) => void) => {
      const log = buildLog({ counts: [2, 2, 2] });
      make(log.records[1]!, log.buf);
      return { log, c: parseLog(log.buf, sizes) };
    };
    const rewrite = (buf: Buffer, at: number, type: number, generation: bigint, seq: bigint, count: number, payload: Buffer, tweak?: (h: Buffer) => void) => {
      const h = Buffer.alloc(RECORD_HEADER_SIZE);
      writeRecordHeader(h, type, generation, seq, count, payload);
      if (tweak) {
        tweak(h);
        h.writeUInt32LE(crc32(payload, crc32(h.subarray(4))), 0); // keep the CRC valid: only the structure is wrong
      }
      h.copy(buf, at);
      payload.copy(buf, at + RECORD_HEADER_SIZE);
    };
    const cases: Array<[string, RegExp, (rec: BuiltLog['records'][number], buf: Buffer) => void]> = [
      ['zeroed record', /zero bytes/, (r, buf) => buf.fill(0, r.offset, r.offset + r.size)],
      ['checksum mismatch', /checksum mismatch/, (r, buf) => void (buf[r.offset + RECORD_HEADER_SIZE + 3]! ^= 4)],
      ['length past end of file', /runs past the end/, (r, buf) => buf.writeUInt32LE(0x7fff_ffff, r.offset + 4)],
      ['record of another generation', /earlier use/, (r, buf) => rewrite(buf, r.offset, RECORD_BATCH, 42n, r.seq, r.count, r.payload)],
      ['reserved bytes not zero', /reserved bytes/, (r, buf) => rewrite(buf, r.offset, RECORD_BATCH, gen, r.seq, r.count, r.payload, (h) => void (h[10] = 1))],
      ['frame count disagrees with entries', /frame count/, (r, buf) => rewrite(buf, r.offset, RECORD_BATCH, gen, r.seq, r.count + 1, r.payload)],
      ['unknown record type', /unknown record type 7/, (r, buf) => rewrite(buf, r.offset, 7, gen, r.seq, r.count, r.payload)],
      ['malformed seal', /malformed seal/, (r, buf) => rewrite(buf, r.offset, RECORD_SEAL, gen, r.seq, r.count, r.payload)],
    ];
    for (const [name, reason, make] of cases) {
      it(name, () => {
        const { log, c } = withMiddle(make);
        const r = log.records[1]!;
        assert.equal(c.problems.length >= 1, true, name);
        assert.deepEqual({ offset: c.problems[0]!.offset, bytesDropped: c.problems[0]!.bytesDropped }, { offset: r.offset, bytesDropped: r.size });
        assert.match(c.problems[0]!.reason, reason);
        assert.deepEqual(recordsOf(c), expected(log).filter((_, i) => i !== 1));
        // The lost frames also show as a sequence gap at the next record.
        assert.match(c.problems[1]?.reason ?? '', /sequence gap/);
      });
    }

    const headerCases: Array<[string, RegExp, (buf: Buffer) => Buffer]> = [
      ['file shorter than the header', /shorter than/, (buf) => buf.subarray(0, 100)],
      ['bad magic', /bad magic/, (buf) => (buf.write('XXXX', 0), buf)],
      ['header checksum mismatch', /header checksum/, (buf) => ((buf[40]! ^= 1), buf)],
      [
        'unsupported version',
        /version 9/,
        (buf) => {
          buf.writeUInt16LE(9, 8);
          buf.writeUInt32LE(crc32(buf.subarray(0, 56)), 56);
          return buf;
        },
      ],
      [
        'other field sizes',
        /field sizes 16\/99/,
        (buf) => {
          buf.writeUInt32LE(99, 16);
          buf.writeUInt32LE(crc32(buf.subarray(0, 56)), 56);
          return buf;
        },
      ],
    ];
    for (const [name, reason, damage] of headerCases) {
      it(`header: ${name}`, () => {
        const log = buildLog({ counts: [1, 1] });
        const buf = damage(Buffer.from(log.buf));
        const c = parseLog(buf, sizes);
        assert.deepEqual(c.records, []);
        assert.equal(c.headerState, 'bad');
        assert.equal(c.problems.length, 1);
        assert.equal(c.problems[0]!.offset, 0);
        assert.match(c.problems[0]!.reason, reason);
        if (buf.length < HEADER_SIZE) {
          assert.equal(c.salvage, null);
          assert.equal(c.problems[0]!.bytesDropped, buf.length);
        } else {
          // The records carry their own CRC and generation: a salvage finds them, and only the header is dropped.
          assert.equal(c.problems[0]!.bytesDropped, HEADER_SIZE);
          assert.equal(c.salvage?.from, 'header-field');
          assert.deepEqual(c.salvage?.records.map((r) => r.payload.toString('hex')), log.records.map((r) => r.payload.toString('hex')));
        }
      });
    }

    it('a missing file rejects with COUNTD_IO_ERROR', async () => {
      await assert.rejects(readLogFile('/nonexistent/countd-test/0000000000', sizes), (err) => isCountdError(err, 'COUNTD_IO_ERROR'));
    });
  });
});

describe('commit log: salvage of a log whose header cannot be verified', () => {
  const keysOf = (records: Array<{ payload: Buffer }> | undefined): string[] => (records ?? []).flatMap((r) => decode(r.payload).map((e) => e.key));

  it('a byte flipped anywhere in the header: the last use found by its generation field, or else by the record at 4096', () => {
    const log = buildLog({ counts: [2, 3, 1], seal: true, generation: 0xabcdef0123456789n, tag: 'cur' });
    for (let at = 0; at < 60; at++) {
      const buf = Buffer.from(log.buf);
      buf[at]! ^= 0x20;
      const c = parseLog(buf, sizes);
      const msg = `byte ${at}`;
      assert.equal(c.headerState, 'bad', msg);
      assert.ok(headerUnverified(c), msg);
      assert.deepEqual(c.records, [], msg);
      assert.equal(c.salvage?.generation, 0xabcdef0123456789n, msg);
      assert.equal(c.salvage?.from, at >= 24 && at < 32 ? 'first-record' : 'header-field', msg);
      assert.deepEqual(keysOf(c.salvage?.records), keysOf(log.records), msg);
      assert.equal(c.salvage?.sealed, true, msg);
      assert.deepEqual(c.salvage?.problems, [], msg);
      assert.deepEqual(c.problems.map((p) => [p.offset, p.bytesDropped]), [[0, HEADER_SIZE]], msg);
    }
  });

  it('takes only the last use of a recycled file, never the records of earlier uses behind it', () => {
    const old = buildLog({ counts: [5, 5, 5, 5, 5], seal: true, generation: 1n, tag: 'old' });
    const fresh = buildLog({ counts: [1, 2], generation: 2n, tag: 'new', into: Buffer.from(old.buf), firstSeq: 50n });
    for (const at of [26, 40]) {
      const buf = Buffer.from(fresh.buf);
      buf[at]! ^= 0xff;
      const c = parseLog(buf, sizes);
      assert.equal(c.salvage?.generation, 2n, `byte ${at}`);
      assert.deepEqual(keysOf(c.salvage?.records), keysOf(fresh.records), `byte ${at}`);
    }
  });

  it('header and first record damaged: the generation field still attributes the later records, and the damaged record is reported', () => {
    const log = buildLog({ counts: [2, 2, 2], generation: 77n, tag: 'r' });
    const buf = Buffer.from(log.buf);
    buf[40]! ^= 1; // header (firstSeq)
    buf[log.records[0]!.offset + 40]! ^= 1; // first record's payload
    const c = parseLog(buf, sizes);
    assert.equal(c.salvage?.from, 'header-field');
    assert.deepEqual(keysOf(c.salvage?.records), keysOf(log.records.slice(1)));
    assert.deepEqual(c.salvage?.problems.map((p) => [p.offset, p.bytesDropped, p.reason]), [[HEADER_SIZE, log.records[0]!.size, 'checksum mismatch']]);
  });

  it('generation field and first record both damaged: nothing can be attributed, the whole file is reported dropped', () => {
    const log = buildLog({ counts: [2, 2], generation: 77n, tag: 'r' });
    const buf = Buffer.from(log.buf);
    buf[25]! ^= 1;
    buf[log.records[0]!.offset + 40]! ^= 1;
    const c = parseLog(buf, sizes);
    assert.equal(c.headerState, 'bad');
    assert.equal(c.salvage, null);
    assert.ok(headerUnverified(c));
    assert.deepEqual(c.problems.map((p) => [p.offset, p.bytesDropped]), [[0, buf.length]]);
  });

  it('a header wiped to zeros with records after it is damage, not a fresh log', () => {
    const log = buildLog({ counts: [1, 2], generation: 5n, tag: 'w' });
    const buf = Buffer.from(log.buf);
    buf.fill(0, 0, HEADER_SIZE);
    const c = parseLog(buf, sizes);
    assert.equal(c.headerState, 'empty');
    assert.ok(headerUnverified(c));
    assert.equal(c.salvage?.from, 'first-record');
    assert.deepEqual(keysOf(c.salvage?.records), keysOf(log.records));
    assert.match(c.problems[0]?.reason ?? '', /all zero but records follow/);
    // A log never used has nothing to salvage and is no problem.
    const fresh = parseLog(Buffer.alloc(16384), sizes);
    assert.equal(fresh.headerState, 'empty');
    assert.equal(fresh.salvage, null);
    assert.equal(headerUnverified(fresh), false);
    assert.deepEqual(fresh.problems, []);
  });
});

describe('commit log: worked example of docs/commit-log-format.md', () => {
  it('matches the bytes printed in the spec', () => {
    const header = encodeHeader({
      version: 1,
      keyspaceSize: 256,
      keySize: 256,
      generation: 0x0123456789abcdefn,
      streamId: 0x0f0e0d0c0b0a0908n,
      firstSeq: 7n,
      openedAt: 1_764_000_000_000,
    });
    const payload = Buffer.alloc(entrySize(5, 4) + entrySize(5, 5));
    let off = encodeEntry(payload, 0, 1n, Buffer.from('pages'), Buffer.from('home'));
    off = encodeEntry(payload, off, -2n, Buffer.from('pages'), Buffer.from('about'));
    const rec = Buffer.alloc(RECORD_HEADER_SIZE);
    writeRecordHeader(rec, RECORD_BATCH, 0x0123456789abcdefn, 7n, 2, payload);
    const seal = encodeSealRecord(0x0123456789abcdefn, 9n, 2, 1);
    assert.equal(header.subarray(0, 60).toString('hex'), EXAMPLE.header);
    assert.equal(Buffer.concat([rec, payload]).toString('hex'), EXAMPLE.batch);
    assert.equal(seal.toString('hex'), EXAMPLE.seal);
    const file = Buffer.alloc(8192);
    header.copy(file);
    Buffer.concat([rec, payload, seal]).copy(file, HEADER_SIZE);
    const c = parseLog(file, { keyspaceSize: 256, keySize: 256 });
    assert.deepEqual(c.problems, []);
    assert.equal(c.sealed, true);
    assert.deepEqual(decode(c.records[0]!.payload), [
      { increment: 1n, keyspace: 'pages', key: 'home' },
      { increment: -2n, keyspace: 'pages', key: 'about' },
    ]);
    // Section 6a's example: byte 33 flipped (rule 1), or byte 25 (rule 2).
    for (const [at, from] of [[33, 'header-field'], [25, 'first-record']] as const) {
      const damaged = Buffer.from(file);
      damaged[at]! ^= 0xff;
      const d = parseLog(damaged, { keyspaceSize: 256, keySize: 256 });
      assert.equal(d.headerState, 'bad');
      assert.match(d.problems[0]!.reason, /header checksum mismatch/);
      assert.equal(d.problems[0]!.bytesDropped, HEADER_SIZE);
      assert.equal(d.salvage?.generation, 0x0123456789abcdefn);
      assert.equal(d.salvage?.from, from);
      assert.equal(d.salvage?.frames, 2);
      assert.equal(d.salvage?.sealed, true);
    }
    assert.equal(file[33], 0x09);
  });
});

// The hex of the worked example in docs/commit-log-format.md.
const EXAMPLE = {
  header: '434e5444434c4f4701000000000100000001000000000000efcdab896745230108090a0b0c0d0e0f070000000000000000e897b69a010000adeda66b',
  batch:
    'c33ca2db2b00000001000000efcdab89674523010700000000000000020000000100000000000000050004007061676573686f6d65feffffffffffffff05000500706167657361626f7574',
  seal: 'cee861921000000002000000efcdab896745230109000000000000000000000002000000000000000100000000000000',
};
