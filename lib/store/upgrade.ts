// Upgrading a database written by an earlier countd, in place, when it is
// opened (docs/storage-format.md, "Upgrades"). Each format version has one
// step to the next; a step's record changes and the new `V` record are ONE
// atomic batch, so a crash leaves the database either before the step (it
// runs again at the next open) or after it, never half-way. A countd that
// predates a step refuses the upgraded database (COUNTD_DATA_DIR_MISMATCH)
// rather than misread it.

import type { Logger } from '../util/log.js';
import { VERSION_KEY } from './encoding.js';
import { STORE_VERSION, versionValue } from './schema.js';

/** A record change of a step (state.ts BatchOp's shape; not imported: state.ts runs the upgrade). */
type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

interface Step {
  /** The countd release that wrote the version this step starts from. */
  from: string;
  why: string;
  /** Record changes besides the new `V` record (read what they need first). */
  ops(): Promise<BatchOp[]>;
}

/** Step from version v to v + 1, by v. */
const STEPS: Record<number, Step> = {
  // 0.5.0: declared keyspaces (`S` records: an operator other than sum) and
  // commit-log OPS records (sets, deletes). Nothing of a version 1 database
  // changes; the version moves so that 0.4.0, which would sum into a max
  // keyspace, refuses the database instead.
  1: { from: '0.4.0', why: 'declared keyspaces and deletes', ops: async () => [] },
};

/** Whether this countd can upgrade a database of `version`. */
export function canUpgrade(version: unknown): version is number {
  return typeof version === 'number' && Number.isInteger(version) && version >= 1 && version < STORE_VERSION && STEPS[version] !== undefined;
}

/** Run the steps from `version` to STORE_VERSION, each one atomic batch written with `write`. */
export async function upgrade(version: number, write: (ops: BatchOp[]) => Promise<void>, location: string, logger: Logger): Promise<void> {
  for (let v = version; v < STORE_VERSION; v++) {
    const step = STEPS[v]!;
    const ops = await step.ops();
    ops.push({ type: 'put', key: VERSION_KEY, value: versionValue(v + 1) });
    await write(ops);
    logger.info('store format upgraded in place', { location, from: v, to: v + 1, writtenBy: step.from, for: step.why });
  }
}
