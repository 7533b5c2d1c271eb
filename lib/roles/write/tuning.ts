// Settings of countd-write's commit path read from its environment, for
// A/B measurements (`npm run bench:sweep -- --env-b NAME=VALUE`) and for a
// file system whose O_DSYNC writes misbehave:
//
//   COUNTD_COMMIT_DURABILITY  dsync (default) | fdatasync: how an append
//                             becomes durable (lib/commitlog/writer.ts,
//                             docs/commit-log-format.md section 5).
//   COUNTD_INLINE_MAX         a batch of at most this many connections is
//                             committed on the event-loop thread (default
//                             in group-commit.ts; 0: never inline).
//   COUNTD_FLOW_POLL_MS       how often flow control scans the pool for its
//                             backlog (default FLOW_POLL_MS, 100; 10 to 10000).
//   COUNTD_REJOIN_US          most a commit waits for the connections the last
//                             one answered (rejoin.ts; default 200; 0: never).
//
// A value that is not understood is an error at start, never ignored.

import { DURABILITY_MODES, type Durability } from '../../commitlog/writer.js';
import { invalidArgument } from '../../errors.js';

export interface CommitTuning {
  durability?: Durability;
  inlineMax?: number;
  flowPollMs?: number;
  rejoinUs?: number;
}

export function commitTuningFromEnv(env: NodeJS.ProcessEnv = process.env): CommitTuning {
  const out: CommitTuning = {};
  const d = env.COUNTD_COMMIT_DURABILITY;
  if (d !== undefined && d !== '') {
    if (!(DURABILITY_MODES as readonly string[]).includes(d)) {
      throw invalidArgument(`COUNTD_COMMIT_DURABILITY must be one of ${DURABILITY_MODES.join(', ')}, got ${JSON.stringify(d)}`);
    }
    out.durability = d as Durability;
  }
  const m = env.COUNTD_INLINE_MAX;
  if (m !== undefined && m !== '') {
    const n = Number(m);
    if (!/^\d+$/.test(m) || !Number.isSafeInteger(n)) throw invalidArgument(`COUNTD_INLINE_MAX must be a whole number, got ${JSON.stringify(m)}`);
    out.inlineMax = n;
  }
  const p = env.COUNTD_FLOW_POLL_MS;
  if (p !== undefined && p !== '') {
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < 10 || n > 10_000) throw invalidArgument(`COUNTD_FLOW_POLL_MS must be a whole number of ms from 10 to 10000, got ${JSON.stringify(p)}`);
    out.flowPollMs = n;
  }
  const r = env.COUNTD_REJOIN_US;
  if (r !== undefined && r !== '') {
    const n = Number(r);
    if (!/^\d+$/.test(r) || n > 100_000) throw invalidArgument(`COUNTD_REJOIN_US must be a whole number of µs from 0 to 100000, got ${JSON.stringify(r)}`);
    out.rejoinUs = n;
  }
  return out;
}
