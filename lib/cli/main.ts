// `countd <command>`: the admin CLI. bin/countd calls main(argv). Every
// error ends here: one line `countd: <message>` on stderr and exit code 2
// (usage) or 1 (anything else); --debug adds the stack (errors.ts).

import type { Argv, CommandModule as YargsCommand } from 'yargs';
import { commands } from './commands/index.js';
import { reportError } from './errors.js';
import { commonOptions } from './options.js';
import { programParser } from './parser.js';

/** Build the parser (exported for tests of the command line itself). */
export function buildParser(argv: string[]): Argv {
  let y = programParser(argv, 'countd', '$0 <command> [options]\n\nA durable ranked-counter server and its admin tool.')
    .recommendCommands()
    .demandCommand(1, 'no command given')
    .options(commonOptions) // global: accepted before and after the command
    .epilogue('Data directory: --data-dir, else $COUNTD_DATA_DIR, else $XDG_DATA_HOME/countd (~/.local/share/countd).');
  for (const c of commands) y = y.command(c as unknown as YargsCommand);
  return y;
}

export async function main(argv: string[]): Promise<void> {
  const debug = argv.includes('--debug');
  try {
    await buildParser(argv).parseAsync();
  } catch (err) {
    process.exitCode = reportError(err, 'countd', debug);
  }
}
