// countd around <keyspace> <key> [--n N]: the neighbourhood of one key in rank order.

import type { Argv } from 'yargs';
import { aroundOptions, KeyCommandArgs, keyCommandOptions } from '../options.js';
import { entryLine } from '../output.js';
import { withReadSource } from '../source.js';
import { notFound } from '../errors.js';

export const command = 'around <keyspace> <key>';
export const describe = 'print up to --n entries around one key in rank order: rank<TAB>key<TAB>count';

export function builder(y: Argv): Argv {
  return keyCommandOptions(y, aroundOptions);
}

export async function handler(argv: KeyCommandArgs & { n: bigint }): Promise<void> {
  const { keyspace, key } = argv;
  await withReadSource(argv, async (source, out) => {
    const entries = await source.around(keyspace, key, argv.n, argv.ago);
    if (entries.length === 0) throw notFound(keyspace, key);
    for (const e of entries) await out.write(entryLine(e.key, e.count, argv.json === true, e.rank));
  });
}
