// countd write <keyspace> <key> [increment]: one increment through the
// running daemon's write port. Exit 0 once it is durable (WIN). With
// --producer/--epoch/--seq it is an idempotent producer's write (write
// protocol version 2): repeating the same call applies nothing, says so on
// stderr and exits 0. With --visible it exits once the write is readable,
// printing the key's new rank and count as `countd rank` does (the writer
// reads them once the write is applied: FLAG_RESULT).

import type { Argv } from 'yargs';
import {
  CommonArgs,
  DaemonArgs,
  KeyArgs,
  ProducerWriteArgs,
  commonOptions,
  daemonOptions,
  incrementPositional,
  keyPositional,
  keyspacePositional,
  producerWriteOptions,
  withOptions,
} from '../options.js';
import { withWriteClient } from '../find-daemon.js';
import { entryLine } from '../output.js';
import type { WriteAck } from '../../client/client.js';

export const command = 'write <keyspace> <key> [increment]';
export const describe = 'add increment (default 1) to a key through the running daemon; exit 0 once durable (--visible: once readable)';

export function builder(y: Argv): Argv {
  return withOptions(
    y.positional('keyspace', keyspacePositional).positional('key', keyPositional).positional('increment', incrementPositional),
    commonOptions,
    daemonOptions,
    producerWriteOptions,
  );
}

export async function handler(argv: CommonArgs & DaemonArgs & KeyArgs & ProducerWriteArgs & { increment: bigint }): Promise<void> {
  const visible = argv.visible === true;
  if (argv.producer === undefined && !visible) {
    await withWriteClient(argv, (client) => client.increment(argv.keyspace, argv.key, argv.increment));
    return;
  }
  const producer = argv.producer === undefined ? undefined : { id: argv.producer, epoch: Number(argv.epoch ?? 0n), retries: 3 };
  await withWriteClient(
    argv,
    async (client) => {
      const options = { ...(argv.timeout !== undefined && { timeoutMs: argv.timeout }), ...(argv.seq !== undefined && { sequence: argv.seq }) };
      let ack: WriteAck;
      if (visible) {
        const done = await client.incrementResult(argv.keyspace, argv.key, argv.increment, options);
        if (done.rank !== undefined && done.count !== undefined) process.stdout.write(entryLine(argv.key, done.count, false, done.rank));
        ack = done;
      } else ack = await client.incrementAck(argv.keyspace, argv.key, argv.increment, options);
      if (ack.duplicate) {
        process.stderr.write(`countd: duplicate: producer ${argv.producer} epoch ${argv.epoch ?? 0n} sequence ${argv.seq} was made durable before; nothing applied\n`);
      }
    },
    { read: visible, ...(producer && { producer }) },
  );
}
