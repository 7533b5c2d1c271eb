// countd dump <keyspace>: every entry of a keyspace in rank order.

import type { Argv } from 'yargs';
import { Flags, commonOptions, daemonAddressOf, daemonOptions, dataDirOf, jsonOption, keyspacePositional, withOptions } from '../options.js';
import { Output, entryLine } from '../output.js';
import { openReadSource } from '../source.js';

export const command = 'dump <keyspace>';
export const describe = 'print every entry of a keyspace in rank order (key<TAB>count)';

export function builder(y: Argv): Argv {
  return withOptions(y.positional('keyspace', keyspacePositional), commonOptions, jsonOption, daemonOptions);
}

export async function handler(argv: Flags): Promise<void> {
  const source = await openReadSource(dataDirOf(argv), daemonAddressOf(argv));
  const out = new Output();
  try {
    for await (const e of source.dump(argv.keyspace as Buffer)) {
      await out.write(entryLine(e.key, e.count, argv.json === true));
      if (out.closed) break;
    }
    await out.flush();
  } finally {
    await source.close();
  }
}
