// countd get <keyspace> <key>: the count of one key.

import type { Argv } from 'yargs';
import { notFound } from '../errors.js';
import { KeyCommandArgs, keyCommandOptions } from '../options.js';
import { entryLine } from '../output.js';
import { withReadSource } from '../source.js';

export const command = 'get <keyspace> <key>';
export const describe = 'print the count of one key (key<TAB>count); exit 1 if the key does not exist';

export function builder(y: Argv): Argv {
  return keyCommandOptions(y);
}

export async function handler(argv: KeyCommandArgs): Promise<void> {
  const { keyspace, key } = argv;
  await withReadSource(argv, async (source, out) => {
    const count = await source.get(keyspace, key, argv.ago);
    if (count === undefined) throw notFound(keyspace, key);
    await out.write(entryLine(key, count, argv.json === true));
  });
}
