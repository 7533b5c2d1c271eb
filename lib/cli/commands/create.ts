// countd create <keyspace> [--op sum|max|min|set] [--ties key|first]: declare
// a keyspace, how the values written to its keys combine and how equal counts
// rank (by key bytes, or by who reached the count first), through the running daemon's write
// port. It replaces whatever the name held; without --replace it refuses a
// name that holds keys (checked through the read port just before: a write
// racing it is the caller's to avoid; a declared keyspace without keys just
// takes the new operator).

import type { Argv } from 'yargs';
import { Client } from '../../client/client.js';
import { Operator, TiesRule, type OperatorName, type TiesName } from '../../protocol/write-ops.js';
import { UsageError } from '../../util/flag-values.js';
import { CommonArgs, DaemonArgs, KeyspaceArgs, commonOptions, daemonAddressOf, daemonOptions, dataDirOf, keyspacePositional, withOptions } from '../options.js';
import { requireDaemon, withWriteClient } from '../find-daemon.js';

export const command = 'create <keyspace>';
export const describe = 'create a keyspace with an operator (sum, max, min, set) through the running daemon; exit 0 once durable';

export function builder(y: Argv): Argv {
  return withOptions(
    y
      .positional('keyspace', keyspacePositional)
      .option('op', { type: 'string', choices: Object.keys(Operator), default: 'sum', describe: 'how values written to a key combine: sum adds, max/min keep the best, set keeps the last' })
      .option('ties', { type: 'string', choices: Object.keys(TiesRule), default: 'key', describe: 'equal counts rank by key bytes (key) or by who reached the count first, then key bytes (first)' })
      .option('replace', { type: 'boolean', default: false, describe: 'replace a keyspace that exists (its keys are deleted)' }),
    commonOptions,
    daemonOptions,
  );
}

export async function handler(argv: CommonArgs & DaemonArgs & KeyspaceArgs & { op: OperatorName; ties: TiesName; replace: boolean }): Promise<void> {
  await withWriteClient(argv, async (client) => {
    if (!argv.replace) {
      const reader = await requireDaemon(dataDirOf(argv), daemonAddressOf(argv), 'read');
      const check = new Client({ host: reader.host, readPort: reader.port, ...reader.sizes });
      try {
        const exists = (await check.keyspaces()).some((k) => k.name.equals(argv.keyspace));
        if (exists) throw new UsageError(`keyspace ${argv.keyspace.toString('utf8')} exists; --replace deletes its keys and creates it anew`);
      } finally {
        await check.close();
      }
    }
    await client.createKeyspace(argv.keyspace, { op: argv.op, ties: argv.ties });
  });
}
