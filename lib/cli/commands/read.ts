// countd read <keyspace> [--offset N] [--length N] [--ago N]: one page of the rank order (of a period of a windowed keyspace).

import type { Argv } from 'yargs';
import {
  AgoArgs,
  CommonArgs,
  DaemonArgs,
  JsonArgs,
  KeyspaceArgs,
  agoOption,
  commonOptions,
  daemonOptions,
  jsonOption,
  keyspacePositional,
  offsetLengthOptions,
  withOptions,
} from '../options.js';
import { entryLine } from '../output.js';
import { withReadSource } from '../source.js';

export const command = 'read <keyspace>';
export const describe = 'print one page of a keyspace in rank order: --length entries from --offset';

export function builder(y: Argv): Argv {
  return withOptions(y.positional('keyspace', keyspacePositional), commonOptions, offsetLengthOptions, agoOption, jsonOption, daemonOptions);
}

export async function handler(argv: CommonArgs & JsonArgs & DaemonArgs & KeyspaceArgs & AgoArgs & { offset: bigint; length: bigint }): Promise<void> {
  await withReadSource(argv, async (source, out) => {
    const entries = await source.page(argv.keyspace, argv.offset, argv.length, argv.ago);
    for (const e of entries) await out.write(entryLine(e.key, e.count, argv.json === true));
  });
}
