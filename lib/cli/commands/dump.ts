// countd dump <keyspace> [--ago N]: every entry of a keyspace (of a period of a windowed one) in rank order.

import type { Argv } from 'yargs';
import { AgoArgs, CommonArgs, DaemonArgs, JsonArgs, KeyspaceArgs, agoOption, commonOptions, daemonOptions, jsonOption, keyspacePositional, withOptions } from '../options.js';
import { entryLine } from '../output.js';
import { withReadSource } from '../source.js';

export const command = 'dump <keyspace>';
export const describe = 'print every entry of a keyspace in rank order (key<TAB>count)';

export function builder(y: Argv): Argv {
  return withOptions(y.positional('keyspace', keyspacePositional), commonOptions, agoOption, jsonOption, daemonOptions);
}

export async function handler(argv: CommonArgs & JsonArgs & DaemonArgs & KeyspaceArgs & AgoArgs): Promise<void> {
  await withReadSource(argv, async (source, out) => {
    for await (const e of source.dump(argv.keyspace, argv.ago)) {
      await out.write(entryLine(e.key, e.count, argv.json === true));
      if (out.closed) break;
    }
  });
}
