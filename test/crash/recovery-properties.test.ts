// Commit-log recovery properties (issue 6, item 3) not covered by
// test/commitlog/format.test.ts (which has: torn tail at every byte, every
// single-byte flip, a recycled file refilled with fewer records, zero tail,
// sequence holes inside a log, SEAL counts, streamGaps on built logs).
// Here, on logs written by the real CommitLogWriter across rotations: a log
// cut exactly on a record boundary is detected, through the next log's
// firstSeq (streamGaps) when its SEAL went too, or through the SEAL when it
// survived.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SEAL_RECORD_SIZE, TIMED_RECORD_HEADER_SIZE, encodeEntry, entrySize } from '../../lib/commitlog/format.js';
import { logName, parsePoolName } from '../../lib/commitlog/filenames.js';
import { LogContents, parseLog, readLogFile, streamGaps } from '../../lib/commitlog/reader.js';
import { CommitLogWriter } from '../../lib/commitlog/writer.js';

const SIZES = { keyspaceSize: 16, keySize: 16 };

function entries(n: number, tag: string): Buffer {
  const size = entrySize(2, tag.length + 4);
  const buf = Buffer.alloc(size * n);
  for (let i = 0; i < n; i++) encodeEntry(buf, i * size, 1n, Buffer.from('ks'), Buffer.from(`${tag}${String(i).padStart(4, '0')}`));
  return buf;
}

async function readAll(dir: string): Promise<LogContents[]> {
  const out: LogContents[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const p = parsePoolName(name);
    if (p.kind === 'log') out.push(await readLogFile(path.join(dir, name), SIZES));
  }
  return out;
}

describe('commit-log recovery: a log cut exactly on a record boundary', function () {
  let dir = '';
  let logs: LogContents[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'countd-test-recovery-'));
    // One stream over several logs: rotation by size seals each full log.
    const w = await CommitLogWriter.open({ dir, sizes: SIZES, logSize: 4096 + 900, handoverMs: 3_600_000 });
    for (let i = 0; i < 40; i++) await w.append(entries(1 + (i % 4), `a${i}.`), 1 + (i % 4));
    await w.close();
    // The writer may have claimed its next log ahead and released it clean at close: a use with no records, not part of the stream.
    logs = (await readAll(dir)).filter((l) => l.records.length > 0);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the intact stream has no gap, every log sealed, no problem', () => {
    assert.ok(logs.length >= 4, `${logs.length} logs`);
    for (const l of logs) {
      assert.deepEqual(l.problems, []);
      assert.equal(l.sealed, true);
    }
    assert.deepEqual(streamGaps(logs), []);
  });

  it('every cut on a record boundary of a non-last log, SEAL included, shows as a gap before the next log', () => {
    const ordered = [...logs].sort((a, b) => (a.header!.firstSeq < b.header!.firstSeq ? -1 : 1));
    let cuts = 0;
    for (let li = 0; li < ordered.length - 1; li++) {
      const victim = ordered[li]!;
      const buf = fs.readFileSync(path.join(dir, logName(victim.index!)));
      for (let ri = 0; ri < victim.records.length; ri++) {
        const cut = Buffer.from(buf);
        cut.fill(0, victim.records[ri]!.offset); // records ri … and the SEAL are gone, as if never written
        const damaged = parseLog(cut, SIZES, victim.index);
        // Alone, the log is indistinguishable from one whose writer stopped there…
        assert.deepEqual(damaged.problems, []);
        assert.equal(damaged.sealed, false);
        const kept = victim.records.slice(0, ri).reduce((n, r) => n + r.count, 0);
        assert.equal(damaged.frames, kept);
        // …but the next log of the stream starts past its end.
        const others = ordered.filter((l) => l !== victim);
        assert.deepEqual(streamGaps([...others, damaged]), [
          { index: ordered[li + 1]!.index, streamId: victim.streamId, expectedSeq: victim.header!.firstSeq + BigInt(kept), firstSeq: ordered[li + 1]!.header!.firstSeq },
        ]);
        cuts++;
      }
    }
    assert.ok(cuts >= 8);
  });

  it('records cut out on their boundaries before a surviving SEAL: the bytes dropped are reported and the SEAL counts disagree', () => {
    const victim = logs.find((l) => l.records.length >= 2)!;
    const buf = fs.readFileSync(path.join(dir, logName(victim.index!)));
    const last = victim.records[victim.records.length - 1]!;
    const sealOffset = last.offset + TIMED_RECORD_HEADER_SIZE + last.payload.length; // the payload read excludes the record's writtenAt
    const from = victim.records[1]!.offset;
    const cut = Buffer.from(buf);
    cut.fill(0, from, sealOffset); // records 1 … n-1 zeroed, the SEAL after them intact
    const damaged = parseLog(cut, SIZES, victim.index);
    assert.equal(damaged.sealed, true);
    assert.equal(damaged.frames, victim.records[0]!.count);
    const dropped = damaged.problems.find((p) => p.bytesDropped > 0);
    assert.ok(dropped, JSON.stringify(damaged.problems));
    assert.equal(dropped.offset, from);
    assert.equal(dropped.bytesDropped, sealOffset - from);
    assert.ok(damaged.problems.some((p) => /seal counts/.test(p.reason)), JSON.stringify(damaged.problems));
    assert.equal(cut.length >= sealOffset + SEAL_RECORD_SIZE, true);
  });
});
