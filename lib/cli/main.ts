// `countd <command>`: the admin CLI. bin/countd calls main(argv). Every
// error ends here: one line `countd: <message>` on stderr and exit code 2
// (usage) or 1 (anything else); --debug adds the stack (errors.ts).

import yargs from 'yargs';
import type { Argv, CommandModule as YargsCommand } from 'yargs';
import { commands } from './commands/index.js';
import { reportError, UsageError } from './errors.js';
import { checkFlags, commonOptions } from './options.js';
import { packageVersion } from './version.js';

/** Build the parser (exported for tests of the command line itself). */
export function buildParser(argv: string[]): Argv {
  let y = yargs(argv)
    .scriptName('countd')
    .usage('$0 <command> [options]\n\nA durable ranked-counter server and its admin tool.')
    .version(packageVersion())
    .help()
    .alias('h', 'help')
    .strict()
    .recommendCommands()
    .demandCommand(1, 'no command given')
    .exitProcess(false)
    .options(commonOptions) // global: accepted before and after the command
    .check(checkFlags, true)
    .fail((message: string | null, err: Error | undefined) => {
      throw err ?? new UsageError(message ?? 'invalid command line');
    })
    .epilogue('Data directory: --data-dir, else $COUNTD_DATA_DIR, else $XDG_DATA_HOME/countd (~/.local/share/countd).')
    .wrap(Math.min(100, process.stdout.columns || 100));
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
