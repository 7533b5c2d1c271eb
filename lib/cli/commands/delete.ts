// countd delete <keyspace> [<key>]: delete a key, or the whole keyspace,
// through the running daemon's write port (the extended write protocol).
// Exit 0 once durable.

import type { Argv } from 'yargs';
import { CommonArgs, DaemonArgs, commonOptions, daemonOptions, keyPositional, keyspacePositional, withOptions } from '../options.js';
import { withWriteClient } from '../find-daemon.js';

export const command = 'delete <keyspace> [key]';
export const describe = 'delete a key, or without a key the whole keyspace, through the running daemon; exit 0 once durable';

export function builder(y: Argv): Argv {
  return withOptions(
    y.positional('keyspace', keyspacePositional).positional('key', { ...keyPositional, demandOption: false, describe: 'the key to delete (omit it to delete the keyspace)' }),
    commonOptions,
    daemonOptions,
  );
}

export async function handler(argv: CommonArgs & DaemonArgs & { keyspace: Buffer; key?: Buffer }): Promise<void> {
  await withWriteClient(argv, (client) =>
    argv.key === undefined ? client.deleteKeyspace(argv.keyspace) : client.deleteKey(argv.keyspace, argv.key),
  );
}
