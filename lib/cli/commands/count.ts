// countd count <keyspace> [--min N]: the number of keys of a keyspace (with a
// count of at least N), in O(log n) from the rank fences' entry counts.

import type { Argv } from 'yargs';
import { INT64_MAX, INT64_MIN } from '../../protocol/fields.js';
import { bigintParser } from '../../util/flag-values.js';
import { CommonArgs, DaemonArgs, JsonArgs, KeyspaceArgs, commonOptions, daemonOptions, jsonOption, keyspacePositional, withOptions } from '../options.js';
import { type Field, formatLine } from '../output.js';
import { withReadSource } from '../source.js';

export const command = 'count <keyspace>';
export const describe = 'print the number of keys of a keyspace (0 if it does not exist); --min N: of those with a count of at least N';

export function builder(y: Argv): Argv {
  return withOptions(
    y.positional('keyspace', keyspacePositional).option('min', { type: 'string', describe: 'count only keys with a count of at least this (signed 64-bit)', coerce: bigintParser('--min', INT64_MIN, INT64_MAX) }),
    commonOptions,
    jsonOption,
    daemonOptions,
  );
}

export async function handler(argv: CommonArgs & JsonArgs & DaemonArgs & KeyspaceArgs & { min?: bigint }): Promise<void> {
  await withReadSource(argv, async (source, out) => {
    const keys = await source.count(argv.keyspace, argv.min);
    const fields: Field[] = argv.json === true ? [{ name: 'keyspace', value: argv.keyspace }, { name: 'keys', value: keys }] : [{ name: 'keys', value: keys }];
    if (argv.json === true && argv.min !== undefined) fields.push({ name: 'min', value: argv.min });
    await out.write(formatLine(fields, argv.json === true));
  });
}
