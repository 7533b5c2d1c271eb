// The metric names the documentation promises (docs/guarantees.md told
// operators to watch `countd_dirty_backlog_logs`, which never existed):
// every `countd_…` name in README.md and docs/*.md must be a metric that
// lib/metrics.ts registers.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { registry } from '../../lib/metrics.js';
import { ROOT } from './helpers.js';

/** `countd_…` names in a Markdown text, without histogram series suffixes. */
function metricNames(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/\bcountd_[a-z0-9_]+/g)) names.add(m[0].replace(/_(bucket|sum|count)$/, ''));
  return [...names];
}

describe('documentation: metric names', () => {
  it('every metric named in docs/guarantees.md and README exists', () => {
    const registered = new Set(registry.getMetricsAsArray().map((m) => m.name));
    const files = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join('docs', f))];
    const missing: string[] = [];
    let named = 0;
    for (const file of files) {
      for (const name of metricNames(fs.readFileSync(path.join(ROOT, file), 'utf8'))) {
        named++;
        if (!registered.has(name)) missing.push(`${file}: ${name}`);
      }
    }
    assert.ok(named >= 10, `only ${named} metric names found: is the pattern right?`);
    assert.deepEqual(missing, []);
  });
});
