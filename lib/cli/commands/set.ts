// countd set <keyspace> <key> <count>: set a key's count through the running
// daemon's write port (the extended write protocol). Exit 0 once durable.

import type { Argv, PositionalOptions } from 'yargs';
import { INT64_MAX, INT64_MIN } from '../../protocol/fields.js';
import { bigintParser } from '../../util/flag-values.js';
import { CommonArgs, DaemonArgs, KeyArgs, commonOptions, daemonOptions, keyPositional, keyspacePositional, withOptions } from '../options.js';
import { withWriteClient } from '../find-daemon.js';

const countPositional: PositionalOptions = {
  type: 'string',
  describe: 'the new count, signed 64-bit',
  coerce: bigintParser('count', INT64_MIN, INT64_MAX),
};

export const command = 'set <keyspace> <key> <count>';
export const describe = "set a key's count (creating the key) through the running daemon; exit 0 once durable";

export function builder(y: Argv): Argv {
  return withOptions(
    y.positional('keyspace', keyspacePositional).positional('key', keyPositional).positional('count', countPositional),
    commonOptions,
    daemonOptions,
  );
}

export async function handler(argv: CommonArgs & DaemonArgs & KeyArgs & { count: bigint }): Promise<void> {
  await withWriteClient(argv, (client) => client.set(argv.keyspace, argv.key, argv.count));
}
