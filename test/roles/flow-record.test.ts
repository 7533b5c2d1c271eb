// <data-dir>/flow.<pid>.json (lib/datadir/flow-record.ts): what a writer
// publishes, what status reads, and records of dead writers.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FlowRecordWriter, flowRecordPath, readFlowRecords, removeStaleFlowRecords } from '../../lib/roles/write/flow-record.js';
import type { FlowReport } from '../../lib/roles/write/flow.js';
import { waitUntil } from '../harness/daemon.js';

const report = (state: FlowReport['state'], since: number): FlowReport => ({
  state,
  since,
  backlogBytes: 5,
  soft: 4,
  hard: 8,
  delayed: { count: 1, seconds: 0.5 },
  stopped: { count: state === 'stopped' ? 1 : 0, seconds: 0 },
});

describe('flow record', () => {
  let root: string;
  beforeEach(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-flowrec-'));
  });
  afterEach(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('publishes the latest state, is read back as a live record, and is removed on close', async () => {
    const w = new FlowRecordWriter(root);
    w.publish(report('delayed', 1));
    w.publish(report('stopped', 2));
    await waitUntil('the last state to be written', async () => (await readFlowRecords(root))[0]?.since === 2);
    const [r] = await readFlowRecords(root);
    assert.equal(r!.pid, process.pid);
    assert.equal(r!.state, 'stopped');
    assert.deepEqual(r!.stopped, { count: 1, seconds: 0 });
    await w.close();
    assert.deepEqual(await readFlowRecords(root), []);
    await assert.rejects(fsp.stat(flowRecordPath(root)), { code: 'ENOENT' });
  });

  it('ignores, then removes, the records of dead writers and unreadable ones', async () => {
    const dead = { pid: 999_999_999, start: '1', ...report('stopped', 3) };
    await fsp.writeFile(path.join(root, 'flow.999999999.json'), JSON.stringify(dead));
    await fsp.writeFile(path.join(root, 'flow.999999998.json'), '{"pid":');
    await fsp.writeFile(path.join(root, 'other.json'), '{}');
    assert.deepEqual(await readFlowRecords(root), []);
    await removeStaleFlowRecords(root);
    assert.deepEqual((await fsp.readdir(root)).sort(), ['other.json']);
  });

  it('a missing data directory has no records', async () => {
    assert.deepEqual(await readFlowRecords(path.join(root, 'missing')), []);
  });
});
