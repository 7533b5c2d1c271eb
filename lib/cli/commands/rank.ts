// countd rank <keyspace> <key>: where one key stands (0-based rank, as a page offset).

import type { Argv } from 'yargs';
import { KeyCommandArgs, keyCommandOptions } from '../options.js';
import { entryLine } from '../output.js';
import { withReadSource } from '../source.js';
import { notFound } from '../errors.js';

export const command = 'rank <keyspace> <key>';
export const describe = 'print the rank (0-based: entries ranked above it) and count of one key: rank<TAB>key<TAB>count';

export function builder(y: Argv): Argv {
  return keyCommandOptions(y);
}

export async function handler(argv: KeyCommandArgs): Promise<void> {
  const { keyspace, key } = argv;
  await withReadSource(argv, async (source, out) => {
    const r = await source.rank(keyspace, key, argv.ago);
    if (r === undefined) throw notFound(keyspace, key);
    await out.write(entryLine(r.key, r.count, argv.json === true, r.rank));
  });
}
