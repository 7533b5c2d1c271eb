// The store child's memory budget is a function of its settings only.

import assert from 'node:assert/strict';
import { BATCH_BYTES_PER_KEY, DEFAULT_STORE_CHILD_SETTINGS, NODE_BASELINE_BYTES, storeChildMemoryBudget } from '../../lib/roles/memory-budget.js';

describe('store child memory budget', () => {
  it('adds up the settings: caches, two write buffers, the worker batches, the runtime', () => {
    const s = { cacheSize: 1, writeBufferSize: 10, countCacheBytes: 100, blockCacheBytes: 1000, pageCacheBytes: 10_000, maxBatchKeys: 3 };
    const budget = storeChildMemoryBudget(s);
    assert.equal(budget.total, NODE_BASELINE_BYTES + 1 + 20 + 100 + 1000 + 10_000 + 3 * BATCH_BYTES_PER_KEY);
    assert.equal(budget.parts.reduce((sum, [, b]) => sum + b, 0), budget.total);
  });

  it('defaults to the defaults of the store, the reader and the worker', () => {
    assert.equal(storeChildMemoryBudget().total, storeChildMemoryBudget(DEFAULT_STORE_CHILD_SETTINGS).total);
    assert.ok(storeChildMemoryBudget().total < 1024 * 1024 * 1024);
  });
});
