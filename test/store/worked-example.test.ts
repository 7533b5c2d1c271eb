// The worked example of docs/storage-format.md, byte for byte: the records a
// real Store writes for it, read back with a plain LevelDB iterator, are
// exactly the rows of the table in the spec.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { DEFAULT_FIELD_SIZES } from '../../lib/protocol/fields.js';
import { appliedMarkName, encodeAppliedMark } from '../../lib/store/marks.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';
import { removeDir, tempDir } from './helpers.js';

const SPEC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/storage-format.md');

/** The rows of the table under the spec's heading `heading` (up to the next one) as [key hex, value hex]. */
function specRows(heading = '## Worked example\n'): Array<[string, string]> {
  const text = fs.readFileSync(SPEC, 'utf8');
  const start = text.indexOf(heading);
  assert.ok(start >= 0, heading);
  const end = text.indexOf('\n## ', start + heading.length);
  const section = text.slice(start, end < 0 ? undefined : end);
  const rows: Array<[string, string]> = [];
  for (const line of section.split('\n')) {
    const m = /^\| `([0-9a-f ]+)` \| (`([0-9a-f ]+)`|\(empty\)) \|/.exec(line);
    if (m === null) continue;
    rows.push([m[1]!.replace(/ /g, ''), (m[3] ?? '').replace(/ /g, '')]);
  }
  return rows;
}

describe('docs/storage-format.md, worked example', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => removeDir(dir));

  it('the spec table lists exactly the records the store writes', async () => {
    const location = path.join(dir, 'db');
    const store = await Store.open({ location, sizes: DEFAULT_FIELD_SIZES });
    const batch = new IncrementBatch();
    batch.add(Buffer.from('pages'), Buffer.from('home'), 5n);
    batch.add(Buffer.from('pages'), Buffer.from('about'), -3n);
    await store.apply(batch, [{ name: appliedMarkName(3), value: encodeAppliedMark(0x0123456789abcdefn) }]);
    await store.close();

    const db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    const written: Array<[string, string]> = [];
    for await (const [key, value] of db.iterator()) written.push([key.toString('hex'), value.toString('hex')]);
    await db.close();

    const spec = specRows();
    assert.equal(spec.length, 9, 'the table has 9 rows');
    assert.deepEqual(written, spec);
  });

  it('--ties first: the spec table lists exactly the records the store writes', async () => {
    const location = path.join(dir, 'db');
    const store = await Store.open({ location, sizes: DEFAULT_FIELD_SIZES });
    const first = new IncrementBatch();
    first.createKeyspace(Buffer.from('lb'), 1, 1);
    first.add(Buffer.from('lb'), Buffer.from('zed'), 5n);
    await store.apply(first);
    const second = new IncrementBatch(store.operators());
    second.add(Buffer.from('lb'), Buffer.from('amy'), 5n);
    await store.apply(second);
    assert.deepEqual((await store.page('lb', 0, 10)).map((e) => e.key.toString()), ['zed', 'amy']);
    await store.close();

    const db = new ClassicLevel<Buffer, Buffer>(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    const written: Array<[string, string]> = [];
    for await (const [key, value] of db.iterator()) written.push([key.toString('hex'), value.toString('hex')]);
    await db.close();

    const spec = specRows('## Worked example: ties first\n');
    assert.equal(spec.length, 10, 'the table has 10 rows');
    assert.deepEqual(written, spec);
  });
});
