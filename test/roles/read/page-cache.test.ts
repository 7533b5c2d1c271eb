import assert from 'node:assert/strict';
import { PageCache } from '../../../lib/roles/read/page-cache.js';

describe('reader page cache', () => {
  const key = (ks: string, offset = 0n, length = 10n) => PageCache.key(Buffer.from(ks), offset, length);

  it('serves an entry only at the version it was stored with', () => {
    const cache = new PageCache(1024);
    cache.set(key('a'), 3, Buffer.from('abc'));
    assert.deepEqual(cache.get(key('a'), 3), Buffer.from('abc'));
    assert.equal(cache.get(key('a'), 4), undefined, 'a newer store version invalidates it');
    assert.equal(cache.get(key('a'), 3), undefined, 'and the stale entry is gone');
    assert.equal(cache.bytes, 0);
  });

  it('tells pages apart by keyspace, offset and length', () => {
    const cache = new PageCache(1024);
    cache.set(key('a', 0n, 10n), 1, Buffer.from('1'));
    assert.equal(cache.get(key('a', 1n, 10n), 1), undefined);
    assert.equal(cache.get(key('a', 0n, 11n), 1), undefined);
    assert.equal(cache.get(key('b', 0n, 10n), 1), undefined);
    assert.equal(cache.get(key('a', 0n, 10n), 1)?.toString(), '1');
  });

  it('keeps its bytes under the bound, dropping the least recently used first', () => {
    const cache = new PageCache(10);
    cache.set(key('a'), 1, Buffer.alloc(4));
    cache.set(key('b'), 1, Buffer.alloc(4));
    cache.get(key('a'), 1); // a is now the most recently used
    cache.set(key('c'), 1, Buffer.alloc(4));
    assert.ok(cache.bytes <= 10);
    assert.equal(cache.get(key('b'), 1), undefined, 'b went first');
    assert.ok(cache.get(key('a'), 1));
    assert.ok(cache.get(key('c'), 1));
    cache.set(key('huge'), 1, Buffer.alloc(11));
    assert.equal(cache.get(key('huge'), 1), undefined, 'a response above the bound is not kept');
  });
});
