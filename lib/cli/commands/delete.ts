// countd delete <keyspace> [<key>]: delete a key, or the whole keyspace,
// through the running daemon's write port (the extended write protocol).
// Exit 0 once durable.

import type { Argv } from 'yargs';
import { Client } from '../../client/client.js';
import { CommonArgs, DaemonArgs, commonOptions, daemonAddressOf, daemonOptions, dataDirOf, keyPositional, keyspacePositional, withOptions } from '../options.js';
import { requireDaemon } from '../find-daemon.js';

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
  const daemon = await requireDaemon(dataDirOf(argv), daemonAddressOf(argv), 'write');
  const client = new Client({ host: daemon.host, writePort: daemon.port, ...daemon.sizes });
  try {
    if (argv.key === undefined) await client.deleteKeyspace(argv.keyspace);
    else await client.deleteKey(argv.keyspace, argv.key);
  } finally {
    await client.close();
  }
}
