// A keyspace's window as bytes and as periods: the CLI's words, the settings
// bytes (store settings value, create op key field, commit-log create entry),
// UTC-aligned period starts (fixed windows from the epoch, ISO weeks from
// Monday, calendar months), and every error path of their readers.

import assert from 'node:assert/strict';
import { OP_CREATE_KEYSPACE, OP_ENTRY_FIXED_SIZE, countOps, writeOpEntry } from '../../lib/commitlog/format.js';
import { isCountdError } from '../../lib/errors.js';
import { createWindow, parseWindow, readWindow, settingsTail, windowLabel, windowProblem } from '../../lib/protocol/window-settings.js';
import { OP_HEADER_SIZE, encodeOpFrame, validateOpFrame } from '../../lib/protocol/write-ops.js';
import { decodeSettingsValue, encodeSettingsValue } from '../../lib/store/encoding.js';
import { oldestKept, parsePeriodId, periodAgo, periodName, periodStart } from '../../lib/store/windows.js';

const at = (iso: string): number => Date.parse(iso);

describe('window settings and periods', () => {
  it('parses the CLI words: durations are fixed windows, hour/day/week/month calendar ones; --keep defaults to 2', () => {
    assert.deepEqual(parseWindow('10s', undefined), { unit: 1, keep: 2, seconds: 10 });
    assert.deepEqual(parseWindow('5m', 7), { unit: 1, keep: 7, seconds: 300 });
    assert.deepEqual(parseWindow('2h', 1), { unit: 1, keep: 1, seconds: 7200 });
    assert.deepEqual(parseWindow('7d', 1), { unit: 1, keep: 1, seconds: 604_800 });
    for (const [word, unit] of [['hour', 2], ['day', 3], ['week', 4], ['month', 5]] as const) {
      assert.deepEqual(parseWindow(word, 3), { unit, keep: 3, seconds: 0 });
      assert.equal(windowLabel(parseWindow(word, 3)), word);
    }
    assert.equal(windowLabel(parseWindow('120s', 1)), '2m');
    assert.equal(windowLabel(parseWindow('90s', 1)), '90s');
    for (const bad of ['', '10', 's', '0s', '-5s', '1.5h', '10 s', 'daily', '10S', '1y']) {
      assert.throws(() => parseWindow(bad, 1), (err: unknown) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT') && /--window must be/.test((err as Error).message), bad);
    }
    assert.throws(() => parseWindow('367d', 1), /a fixed window must be from 1 to 31622400 seconds/);
    assert.throws(() => parseWindow('day', 0), /keep must be from 1 to 100000/);
    assert.throws(() => parseWindow('day', 100_001), /keep must be from 1 to 100000/);
  });

  it('periods are UTC and aligned: fixed windows to the epoch, weeks to Monday 00:00, months to the 1st', () => {
    const tenS = parseWindow('10s', 2);
    assert.equal(periodStart(tenS, at('2026-12-07T10:00:09.999Z')), at('2026-12-07T10:00:00Z'));
    assert.equal(periodStart(tenS, at('2026-12-07T10:00:10Z')), at('2026-12-07T10:00:10Z'));
    assert.equal(periodStart(parseWindow('7d', 1), 0), 0); // 1970-01-01, a Thursday: fixed windows ignore weekdays
    assert.equal(periodStart(parseWindow('hour', 1), at('2026-12-07T10:59:59Z')), at('2026-12-07T10:00:00Z'));
    assert.equal(periodStart(parseWindow('day', 1), at('2026-12-07T23:59:59.999Z')), at('2026-12-07T00:00:00Z'));
    const week = parseWindow('week', 2);
    // 2026-12-07 is a Monday; the Sunday before belongs to the week of Monday 2026-11-30.
    assert.equal(periodStart(week, at('2026-12-07T00:00:00Z')), at('2026-12-07T00:00:00Z'));
    assert.equal(periodStart(week, at('2026-12-13T23:59:59Z')), at('2026-12-07T00:00:00Z'));
    assert.equal(periodStart(week, at('2026-12-06T23:59:59Z')), at('2026-11-30T00:00:00Z'));
    assert.equal(periodAgo(week, at('2026-12-09T12:00:00Z'), 2), at('2026-11-23T00:00:00Z'));
    const month = parseWindow('month', 3);
    assert.equal(periodStart(month, at('2026-12-31T23:59:59Z')), at('2026-12-01T00:00:00Z'));
    assert.equal(periodAgo(month, at('2026-03-31T10:00:00Z'), 1), at('2026-02-01T00:00:00Z'));
    assert.equal(periodAgo(month, at('2026-01-15T10:00:00Z'), 1), at('2025-12-01T00:00:00Z'));
    assert.equal(oldestKept(month, at('2026-01-15T10:00:00Z')), at('2025-11-01T00:00:00Z'));
    assert.equal(oldestKept(tenS, at('2026-12-07T10:00:15Z')), at('2026-12-07T10:00:00Z'));
  });

  it('a period is stored under its keyspace name, a NUL and its start (u64 BE)', () => {
    const name = periodName(Buffer.from('lap'), at('2026-12-07T10:00:10Z'));
    assert.equal(name.toString('hex'), '6c617000' + '000001a24ff25010'); // 1796637610000 ms
    assert.deepEqual(parsePeriodId(name.toString('latin1')), { keyspace: 'lap', start: at('2026-12-07T10:00:10Z') });
    assert.equal(parsePeriodId('lap'), undefined);
  });

  it('settings bytes: operator, ties (0 key, 1 first), unit, 0, keep u32 BE, seconds u64 BE; every malformed value is refused', () => {
    const w = parseWindow('10s', 3);
    const value = encodeSettingsValue({ operator: 2, window: w });
    assert.equal(value.toString('hex'), '02000100' + '00000003' + '000000000000000a');
    assert.deepEqual(decodeSettingsValue(value), { operator: 2, ties: 0, window: w });
    assert.deepEqual(decodeSettingsValue(encodeSettingsValue({ operator: 1 })), { operator: 1, ties: 0 });
    assert.deepEqual(settingsTail(w), value.subarray(1));
    // Ties first and a window together (issue 17 items 3 and 4): byte 1 and bytes 2 … 15.
    const both = encodeSettingsValue({ operator: 2, ties: 1, window: w });
    assert.equal(both.toString('hex'), '02010100' + '00000003' + '000000000000000a');
    assert.deepEqual(decodeSettingsValue(both), { operator: 2, ties: 1, window: w });
    assert.deepEqual(settingsTail(w, 1), both.subarray(1));
    const bad = (hex: string): void => assert.equal(decodeSettingsValue(Buffer.from(hex, 'hex')), null, hex);
    bad('02000600' + '00000003' + '0000000000000000'); // unknown unit
    bad('02000100' + '00000000' + '000000000000000a'); // keep 0
    bad('02000100' + '00000003' + '0000000000000000'); // fixed window of 0 s
    bad('02000300' + '00000003' + '000000000000000a'); // a day with seconds
    bad('02000001' + '00000000' + '0000000000000000'); // reserved byte 3
    bad('02000000' + '00000001' + '0000000000000000'); // keep without a window
    bad('02020000' + '00000000' + '0000000000000000'); // an unknown tie rule
    bad('02020100' + '00000003' + '000000000000000a'); // an unknown tie rule, with a window
    bad('02000100' + '00000003' + 'ffffffffffffffff'); // seconds past the bound
    assert.equal(windowProblem({ unit: 9, keep: 1, seconds: 0 }), 'unknown window unit 9');
  });

  it('a create carries the window in its key field (op frame) and its key (commit-log entry), trailing NULs cut', () => {
    const sizes = { keyspaceSize: 8, keySize: 16 };
    const frame = encodeOpFrame('createKeyspace', 2, 'lap', null, sizes, { window: parseWindow('10s', 3) });
    assert.equal(frame.subarray(OP_HEADER_SIZE + 8).toString('hex'), '000100' + '00000003' + '000000000000000a' + '00');
    const lengths = new Int32Array(2);
    assert.equal(validateOpFrame(frame, 0, sizes, lengths), 5);
    assert.deepEqual([...lengths], [3, 15]);
    const day = encodeOpFrame('createKeyspace', 1, 'lap', null, sizes, { window: parseWindow('day', 2) });
    assert.equal(validateOpFrame(day, 0, sizes, lengths), 5);
    assert.deepEqual([...lengths], [3, 7]);
    assert.deepEqual(createWindow(day, OP_HEADER_SIZE + 8, 7), { unit: 3, keep: 2, seconds: 0 });
    // Ties first with a window: the tie rule (the Buffer given as key) in byte 0, the window after it.
    const first = encodeOpFrame('createKeyspace', 2, 'lap', Buffer.from([1]), sizes, { window: parseWindow('10s', 3) });
    assert.equal(first.subarray(OP_HEADER_SIZE + 8).toString('hex'), '010100' + '00000003' + '000000000000000a' + '00');
    assert.equal(validateOpFrame(first, 0, sizes, lengths), 5);
    assert.deepEqual([...lengths], [3, 15]);
    // Malformed: an unknown unit, a byte past the 15 settings bytes, an unknown tie rule.
    for (const [offset, byte] of [[OP_HEADER_SIZE + 8 + 1, 9], [OP_HEADER_SIZE + 8 + 15, 1], [OP_HEADER_SIZE + 8, 2]] as const) {
      const broken = Buffer.from(frame);
      broken[offset] = byte;
      assert.equal(validateOpFrame(broken, 0, sizes, lengths), 0, `byte ${offset}`);
    }
    assert.throws(() => encodeOpFrame('createKeyspace', 1, 'lap', null, { keyspaceSize: 8, keySize: 8 }, { window: parseWindow('10s', 1) }), /a window needs a key field of at least 15 bytes/);
    assert.throws(() => encodeOpFrame('set', 1, 'lap', 'k', sizes, { window: parseWindow('day', 1) }), /set takes no window/);
    // The commit log's create entry: keyLen 15 holds the same bytes; a malformed window makes the record invalid.
    const tail = settingsTail(parseWindow('10s', 3));
    const payload = Buffer.alloc(64);
    const end = writeOpEntry(payload, 0, OP_CREATE_KEYSPACE, 2n, Buffer.concat([Buffer.from('lap'), tail]), 0, 3, 3, 15);
    assert.equal(end, OP_ENTRY_FIXED_SIZE + 3 + 15);
    assert.equal(countOps(payload.subarray(0, end), sizes), 1);
    payload[OP_ENTRY_FIXED_SIZE + 3 + 1] = 7;
    assert.equal(countOps(payload.subarray(0, end), sizes), -1);
  });

  it('readWindow refuses a malformed window', () => {
    assert.equal(readWindow(Buffer.from('00000100000000000000000000000000', 'hex'), 0), null);
  });
});
