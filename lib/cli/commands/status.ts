// countd status: is a daemon running (and on which ports), the state of the
// commit-log pool, how many keyspaces the database holds, and whether the
// daemon's worker applies, fails or is stalled (the read port's health op).

import type { Argv } from 'yargs';
import { PoolStatus, poolStatus } from '../../commitlog/pool.js';
import { logName } from '../../commitlog/filenames.js';
import { DaemonRecord, readLiveDaemonRecord } from '../../datadir/daemon-record.js';
import { openDataDir } from '../../datadir/meta.js';
import { FlowRecord, readFlowRecords } from '../../roles/write/flow-record.js';
import { formatSize } from '../../util/size.js';
import { isCountdError } from '../../errors.js';
import type { HealthReport } from '../../protocol/read-response.js';
import { CommonArgs, DaemonArgs, JsonArgs, commonOptions, daemonAddressOf, daemonOptions, dataDirOf, jsonOption, withOptions } from '../options.js';
import { Output } from '../output.js';
import { openReadSource } from '../source.js';
import { clusterStatus, formatClusterStatus, type ClusterStatus } from '../../cluster/status.js';
import { hostPortList } from '../../util/flag-values.js';

export const command = 'status';
export const describe = 'show whether a daemon runs (and its ports), commit logs clean/dirty/locked/quarantined, backlog, keyspaces, worker state';

const clusterOption = {
  nats: { type: 'string', describe: "show the cluster through these NATS servers (URL[,URL...]; default: the daemon's --nats)", coerce: hostPortList('--nats') },
} as const;

export function builder(y: Argv): Argv {
  return withOptions(y, commonOptions, jsonOption, daemonOptions, clusterOption);
}

export interface StatusReport {
  dataDir: string;
  keyspaceSize: number;
  keySize: number;
  daemon: ({ running: true } & DaemonRecord) | { running: false };
  commitLogs: PoolStatus;
  /** null when the database could not be asked (held by a process that serves no reads). */
  keyspaces: number | null;
  keyspacesNote?: string;
  /** The worker's health through the daemon's read port; null when no daemon answered. */
  worker: HealthReport | null;
  /** Flow control of each running writer (README "Operations: flow control"); seconds include the current stretch. */
  flow: FlowRecord[];
  /** Cluster mode (docs/cluster.md, "Operations"): nodes, partitions, owners, positions, lag; absent on a single node. */
  cluster?: ClusterStatus;
}

export async function handler(argv: CommonArgs & JsonArgs & DaemonArgs & { nats?: string[] }): Promise<void> {
  const dir = await openDataDir(dataDirOf(argv), { create: false });
  const record = await readLiveDaemonRecord(dir.paths);
  const commitLogs = await poolStatus({ dir: dir.paths.commitlog, sizes: dir.sizes });
  const flow = (await readFlowRecords(dir.paths.root)).map((r) => withCurrentStretch(r, Date.now()));
  let keyspaces: number | null = null;
  let keyspacesNote: string | undefined;
  let worker: HealthReport | null = null;
  try {
    const source = await openReadSource(dir.paths.root, daemonAddressOf(argv));
    try {
      keyspaces = (await source.keyspaces()).length;
      worker = (await source.health?.()) ?? null;
    } finally {
      await source.close();
    }
  } catch (err) {
    if (!isCountdError(err)) throw err;
    keyspacesNote = err.message;
  }
  const nats = argv.nats ?? record?.nats;
  const cluster = nats === undefined ? undefined : await clusterStatus(nats);
  const report: StatusReport = {
    dataDir: dir.paths.root,
    keyspaceSize: dir.sizes.keyspaceSize,
    keySize: dir.sizes.keySize,
    daemon: record ? { running: true, ...record } : { running: false },
    commitLogs,
    keyspaces,
    ...(keyspacesNote === undefined ? {} : { keyspacesNote }),
    worker,
    flow,
    ...(cluster && { cluster }),
  };
  const out = new Output();
  await out.write(argv.json === true ? JSON.stringify(report) + '\n' : formatStatus(report));
  await out.flush();
}

function formatWorker(h: HealthReport): string {
  if (h.state === 'applying' || h.state === 'none') return h.state === 'applying' ? 'applying' : 'none in the process serving reads';
  const since = new Date(h.since).toISOString();
  const what = h.state === 'stalled' ? 'STALLED (database disk full; applies resume once space is free)' : 'FAILING (applies fail and are retried)';
  return `${what} since ${since}, ${h.failures} failed attempt(s), ${h.code}: ${h.message}`;
}

/** The record's totals count up to its last change: add the stretch since. */
function withCurrentStretch(r: FlowRecord, now: number): FlowRecord {
  if (r.state === 'normal') return r;
  const extra = Math.max(0, (now - r.since) / 1000);
  const stretch = r.state === 'delayed' ? 'delayed' : 'stopped';
  const t = r[stretch];
  return { ...r, [stretch]: { count: t.count, seconds: t.seconds + extra } };
}

function formatFlow(f: FlowRecord): string {
  const state = f.state === 'normal' ? 'normal' : f.state === 'delayed' ? 'DELAYED (acknowledgements slowed)' : 'STOPPED (writes wait for the worker)';
  const stalls = (t: { count: number; seconds: number }): string => `${t.count} (${t.seconds.toFixed(1)} s)`;
  return (
    `${state} since ${new Date(f.since).toISOString()}; soft ${formatSize(f.soft)}, hard ${formatSize(f.hard)}; ` +
    `delayed ${stalls(f.delayed)}, stopped ${stalls(f.stopped)} (writer pid ${f.pid})`
  );
}

function formatStatus(r: StatusReport): string {
  const d = r.daemon;
  const daemon = d.running
    ? `running (pid ${d.pid}, since ${d.startedAt}): listen ${d.listen}, write port ${d.writePort}, read port ${d.readPort}` +
      (d.metricsPort === undefined ? '' : `, metrics port ${d.metricsPort}`) +
      (d.httpPort === undefined ? '' : `, console http://${d.listen}:${d.httpPort}/`)
    : 'not running';
  const c = r.commitLogs;
  const lines = [
    `data directory: ${r.dataDir} (keyspace size ${r.keyspaceSize}, key size ${r.keySize})`,
    `daemon:         ${daemon}`,
    `commit logs:    ${c.logs} (clean ${c.clean}, dirty ${c.dirty}, locked ${c.locked}, quarantined ${c.quarantined}${c.other ? `, OTHER MODE ${c.other}` : ''})`,
    `backlog:        ${c.backlogFrames} frames not yet applied (${formatSize(c.backlogBytes)} of dirty logs)`,
    ...r.flow.map((f) => `flow control:   ${formatFlow(f)}`),
    ...(c.quarantined === 0
      ? []
      : [
          `QUARANTINED:    ${c.quarantinedLogs.map(logName).join(', ')}: header cannot be verified; records salvaged. ` +
            'Inspect with `countd commitlog <index>`, then `countd commitlog <index> --release` (docs/commit-log-format.md, "Quarantine")',
        ]),
    `keyspaces:      ${r.keyspaces ?? `unknown (${r.keyspacesNote ?? 'database unavailable'})`}`,
  ];
  if (r.worker) lines.push(`worker:         ${formatWorker(r.worker)}`);
  return lines.join('\n') + '\n' + (r.cluster ? formatClusterStatus(r.cluster) : '');
}
