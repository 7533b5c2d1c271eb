// countd write <keyspace> <key> [increment]: one increment through the
// running daemon's write port. Exit 0 once it is durable (WIN).

import type { Argv } from 'yargs';
import {
  CommonArgs,
  DaemonArgs,
  KeyArgs,
  commonOptions,
  daemonOptions,
  incrementPositional,
  keyPositional,
  keyspacePositional,
  withOptions,
} from '../options.js';
import { withWriteClient } from '../find-daemon.js';

export const command = 'write <keyspace> <key> [increment]';
export const describe = 'add increment (default 1) to a key through the running daemon; exit 0 once durable';

export function builder(y: Argv): Argv {
  return withOptions(
    y.positional('keyspace', keyspacePositional).positional('key', keyPositional).positional('increment', incrementPositional),
    commonOptions,
    daemonOptions,
  );
}

export async function handler(argv: CommonArgs & DaemonArgs & KeyArgs & { increment: bigint }): Promise<void> {
  await withWriteClient(argv, (client) => client.increment(argv.keyspace, argv.key, argv.increment));
}
