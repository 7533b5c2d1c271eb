// countd keyspaces: every keyspace and its number of keys.

import type { Argv } from 'yargs';
import { CommonArgs, DaemonArgs, JsonArgs, commonOptions, daemonOptions, jsonOption, withOptions } from '../options.js';
import { formatLine } from '../output.js';
import { withReadSource } from '../source.js';

export const command = 'keyspaces';
export const describe = 'print every keyspace and its number of keys (keyspace<TAB>keys), in name order';

export function builder(y: Argv): Argv {
  return withOptions(y, commonOptions, jsonOption, daemonOptions);
}

export async function handler(argv: CommonArgs & JsonArgs & DaemonArgs): Promise<void> {
  await withReadSource(argv, async (source, out) => {
    for (const ks of await source.keyspaces()) {
      await out.write(formatLine([{ name: 'keyspace', value: ks.name }, { name: 'keys', value: ks.size }], argv.json === true));
    }
  });
}
