import assert from 'node:assert/strict';
import { DEFAULT_FIELD_SIZES } from '../../lib/protocol/fields.js';
import { INT64_MAX, INT64_MIN } from '../../lib/protocol/fields.js';
import {
  encodeCountResponse,
  encodeDenseResponse,
  encodeSettingsResponse,
  ReadResponseDecoder,
  encodeHealthResponse,
  encodeHelloResponse,
  encodeKeyspacesResponse,
  encodePageResponse,
  encodePositionedResponse,
  encodeStatusResponse,
  N_MALFORMED,
  N_PAGE_TOO_LARGE,
} from '../../lib/protocol/read-response.js';
import { isCountdError } from '../../lib/errors.js';

const sizes = DEFAULT_FIELD_SIZES;
const small = { keyspaceSize: 4, keySize: 3 };
const e = (key: string, count: bigint) => ({ key: Buffer.from(key), count });

describe('read response codec', () => {
  it('encodes a page as n then (count, key) records of 8 + K bytes', () => {
    const buf = encodePageResponse([e('home', 7n), e('faq', -2n)], sizes);
    assert.equal(buf.length, 8 + 2 * 264);
    assert.equal(buf.readBigInt64LE(0), 2n);
    assert.equal(buf.readBigInt64LE(8), 7n);
    assert.equal(buf.subarray(16, 20).toString(), 'home');
    assert.ok(buf.subarray(20, 272).every((b) => b === 0));
    assert.equal(buf.readBigInt64LE(272), -2n);
  });

  it('encodes the status answers -1 and -2 as a bare n', () => {
    assert.equal(encodeStatusResponse(N_MALFORMED).readBigInt64LE(0), -1n);
    assert.equal(encodeStatusResponse(N_PAGE_TOO_LARGE).readBigInt64LE(0), -2n);
    assert.throws(() => encodeStatusResponse(-3n), (err: unknown) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
  });

  it('refuses keys that do not fit the field', () => {
    assert.throws(() => encodePageResponse([e('abcd', 1n)], small), (err: unknown) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
  });

  it('decodes a pipelined stream of every response shape, fed one byte at a time', () => {
    const stream = Buffer.concat([
      encodePageResponse([e('abc', INT64_MAX), e('a', INT64_MIN)], small),
      encodeStatusResponse(N_PAGE_TOO_LARGE),
      encodePositionedResponse(2n ** 62n, [e('b', 3n)], small),
      encodePositionedResponse(0, [], small),
      encodeKeyspacesResponse([{ name: Buffer.from('ks'), size: 5 }, { name: Buffer.from('abcd'), size: 1n }], small),
      encodeHelloResponse(small),
      encodePageResponse([], small),
      encodeStatusResponse(N_MALFORMED),
    ]);
    const d = new ReadResponseDecoder(small);
    for (const op of ['page', 'around', 'rank', 'rank', 'keyspaces', 'hello', 'get', 'page'] as const) d.expect(op);
    const out = [];
    for (let i = 0; i < stream.length; i++) {
      d.push(stream.subarray(i, i + 1));
      for (let r = d.next(); r !== undefined; r = d.next()) out.push(r);
    }
    assert.deepEqual(out, [
      { op: 'page', status: 'ok', entries: [e('abc', INT64_MAX), e('a', INT64_MIN)] },
      { op: 'around', status: 'page-too-large' },
      { op: 'rank', status: 'ok', first: 2n ** 62n, entries: [e('b', 3n)] },
      { op: 'rank', status: 'ok', first: 0n, entries: [] },
      { op: 'keyspaces', status: 'ok', keyspaces: [{ name: Buffer.from('ks'), size: 5n }, { name: Buffer.from('abcd'), size: 1n }] },
      { op: 'hello', status: 'ok', version: 2n },
      { op: 'get', status: 'ok', entries: [] },
      { op: 'page', status: 'malformed' },
    ]);
    assert.equal(d.pending, 0);
  });

  it('decodes the version 2 shapes (dense, count, settings) fed one byte at a time', () => {
    const settings = Buffer.alloc(16);
    settings[0] = 2;
    settings[1] = 1;
    const stream = Buffer.concat([
      encodeDenseResponse({ rank: 5, dense: 2, entry: e('ab', -7n) }, small),
      encodeDenseResponse(undefined, small),
      encodeCountResponse(2n ** 40n),
      encodeSettingsResponse([{ name: Buffer.from('ks'), size: 3, settings }, { name: Buffer.from('abcd'), size: 0n, settings: Buffer.alloc(16) }], small),
    ]);
    const d = new ReadResponseDecoder(small);
    for (const op of ['dense', 'dense', 'count', 'settings'] as const) d.expect(op);
    const out = [];
    for (let i = 0; i < stream.length; i++) {
      d.push(stream.subarray(i, i + 1));
      for (let r = d.next(); r !== undefined; r = d.next()) out.push(r);
    }
    assert.deepEqual(out, [
      { op: 'dense', status: 'ok', rank: 5n, dense: 2n, entries: [e('ab', -7n)] },
      { op: 'dense', status: 'ok', rank: 0n, dense: 0n, entries: [] },
      { op: 'count', status: 'ok', keys: 2n ** 40n },
      { op: 'settings', status: 'ok', keyspaces: [{ name: Buffer.from('ks'), size: 3n, settings }, { name: Buffer.from('abcd'), size: 0n, settings: Buffer.alloc(16) }] },
    ]);
    const bad = new ReadResponseDecoder(small);
    bad.expect('count');
    bad.push(Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]));
    assert.throws(() => bad.next(), (err: unknown) => isCountdError(err, 'COUNTD_CONNECTION'), 'count response n = 2');
    assert.throws(() => encodeSettingsResponse([{ name: Buffer.from('ks'), size: 1, settings: Buffer.alloc(3) }], small), (err: unknown) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'));
  });

  it('decodes a whole stream pushed at once', () => {
    const d = new ReadResponseDecoder(sizes);
    d.expect('page');
    d.expect('page');
    d.push(Buffer.concat([encodePageResponse([e('x', 1n)], sizes), encodePageResponse([e('y', 2n)], sizes)]));
    assert.deepEqual(d.next(), { op: 'page', status: 'ok', entries: [e('x', 1n)] });
    assert.deepEqual(d.next(), { op: 'page', status: 'ok', entries: [e('y', 2n)] });
    assert.equal(d.next(), undefined);
  });

  it('rejects what no server may send', () => {
    const bytes = (n: bigint) => {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(n);
      return b;
    };
    const isConn = (err: unknown) => isCountdError(err, 'COUNTD_CONNECTION');
    let d = new ReadResponseDecoder(sizes);
    d.push(bytes(0n));
    assert.throws(() => d.next(), isConn, 'bytes with no request outstanding');
    d = new ReadResponseDecoder(sizes);
    d.expect('page');
    d.push(bytes(-3n));
    assert.throws(() => d.next(), isConn, 'n = -3');
    d = new ReadResponseDecoder(sizes, { maxRecords: 10 });
    d.expect('page');
    d.push(bytes(11n));
    assert.throws(() => d.next(), isConn, 'n above maxRecords');
  });

  it('round-trips a health record (state, since, failures, code, message cut to its field at a character boundary)', () => {
    const long = 'é'.repeat(200); // 400 bytes of UTF-8: cut to 256, never inside a character
    const h = { state: 'stalled' as const, since: 1_796_000_000_123, failures: 7, code: 'COUNTD_NO_SPACE', message: long };
    const buf = encodeHealthResponse(h);
    assert.equal(buf.length, 8 + 24 + 32 + 256);
    assert.equal(buf.readBigInt64LE(0), 1n);
    assert.equal(buf.readBigInt64LE(8), 3n);
    const d = new ReadResponseDecoder(sizes);
    d.expect('health');
    d.push(buf.subarray(0, 100));
    assert.equal(d.next(), undefined);
    d.push(buf.subarray(100));
    const r = d.next();
    assert.ok(r && r.op === 'health' && r.status === 'ok');
    assert.deepEqual({ ...r.health, message: '' }, { ...h, message: '' });
    assert.equal(r.health.message, 'é'.repeat(128));
  });

  it('rejects a health response whose n is not 1', () => {
    const buf = encodeHealthResponse({ state: 'applying', since: 0, failures: 0, code: '', message: '' });
    buf.writeBigInt64LE(2n, 0);
    const d = new ReadResponseDecoder(sizes);
    d.expect('health');
    d.push(buf);
    assert.throws(() => d.next(), (err: unknown) => isCountdError(err, 'COUNTD_CONNECTION'));
  });

  it('rejects a health record with an unknown state', () => {
    const buf = encodeHealthResponse({ state: 'applying', since: 0, failures: 0, code: '', message: '' });
    buf.writeBigInt64LE(9n, 8);
    const d = new ReadResponseDecoder(sizes);
    d.expect('health');
    d.push(buf);
    assert.throws(() => d.next(), (err: unknown) => isCountdError(err, 'COUNTD_CONNECTION'));
  });
});
