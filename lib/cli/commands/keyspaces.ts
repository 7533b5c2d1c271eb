// countd keyspaces: every keyspace and its number of keys (a windowed one's:
// in its current period); with --json, each keyspace's settings too
// (operator, tie rule, and a windowed one's --window and --keep: from the
// daemon's read port or the database alike), and declared keyspaces that
// hold no key yet.

import type { Argv } from 'yargs';
import { CommonArgs, DaemonArgs, JsonArgs, commonOptions, daemonOptions, jsonOption, withOptions } from '../options.js';
import { type Field, formatLine } from '../output.js';
import { withReadSource } from '../source.js';

export const command = 'keyspaces';
export const describe = 'print every keyspace and its number of keys (keyspace<TAB>keys), in name order; --json adds op and ties (and window and keep for a windowed keyspace)';

export function builder(y: Argv): Argv {
  return withOptions(y, commonOptions, jsonOption, daemonOptions);
}

export async function handler(argv: CommonArgs & JsonArgs & DaemonArgs): Promise<void> {
  await withReadSource(argv, async (source, out) => {
    if (argv.json !== true) {
      for (const ks of await source.keyspaces()) await out.write(formatLine([{ name: 'keyspace', value: ks.name }, { name: 'keys', value: ks.size }], false));
      return;
    }
    for (const ks of await source.settings()) {
      const fields: Field[] = [{ name: 'keyspace', value: ks.name }, { name: 'keys', value: ks.size }];
      // Undeclared keyspaces sum and break ties by key: no settings to show.
      if (ks.op !== undefined) fields.push({ name: 'op', value: ks.op }, { name: 'ties', value: ks.ties });
      if (ks.window !== undefined) fields.push({ name: 'window', value: ks.window }, { name: 'keep', value: BigInt(ks.keep!) });
      await out.write(formatLine(fields, true));
    }
  });
}
