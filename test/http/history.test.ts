// The console's history (lib/http/history.ts): rates from counter
// differences, the backlog and lag from the dirty logs' hand-over times,
// stalls while logs wait and nothing is applied, and the ring's bound.

import assert from 'node:assert/strict';
import { History, Metrics } from '../../lib/http/history.js';

function metrics(acked: number, applied: number, failed = 0): Metrics {
  const counter = (name: string, value: number) => ({ name, values: [{ value }] });
  return [counter('countd_write_frames_acked_total', acked), counter('countd_worker_frames_applied_total', applied), counter('countd_write_frames_failed_total', failed)];
}

describe('console history', () => {
  it('rates are counter differences per second of the time between samples', () => {
    const h = new History();
    h.add(10_000, metrics(100, 50), []);
    h.add(12_000, metrics(700, 450, 4), []);
    const c = h.since(0);
    assert.deepEqual(c.t, [10_000, 12_000]);
    assert.deepEqual(c.acked, [0, 300]);
    assert.deepEqual(c.applied, [0, 200]);
    assert.deepEqual(c.failed, [0, 2]);
  });

  it('a counter that went down (a child restarted) counts from zero; a missing one gives no rate', () => {
    const h = new History();
    h.add(1000, metrics(500, 500), []);
    h.add(2000, metrics(30, 520), []);
    h.add(3000, [], []);
    h.add(4000, metrics(40, 530), []);
    const c = h.since(0);
    assert.deepEqual(c.acked, [0, 30, 0, 0]);
    assert.deepEqual(c.applied, [0, 20, 0, 0]);
  });

  it('backlog and lag: the dirty logs, and how long the oldest has waited since its hand-over', () => {
    const h = new History();
    h.add(10_000, metrics(0, 0), []);
    h.add(11_000, metrics(10, 0), [9_500, 10_700]);
    const c = h.since(0);
    assert.deepEqual(c.backlog, [0, 2]);
    assert.deepEqual(c.lag, [0, 1.5]);
  });

  it('backlogBytes and flow: the dirty bytes, and the worst flow-control state of the writers', () => {
    const h = new History();
    const flow = (state: string): Metrics => [
      { name: 'countd_write_flow_state', values: ['normal', 'delayed', 'stopped'].map((s) => ({ value: s === state ? 1 : 0, labels: { state: s } })) },
    ];
    h.add(1000, [], []);
    h.add(2000, flow('normal'), [1500], 65536);
    h.add(3000, flow('delayed'), [1500, 2500], 131072);
    h.add(4000, [...flow('stopped'), ...flow('delayed')], [1500, 2500], 131072);
    const c = h.since(0);
    assert.deepEqual(c.backlogBytes, [0, 65536, 131072, 131072]);
    assert.deepEqual(c.flow, [0, 0, 1, 2]);
  });

  it('a stall grows while logs wait and nothing is applied, and ends with the next apply or an empty backlog', () => {
    const h = new History();
    h.add(10_000, metrics(0, 0), []);
    h.add(11_000, metrics(10, 0), [10_500]);
    h.add(12_000, metrics(10, 0), [10_500]);
    h.add(13_000, metrics(10, 0), [10_500]);
    h.add(14_000, metrics(10, 5), [10_500]);
    h.add(15_000, metrics(10, 5), [10_500]);
    h.add(16_000, metrics(10, 5), []);
    assert.deepEqual(h.since(0).stall, [0, 1, 2, 3, 0, 1, 0]);
  });

  it('since() returns only later samples, and the ring keeps the newest `capacity`', () => {
    const h = new History(3);
    for (let t = 1; t <= 5; t++) h.add(t * 1000, metrics(t, t), []);
    assert.deepEqual(h.since(0).t, [3000, 4000, 5000]);
    assert.deepEqual(h.since(4000).t, [5000]);
    assert.deepEqual(h.since(5000).t, []);
  });
});
