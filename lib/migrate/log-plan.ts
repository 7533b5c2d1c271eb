// Which commit logs of a legacy directory `countd migrate` replays, and how
// much of each (log-states.ts decides; this reads what is to be replayed and
// reports every log that is not plainly dirty).

import type { FieldSizes } from '../protocol/fields.js';
import { readLegacyLog, type LegacyLogContents } from './legacy-log.js';
import { LEGACY_LOCK_RE } from './legacy-format.js';
import { decideLogs, isAmbiguous, type LogDecision, type LogRule, type LogState } from './log-states.js';
import type { ProblemLog } from './problems.js';
import type { LegacyLayout } from './scan.js';

/** One log in the summary. */
export interface LogReport {
  log: string;
  state: LogState;
  locked: boolean;
  frames: number;
  /** Frames replayed from the start of the log (0: none). */
  replayed: number;
  rule?: LogRule;
  reason: string;
}

export interface LogPlan {
  decisions: LogDecision[];
  /** Contents of the logs to replay, in index order. */
  replay: LegacyLogContents[];
  reports: LogReport[];
  /** Logs of which nothing was imported because what they hold cannot be told (no rule given). */
  ambiguous: LogReport[];
}

/** Decide every log (before anything is written: a bad rule is refused here). */
export async function decideLayoutLogs(layout: LegacyLayout, rules: ReadonlyMap<number, LogRule>): Promise<LogDecision[]> {
  const locked = new Set(layout.locks.map((l) => Number(LEGACY_LOCK_RE.exec(l)![1])));
  const logs = [...layout.dirtyLogs, ...layout.cleanLogs].sort((a, b) => a.index - b.index);
  return decideLogs(logs, locked, rules);
}

/** Report every decision and read the frames to replay. */
export async function planLogs(decisions: LogDecision[], target: FieldSizes, problems: ProblemLog): Promise<LogPlan> {
  const plan: LogPlan = { decisions, replay: [], reports: [], ambiguous: [] };
  for (const d of decisions) {
    const report: LogReport = { log: d.log.name, state: d.state, locked: d.locked, frames: d.frames, replayed: d.replay, reason: d.reason };
    if (d.rule !== undefined) report.rule = d.rule;
    plan.reports.push(report);
    if (isAmbiguous(d)) {
      plan.ambiguous.push(report);
      problems.add({ kind: 'ambiguous-log', source: d.log.name, detail: d.reason });
    } else if (d.rule !== undefined) {
      problems.add({ kind: 'legacy-log-rule', source: d.log.name, detail: d.reason });
    } else if (d.state === 'writer-in-progress') {
      problems.add({ kind: 'writer-log', source: d.log.name, detail: d.reason });
    }
    if (d.replay > 0) {
      // A whole log is read as a whole file (a trailing partial frame is then reported).
      plan.replay.push(await readLegacyLog(d.log, target, problems, d.replay === d.frames ? undefined : d.replay));
    }
  }
  return plan;
}
