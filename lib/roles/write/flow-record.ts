// <data-dir>/flow.<pid>.json: the flow-control state of one running writer
// (lib/roles/write/flow.ts), for `countd status`. Rewritten (temp file and
// rename, not fsynced: it describes a live process, and a crash makes it
// stale anyway) at every state change; removed when the writer closes. A
// record whose process is gone is stale and ignored. Fields:
// docs/architecture.md, "Files on disk".

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { FlowReport } from './flow.js';
import { errnoCode, translateFsError } from '../../errors.js';
import { ProcessIdentity, isAlive, selfIdentity } from '../../util/proc.js';

export type FlowRecord = ProcessIdentity & FlowReport;

const NAME = /^flow\.(\d+)\.json$/;

export function flowRecordPath(root: string, pid = process.pid): string {
  return path.join(root, `flow.${pid}.json`);
}

/** Publish this process's flow state; coalesces: at most one write at a time, the latest state last. */
export class FlowRecordWriter {
  private readonly file: string;
  private latest: FlowReport | null = null;
  private writing: Promise<void> | null = null;
  private closed = false;

  constructor(root: string) {
    this.file = flowRecordPath(root);
  }

  publish(report: FlowReport): void {
    this.latest = report;
    if (this.writing === null && !this.closed) this.writing = this.drain();
  }

  /** Stop publishing and remove the record. */
  async close(): Promise<void> {
    this.closed = true;
    await this.writing;
    await fsp.unlink(this.file).catch(() => {});
  }

  private async drain(): Promise<void> {
    while (this.latest !== null && !this.closed) {
      const record: FlowRecord = { ...selfIdentity(), ...this.latest };
      this.latest = null;
      const tmp = `${this.file}.tmp`;
      // Best effort: status then shows the state before; the writer goes on either way.
      await fsp
        .writeFile(tmp, JSON.stringify(record) + '\n')
        .then(() => fsp.rename(tmp, this.file))
        .catch(() => {});
    }
    this.writing = null;
  }
}

/** Remove the records of writers that are gone (killed: they could not remove their own). Best effort. */
export async function removeStaleFlowRecords(root: string): Promise<void> {
  const names = await fsp.readdir(root).catch(() => [] as string[]);
  for (const name of names) {
    const m = NAME.exec(name);
    if (m === null || Number(m[1]) === process.pid) continue;
    const file = path.join(root, name);
    try {
      const r = JSON.parse(await fsp.readFile(file, 'utf8')) as FlowRecord;
      if (isAlive(r)) continue;
    } catch {
      // unreadable: a writer killed while replacing it left no temp file behind, so it is stale
    }
    await fsp.unlink(file).catch(() => {});
  }
}

/** The records of the live writers of the data directory `root` (stale and unreadable ones skipped). */
export async function readFlowRecords(root: string): Promise<FlowRecord[]> {
  let names: string[];
  try {
    names = await fsp.readdir(root);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw translateFsError(err, `read ${root}`);
  }
  const out: FlowRecord[] = [];
  for (const name of names.filter((n) => NAME.test(n)).sort()) {
    try {
      const r = JSON.parse(await fsp.readFile(path.join(root, name), 'utf8')) as FlowRecord;
      if (typeof r.pid === 'number' && typeof r.state === 'string' && isAlive(r)) out.push(r);
    } catch {
      // Gone or half-replaced since the readdir: skip.
    }
  }
  return out;
}
