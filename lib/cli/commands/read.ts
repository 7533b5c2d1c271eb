// countd read <keyspace> [--offset N] [--length N]: one page of the rank order.

import type { Argv } from 'yargs';
import {
  Flags,
  commonOptions,
  daemonAddressOf,
  daemonOptions,
  dataDirOf,
  jsonOption,
  keyspacePositional,
  offsetLengthOptions,
  withOptions,
} from '../options.js';
import { Output, entryLine } from '../output.js';
import { openReadSource } from '../source.js';

export const command = 'read <keyspace>';
export const describe = 'print one page of a keyspace in rank order: --length entries from --offset';

export function builder(y: Argv): Argv {
  return withOptions(y.positional('keyspace', keyspacePositional), commonOptions, offsetLengthOptions, jsonOption, daemonOptions);
}

export async function handler(argv: Flags): Promise<void> {
  const source = await openReadSource(dataDirOf(argv), daemonAddressOf(argv));
  const out = new Output();
  try {
    const entries = await source.page(argv.keyspace as Buffer, argv.offset as bigint, argv.length as bigint);
    for (const e of entries) await out.write(entryLine(e.key, e.count, argv.json === true));
    await out.flush();
  } finally {
    await source.close();
  }
}
