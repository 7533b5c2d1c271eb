// countd write <keyspace> <key> [increment]: one increment through the
// running daemon's write port. Exit 0 once it is durable (WIN).

import type { Argv } from 'yargs';
import { Client } from '../../client/client.js';
import {
  CommonArgs,
  DaemonArgs,
  KeyArgs,
  commonOptions,
  daemonAddressOf,
  daemonOptions,
  dataDirOf,
  incrementPositional,
  keyPositional,
  keyspacePositional,
  withOptions,
} from '../options.js';
import { requireDaemon } from '../find-daemon.js';

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
  const daemon = await requireDaemon(dataDirOf(argv), daemonAddressOf(argv), 'write');
  const client = new Client({ host: daemon.host, writePort: daemon.port, ...daemon.sizes });
  try {
    await client.increment(argv.keyspace, argv.key, argv.increment);
  } finally {
    await client.close();
  }
}
