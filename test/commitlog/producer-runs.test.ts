// Producer continuations (docs/commit-log-format.md section 3c, op bit
// 0x40): the worked example's bytes, round trips through every reader
// (decodeOps, countOps, collectProducerRuns, readLogFile's record check),
// logs of 0.7.0 (a trailer on every entry) read unchanged, one test per
// error path of a continuation that continues nothing, and the group commit
// writing continuations only where they are exact.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BROKEN_PRODUCER_RUN,
  HEADER_SIZE,
  LOG_FORMAT_VERSION,
  OP_INCREMENT,
  OP_SET,
  RECORD_HEADER_SIZE,
  RECORD_OPS,
  countOps,
  decodeOps,
  encodeHeader,
  markProducerContinuation,
  writeOpEntry,
  writeProducerTrailer,
  writeRecordHeader,
} from '../../lib/commitlog/format.js';
import { collectProducerRuns, type ProducerRun } from '../../lib/commitlog/producer-runs.js';
import { parseLog, type LogRecord } from '../../lib/commitlog/reader.js';
import { GroupCommit } from '../../lib/roles/write/group-commit.js';
import { OP_HEADER_SIZE, encodeOpFrame } from '../../lib/protocol/write-ops.js';
import { recordingLogger } from '../store/helpers.js';

const SPEC = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/commit-log-format.md'), 'utf8');
const sizes = { keyspaceSize: 16, keySize: 16 };

/** The second byte block of section 3c: the continuation example. */
function continuationExampleBytes(): Buffer {
  const section = SPEC.slice(SPEC.indexOf('### 3c. Producer trailer'), SPEC.indexOf('## 4. Sequence numbers'));
  const block = [...section.matchAll(/```\n([\s\S]*?)```/g)][1]![1]!;
  return Buffer.from(block.split('\n').map((l) => l.split(/ {2,}/)[0]!.trim()).join(' ').trim().split(/\s+/).map((h) => parseInt(h, 16)));
}

interface E {
  op?: number;
  value: bigint;
  ks: string;
  key: string;
  /** [producer, epoch, sequence] with a trailer, 'cont' for a continuation. */
  p?: [bigint, number, bigint] | 'cont';
}

function payloadOf(entries: E[]): Buffer {
  const buf = Buffer.alloc(4096);
  let at = 0;
  for (const e of entries) {
    const names = Buffer.from(e.ks + e.key);
    const end = writeOpEntry(buf, at, e.op ?? OP_INCREMENT, e.value, names, 0, e.ks.length, e.ks.length, e.key.length);
    if (e.p === 'cont') {
      markProducerContinuation(buf, at);
      at = end;
    } else if (e.p !== undefined) at = writeProducerTrailer(buf, at, end, e.p[0], e.p[1], e.p[2]);
    else at = end;
  }
  return Buffer.from(buf.subarray(0, at));
}

function producersOf(payload: Buffer): Array<[bigint, number, bigint] | null> {
  return decodeOps(payload).map((o) => (o.producer === undefined ? null : [o.producer.producer, o.producer.epoch, o.producer.sequence]));
}

function runsOf(payloads: Buffer[]): Array<[bigint, ProducerRun]> {
  const runs = new Map<bigint, ProducerRun>();
  let seq = 100n;
  const records = payloads.map((payload): LogRecord => {
    const count = countOps(payload, sizes);
    const r = { seq, count, payload, offset: 0, type: RECORD_OPS } as unknown as LogRecord;
    seq += BigInt(count);
    return r;
  });
  collectProducerRuns(records, runs);
  return [...runs].sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

const MIXED: E[] = [
  { value: 3n, ks: 'a', key: 'x' },
  { value: 1n, ks: 'a', key: 'x', p: [5n, 1, 10n] },
  { value: 2n, ks: 'a', key: 'y', p: 'cont' },
  { value: -1n, ks: 'b', key: 'z', p: 'cont' },
  { op: OP_SET, value: 9n, ks: 'a', key: 'x' },
  { value: 1n, ks: 'a', key: 'x', p: [9n, 2, 0n] },
  { value: 1n, ks: 'a', key: 'x', p: 'cont' },
  { value: 4n, ks: 'c', key: 'w', p: [5n, 1, 20n] },
];

describe('commit log: producer continuations (section 3c, op bit 0x40)', () => {
  it('the worked example: a trailer then a continuation are the bytes the spec prints, and decode to sequences 7 and 8', () => {
    const spec = continuationExampleBytes();
    const built = payloadOf([
      { value: 1n, ks: 'pages', key: 'home', p: [42n, 1, 7n] },
      { value: 1n, ks: 'pages', key: 'about', p: 'cont' },
    ]);
    assert.deepEqual(built, spec);
    assert.equal(spec.length, 65);
    assert.equal(countOps(spec, { keyspaceSize: 256, keySize: 256 }), 2);
    assert.deepEqual(decodeOps(spec).map((o) => [o.op, o.value, o.keyspace.toString(), o.key.toString()]), [
      [OP_INCREMENT, 1n, 'pages', 'home'],
      [OP_INCREMENT, 1n, 'pages', 'about'],
    ]);
    assert.deepEqual(producersOf(spec), [
      [42n, 1, 7n],
      [42n, 1, 8n],
    ]);
  });

  it('a mixed record round-trips: plain ops, runs of two producers, a set between them, a trailer again after a gap', () => {
    const payload = payloadOf(MIXED);
    assert.equal(countOps(payload, sizes), MIXED.length);
    assert.deepEqual(decodeOps(payload).map((o) => [o.op, o.value, o.keyspace.toString(), o.key.toString()]), MIXED.map((e) => [e.op ?? OP_INCREMENT, e.value, e.ks, e.key]));
    assert.deepEqual(producersOf(payload), [null, [5n, 1, 10n], [5n, 1, 11n], [5n, 1, 12n], null, [9n, 2, 0n], [9n, 2, 1n], [5n, 1, 20n]]);
    assert.deepEqual(runsOf([payload]), [
      [5n, { epoch: 1, first: 10n, last: 20n, token: 107n }],
      [9n, { epoch: 2, first: 0n, last: 1n, token: 107n }],
    ]);
  });

  it('a log of 0.7.0 (a trailer on every entry) reads as before: the same entries, producers and runs as its continued form', () => {
    let seq = 0n;
    const full = MIXED.map((e, i): E => {
      if (e.p === undefined) return e;
      if (e.p !== 'cont') {
        seq = e.p[2];
        return e;
      }
      const head = MIXED.slice(0, i).reverse().find((x) => Array.isArray(x.p))!.p as [bigint, number, bigint];
      seq += 1n;
      return { ...e, p: [head[0], head[1], seq] };
    });
    const old = payloadOf(full);
    const continued = payloadOf(MIXED);
    assert.equal(old.length - continued.length, 3 * 20, 'three continuations save a trailer each');
    assert.equal(countOps(old, sizes), MIXED.length);
    assert.deepEqual(producersOf(old), producersOf(continued));
    assert.deepEqual(runsOf([old]), runsOf([continued]));
    // A record of 0.7.0 next to one of 0.8.0 in the same use: runs merge over both.
    const older = payloadOf([{ value: 1n, ks: 'a', key: 'x', p: [5n, 1, 8n] }, { value: 1n, ks: 'a', key: 'x', p: [5n, 1, 9n] }]);
    assert.deepEqual(runsOf([older, continued])[0], [5n, { epoch: 1, first: 8n, last: 20n, token: 109n }]);
  });

  /** A log with `broken` as its first OPS record and a valid one after it: the reader drops the first, with its bytes. */
  function readWith(broken: Buffer): ReturnType<typeof parseLog> & { brokenSize: number } {
    const buf = Buffer.alloc(16384);
    const generation = 0x1122334455667788n;
    encodeHeader({ version: LOG_FORMAT_VERSION, keyspaceSize: sizes.keyspaceSize, keySize: sizes.keySize, generation, streamId: 7n, firstSeq: 0n, openedAt: 1_700_000_000_000 }, buf);
    const good = payloadOf([{ value: 1n, ks: 'g', key: 'ok', p: [1n, 1, 1n] }, { value: 1n, ks: 'g', key: 'ok', p: 'cont' }]);
    let off = HEADER_SIZE;
    let seq = 0n;
    for (const payload of [broken, good]) {
      const count = 2;
      writeRecordHeader(buf.subarray(off), RECORD_OPS, generation, seq, count, payload);
      payload.copy(buf, off + RECORD_HEADER_SIZE);
      off += RECORD_HEADER_SIZE + payload.length;
      seq += BigInt(count);
    }
    return Object.assign(parseLog(buf, sizes), { brokenSize: RECORD_HEADER_SIZE + broken.length });
  }

  /** The broken record's problem, then the gap its 2 frames leave before the valid record. */
  function droppedProblems(size: number): Array<{ offset: number; bytesDropped: number; reason: string }> {
    return [
      { offset: HEADER_SIZE, bytesDropped: size, reason: 'producer continuation without a producer entry before it' },
      { offset: HEADER_SIZE + size, bytesDropped: 0, reason: 'sequence gap: expected seq 0, record has 2 (2 frames missing)' },
    ];
  }

  const errorPaths: Array<[string, E[]]> = [
    ['the first entry of its record', [{ value: 1n, ks: 'a', key: 'x', p: 'cont' }, { value: 1n, ks: 'a', key: 'y', p: 'cont' }]],
    ['after an entry of no producer', [{ value: 1n, ks: 'a', key: 'x' }, { value: 1n, ks: 'a', key: 'y', p: 'cont' }]],
    ['after sequence 2^64 - 1', [{ value: 1n, ks: 'a', key: 'x', p: [3n, 1, 0xffff_ffff_ffff_ffffn] }, { value: 1n, ks: 'a', key: 'y', p: 'cont' }]],
  ];
  for (const [where, entries] of errorPaths) {
    it(`a continuation ${where} is corruption: countOps, decodeOps and the log reader report it, the record's bytes dropped`, () => {
      const payload = payloadOf(entries);
      assert.equal(countOps(payload, sizes), BROKEN_PRODUCER_RUN);
      assert.throws(() => decodeOps(payload), (err: unknown) => (err as { code?: string }).code === 'COUNTD_CORRUPTION' && /producer continuation without a producer entry before it/.test((err as Error).message));
      const log = readWith(payload);
      assert.deepEqual(log.problems, droppedProblems(log.brokenSize));
      assert.deepEqual(log.records.map((r) => producersOf(r.payload)), [[[1n, 1, 1n], [1n, 1, 2n]]], 'the valid record after it is read');
    });
  }

  it('a continuation with the producer bit too (op byte 0xc1) is corruption, reported the same way', () => {
    const payload = payloadOf([{ value: 1n, ks: 'a', key: 'x', p: [3n, 1, 4n] }, { value: 1n, ks: 'a', key: 'y', p: [3n, 1, 5n] }]);
    const second = 13 + 2 + 20;
    markProducerContinuation(payload, second);
    assert.equal(payload[second], 0xc1);
    assert.equal(countOps(payload, sizes), BROKEN_PRODUCER_RUN);
    assert.throws(() => decodeOps(payload), (err: unknown) => (err as { code?: string }).code === 'COUNTD_CORRUPTION');
    const log = readWith(payload);
    assert.deepEqual(log.problems, droppedProblems(log.brokenSize));
    assert.equal(log.records.length, 1);
  });
});

describe('GroupCommit: producer frames with consecutive sequences', () => {
  const SMALL = { keyspaceSize: 16, keySize: 16 };
  function member(): Parameters<GroupCommit['addProducerOp']>[0] {
    return { slotFrames: new Int32Array(2), failing: false, waitingRoom: false, awaited: false, durable: (n: number) => n, failed: (n: number) => n, roomAvailable: () => {} };
  }
  function add(gc: GroupCommit, m: ReturnType<typeof member>, producer: bigint, epoch: number, sequence: bigint, key = 'k'): void {
    const f = encodeOpFrame('increment', 1, 'ks', key, SMALL, { producer: { producer, epoch, sequence } });
    const ksOff = OP_HEADER_SIZE;
    assert.equal(gc.addProducerOp(m, OP_INCREMENT, f, 0, ksOff, 2, ksOff + SMALL.keyspaceSize, key.length), true);
  }

  it('writes a trailer for the first frame of a run and continuations after it, exactly: another producer, epoch, connection or a gap takes a trailer', async () => {
    const appended: Buffer[] = [];
    const sink = { maxBatchBytes: 8192, append: async (entries: Buffer) => void appended.push(Buffer.from(entries)) };
    const gc = new GroupCommit(sink, SMALL, recordingLogger([]));
    const a = member();
    const b = member();
    add(gc, a, 5n, 1, 10n);
    add(gc, a, 5n, 1, 11n);
    add(gc, a, 5n, 1, 12n);
    add(gc, a, 5n, 1, 14n); // a gap
    add(gc, a, 5n, 2, 15n); // another epoch
    add(gc, a, 6n, 2, 16n); // another producer
    add(gc, b, 6n, 2, 17n); // another connection
    add(gc, b, 6n, 2, 0xffff_ffffn); // a gap
    add(gc, b, 6n, 2, 0x1_0000_0000n); // consecutive across the carry out of the low 32 bits
    gc.schedule();
    await gc.whenIdle();
    assert.equal(appended.length, 1);
    const payload = appended[0]!;
    let p = 0;
    const kinds: string[] = [];
    for (let i = 0; i < 9; i++) {
      const op = payload[p]!;
      kinds.push(op & 0x80 ? 'trailer' : op & 0x40 ? 'cont' : 'none');
      p += 13 + 2 + 1 + (op & 0x80 ? 20 : 0);
    }
    assert.equal(p, payload.length);
    assert.deepEqual(kinds, ['trailer', 'cont', 'cont', 'trailer', 'trailer', 'trailer', 'trailer', 'trailer', 'cont']);
    assert.deepEqual(producersOf(payload), [
      [5n, 1, 10n],
      [5n, 1, 11n],
      [5n, 1, 12n],
      [5n, 1, 14n],
      [5n, 2, 15n],
      [6n, 2, 16n],
      [6n, 2, 17n],
      [6n, 2, 0xffff_ffffn],
      [6n, 2, 0x1_0000_0000n],
    ]);
  });

  it('starts every batch with a trailer: a run never crosses records', async () => {
    const appended: Buffer[] = [];
    let release: () => void = () => {};
    const sink = {
      maxBatchBytes: 8192,
      append: (entries: Buffer) => {
        appended.push(Buffer.from(entries));
        return new Promise<void>((resolve) => (release = resolve));
      },
    };
    const gc = new GroupCommit(sink, SMALL, recordingLogger([]), null, null, 0, 0);
    const a = member();
    add(gc, a, 5n, 1, 0n);
    add(gc, a, 5n, 1, 1n);
    gc.schedule();
    while (appended.length === 0) await new Promise((r) => setImmediate(r));
    add(gc, a, 5n, 1, 2n); // the next batch, while the first is in flight
    release();
    while (appended.length < 2) await new Promise((r) => setImmediate(r));
    release();
    await gc.whenIdle();
    assert.deepEqual(producersOf(appended[0]!), [[5n, 1, 0n], [5n, 1, 1n]]);
    assert.equal(appended[1]![0]! & 0xc0, 0x80, 'the second record starts with a trailer');
    assert.deepEqual(producersOf(appended[1]!), [[5n, 1, 2n]]);
  });
});
