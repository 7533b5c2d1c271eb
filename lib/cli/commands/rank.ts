// countd rank <keyspace> <key> [--dense]: where one key stands (0-based rank,
// as a page offset; with --dense also its dense rank: distinct counts above it).

import type { Argv } from 'yargs';
import { KeyCommandArgs, keyCommandOptions } from '../options.js';
import { entryLine, formatLine } from '../output.js';
import { withReadSource } from '../source.js';
import { notFound } from '../errors.js';

export const command = 'rank <keyspace> <key>';
export const describe = 'print the rank (0-based: entries ranked above it) and count of one key: rank<TAB>key<TAB>count (--dense: rank<TAB>dense<TAB>key<TAB>count)';

export function builder(y: Argv): Argv {
  return keyCommandOptions(y, {
    dense: { type: 'boolean', default: false, describe: 'also print the dense rank (0-based: the number of distinct counts above the key\'s)' },
  });
}

export async function handler(argv: KeyCommandArgs & { dense: boolean }): Promise<void> {
  const { keyspace, key } = argv;
  await withReadSource(argv, async (source, out) => {
    if (argv.dense) {
      const d = await source.denseRank(keyspace, key);
      if (d === undefined) throw notFound(keyspace, key);
      const fields = [
        { name: 'rank', value: d.rank },
        { name: 'dense', value: d.dense },
        { name: 'key', value: d.key },
        { name: 'count', value: d.count },
      ];
      await out.write(formatLine(fields, argv.json === true));
      return;
    }
    const r = await source.rank(keyspace, key);
    if (r === undefined) throw notFound(keyspace, key);
    await out.write(entryLine(r.key, r.count, argv.json === true, r.rank));
  });
}
