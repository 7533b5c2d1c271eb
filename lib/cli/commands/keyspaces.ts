// countd keyspaces: every keyspace and its number of keys; with --json, each
// keyspace's settings too (operator and tie rule: from the daemon's read port
// or the database alike), and declared keyspaces that hold no key yet.

import type { Argv } from 'yargs';
import { CommonArgs, DaemonArgs, JsonArgs, commonOptions, daemonOptions, jsonOption, withOptions } from '../options.js';
import { type Field, formatLine } from '../output.js';
import { withReadSource } from '../source.js';

export const command = 'keyspaces';
export const describe = 'print every keyspace and its number of keys (keyspace<TAB>keys), in name order; --json adds op and ties';

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
      await out.write(formatLine(fields, true));
    }
  });
}
