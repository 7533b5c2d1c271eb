// countd keyspaces: every keyspace and its number of keys (a windowed one's:
// in its current period); with --json, a declared keyspace's operator and
// window (--window, --keep) too (when read from the database directly), and
// declared keyspaces that hold no key yet.

import type { Argv } from 'yargs';
import { CommonArgs, DaemonArgs, JsonArgs, commonOptions, daemonOptions, jsonOption, withOptions } from '../options.js';
import { type Field, formatLine } from '../output.js';
import { withReadSource } from '../source.js';
import { OPERATOR_NAMES } from '../../protocol/write-ops.js';
import { windowLabel } from '../../protocol/window-settings.js';

export const command = 'keyspaces';
export const describe = 'print every keyspace and its number of keys (keyspace<TAB>keys), in name order';

export function builder(y: Argv): Argv {
  return withOptions(y, commonOptions, jsonOption, daemonOptions);
}

export async function handler(argv: CommonArgs & JsonArgs & DaemonArgs): Promise<void> {
  await withReadSource(argv, async (source, out) => {
    const json = argv.json === true;
    const declared = json ? await source.declared() : undefined;
    const operators = new Map((declared ?? []).map((d) => [d.name.toString('latin1'), d]));
    const rows = (await source.keyspaces()).map((k) => ({ name: k.name, size: k.size }));
    for (const d of declared ?? []) if (!rows.some((r) => r.name.equals(d.name))) rows.push({ name: d.name, size: 0n });
    rows.sort((a, b) => Buffer.compare(a.name, b.name));
    for (const ks of rows) {
      const d = operators.get(ks.name.toString('latin1'));
      const fields: Field[] = [{ name: 'keyspace', value: ks.name }, { name: 'keys', value: ks.size }];
      if (d !== undefined) fields.push({ name: 'op', value: OPERATOR_NAMES[d.operator]! });
      if (d?.window !== undefined) fields.push({ name: 'window', value: windowLabel(d.window)! }, { name: 'keep', value: BigInt(d.window.keep) });
      await out.write(formatLine(fields, json));
    }
  });
}
