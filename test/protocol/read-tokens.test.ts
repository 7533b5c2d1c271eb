// The read extensions of issue 16 (docs/read-protocol-extensions.md):
// producers (op 16) and await (op 17), encoded, decoded, refused when
// malformed; the await worked example's bytes; a response decoder that reads
// both and the -3 timeout.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_FIELD_SIZES } from '../../lib/protocol/fields.js';
import { docBlockBytes } from '../harness/doc-bytes.js';
import { decodeReadRequest, encodeReadRequest } from '../../lib/protocol/read-request.js';
import { N_TIMEOUT, ReadResponseDecoder, encodeAwaitResponse, encodeProducersResponse, encodeStatusResponse } from '../../lib/protocol/read-response.js';

const sizes = DEFAULT_FIELD_SIZES;

describe('read extensions producers and await', () => {
  it('encode and decode, 280 bytes each', () => {
    const p = encodeReadRequest({ op: 'producers', after: 7n, length: 100 }, sizes);
    const a = encodeReadRequest({ op: 'await', token: 1n << 60n, timeoutMs: 250 }, sizes);
    assert.equal(p.length, 280);
    assert.equal(a.length, 280);
    assert.deepEqual(decodeReadRequest(p, 0, sizes), { kind: 'request', size: 280, request: { op: 'producers', after: 7n, length: 100n } });
    assert.deepEqual(decodeReadRequest(a, 0, sizes), { kind: 'request', size: 280, request: { op: 'await', token: 1n << 60n, timeoutMs: 250n } });
    // On a plain connection they are pages (the extensions need the hello).
    assert.equal((decodeReadRequest(p, 0, sizes, false) as { kind: string }).kind, 'malformed');
    const bad = Buffer.from(a);
    bad[16] = 0x41;
    assert.deepEqual(decodeReadRequest(bad, 0, sizes), { kind: 'malformed', reason: 'keyspace field must be all NUL' });
    const unknown = Buffer.from(a);
    unknown[0] = 18;
    assert.equal((decodeReadRequest(unknown, 0, sizes) as { kind: string }).kind, 'malformed');
  });

  it('the await worked example is what the codec makes', () => {
    const doc = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/read-protocol-extensions.md'), 'utf8');
    const section = doc.slice(doc.indexOf('**await of token'));
    assert.deepEqual(docBlockBytes(section), encodeReadRequest({ op: 'await', token: 0x1a2513bc00000005n, timeoutMs: 10_000 }, sizes));
    assert.deepEqual(encodeStatusResponse(N_TIMEOUT), Buffer.from('fcffffffffffffff', 'hex'));
  });

  it('decodes producers, await and its timeout, in order, split anywhere', () => {
    const producers = [{ id: 42n, epoch: 1, first: 0n, last: 7n, token: 99n, lastSeen: 1796659200000 }, { id: 43n, epoch: 0, first: 5n, last: 5n, token: 100n, lastSeen: 1 }];
    const stream = Buffer.concat([encodeProducersResponse(producers), encodeAwaitResponse(123n), encodeStatusResponse(N_TIMEOUT), encodeProducersResponse([])]);
    for (const cut of [1, 7, 8, 9, 55, 56, stream.length - 1]) {
      const d = new ReadResponseDecoder(sizes);
      for (const op of ['producers', 'await', 'await', 'producers'] as const) d.expect(op);
      const out = [];
      for (const part of [stream.subarray(0, cut), stream.subarray(cut)]) {
        d.push(part);
        for (let r = d.next(); r !== undefined; r = d.next()) out.push(r);
      }
      assert.deepEqual(out, [
        { op: 'producers', status: 'ok', producers },
        { op: 'await', status: 'ok', applied: 123n },
        { op: 'await', status: 'timeout' },
        { op: 'producers', status: 'ok', producers: [] },
      ], `cut at ${cut}`);
    }
  });
});
