// `npm run bench:migrate`: how fast `countd migrate` imports a legacy
// directory of the original countd.
//
// Generates a legacy directory of 1,000,000 keyspace-file records over 100
// keyspaces (10,000 keys each, counts descending as the original kept them)
// plus 4 full dirty logs (4,033 frames each, 2,097,040 bytes) whose frames hit
// those keyspaces, then times migrate() into a fresh data directory (the
// verification read-back included) and prints records/s. Target: >= 200,000
// records/s. A second run over the same directories (nothing to import) is
// timed too: it costs the fingerprints and the verification. A dry run is
// timed first: reading, fingerprinting and parsing without the Store, which
// separates the migration's own cost from Store.apply's.
//
// The import phase includes the verification of every keyspace imported by
// the run (each is read back as soon as its last write commits, while later
// ones are imported); the verify phase is what is left at the end. The CPU
// line (all threads) is steadier than the wall clock on a shared machine.
//
// Options (environment): COUNTD_BENCH_RECORDS (default 1,000,000),
// COUNTD_BENCH_KEYSPACES (default 100), COUNTD_BENCH_DIR (default os.tmpdir()).

import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { migrate } from '../lib/migrate/importer.js';
import { LEGACY_FRAME_SIZE, LEGACY_LOG_SIZE, KEYSPACE_RECORD_SIZE, MODE_DIRTY } from '../lib/migrate/legacy-format.js';
import { killAll, track } from './lib/cleanup.js';
import { formatBytes, formatNumber } from './lib/report.js';

const RECORDS = Number(process.env.COUNTD_BENCH_RECORDS ?? 1_000_000);
const KEYSPACES = Number(process.env.COUNTD_BENCH_KEYSPACES ?? 100);
const DIRTY_LOGS = 4;
const TARGET = 200_000;

function keyspaceName(i: number): string {
  return `bench-ks-${String(i).padStart(3, '0')}`;
}

async function generate(dir: string): Promise<{ bytes: number; frames: number }> {
  const perKeyspace = Math.ceil(RECORDS / KEYSPACES);
  let left = RECORDS;
  let bytes = 0;
  for (let k = 0; k < KEYSPACES; k++) {
    const n = Math.min(perKeyspace, left);
    left -= n;
    const buf = Buffer.alloc(n * KEYSPACE_RECORD_SIZE);
    for (let i = 0; i < n; i++) {
      const at = i * KEYSPACE_RECORD_SIZE;
      buf.writeBigInt64LE(BigInt(n - i) * 7n, at); // descending counts
      buf.write(`user:${k}:${i.toString(36)}`, at + 8, 'latin1');
    }
    await fsp.mkdir(path.join(dir, keyspaceName(k)));
    await fsp.writeFile(path.join(dir, keyspaceName(k), 'keyspace'), buf);
    bytes += buf.length;
  }
  const framesPerLog = LEGACY_LOG_SIZE / LEGACY_FRAME_SIZE;
  for (let l = 0; l < DIRTY_LOGS; l++) {
    const buf = Buffer.alloc(LEGACY_LOG_SIZE);
    for (let f = 0; f < framesPerLog; f++) {
      const at = f * LEGACY_FRAME_SIZE;
      const k = (f * 31 + l) % KEYSPACES;
      buf.writeBigInt64LE(1n + BigInt(f % 5), at);
      buf.write(keyspaceName(k), at + 8, 'latin1');
      buf.write(`user:${k}:${((f * 7919) % perKeyspace).toString(36)}`, at + 8 + 256, 'latin1');
    }
    const file = path.join(dir, String(l).padStart(10, '0'));
    await fsp.writeFile(file, buf);
    await fsp.chmod(file, MODE_DIRTY);
    bytes += buf.length;
  }
  return { bytes, frames: framesPerLog * DIRTY_LOGS };
}

async function main(): Promise<void> {
  const root = await fsp.mkdtemp(path.join(process.env.COUNTD_BENCH_DIR ?? os.tmpdir(), 'countd-bench-migrate-'));
  track({ what: 'migrate bench directory', dir: root });
  try {
    const legacy = path.join(root, 'legacy');
    await fsp.mkdir(legacy);
    process.stdout.write(`generating ${formatNumber(RECORDS)} records over ${KEYSPACES} keyspaces + ${DIRTY_LOGS} dirty logs in ${root} …\n`);
    const { bytes, frames } = await generate(legacy);
    const dataDir = path.join(root, 'data');

    const td = process.hrtime.bigint();
    const dry = await migrate({ legacyDir: legacy, dataDir, dryRun: true });
    const sd = Number(process.hrtime.bigint() - td) / 1e9;
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const phases = new Map<string, number>();
    const first = await migrate({
      legacyDir: legacy,
      dataDir,
      onProgress: (p) => {
        if (!phases.has(p.phase)) phases.set(p.phase, Number(process.hrtime.bigint() - t0) / 1e9);
      },
    });
    const s1 = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu1 = process.cpuUsage(c0);
    const at = (phase: string): number => phases.get(phase) ?? s1;
    const t1 = process.hrtime.bigint();
    const second = await migrate({ legacyDir: legacy, dataDir });
    const s2 = Number(process.hrtime.bigint() - t1) / 1e9;

    const rate = (RECORDS + frames) / s1;
    const lines = [
      `legacy directory: ${formatBytes(bytes)}, ${formatNumber(RECORDS)} records, ${formatNumber(frames)} log frames`,
      `first run:  ${s1.toFixed(2)} s, ${formatNumber(rate)} records/s (records + frames, verification included); ` +
        `${first.keyspaces.imported} keyspaces, ${formatNumber(first.keys)} keys, ${formatNumber(first.frames.replayed)} frames, verified ${first.verified}`,
      `  phases: open + fingerprint ${at('import').toFixed(2)} s, import (keyspaces verified as they complete) ${(at('verify') - at('import')).toFixed(2)} s, ` +
        `verify (the rest) ${(s1 - at('verify')).toFixed(2)} s`,
      `  CPU: ${(cpu1.user / 1e6).toFixed(2)} s user + ${(cpu1.system / 1e6).toFixed(2)} s system, all threads (LevelDB's included): ` +
        `on a shared machine a steadier figure than the wall clock`,
      `dry run:    ${sd.toFixed(2)} s, ${formatNumber((RECORDS + frames) / sd)} records/s (fingerprint + parse, no store: the migration's own cost; ${dry.keyspaces.imported} keyspaces)`,
      `second run: ${s2.toFixed(2)} s (nothing to import: ${second.nothingToDo}; verified ${second.verified})`,
      `target: >= ${formatNumber(TARGET)} records/s: ${rate >= TARGET ? 'met' : 'NOT met'}`,
      `machine: ${os.cpus()[0]?.model.trim() ?? 'unknown'}, ${os.availableParallelism()} cores, Node.js ${process.version}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    killAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:migrate failed: ${(err as Error).message}\n`);
  killAll();
  process.exitCode = 1;
});
