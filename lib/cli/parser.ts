// The yargs set-up every countd program shares (`countd` and the role
// binaries): version, help, strict flags, no process exit from yargs, the
// flag combinations of checkFlags, and every parse failure as a UsageError
// (exit 2, one line: errors.ts).

import yargs from 'yargs';
import type { Argv } from 'yargs';
import { UsageError } from '../util/flag-values.js';
import { checkFlags } from './options.js';
import { packageVersion } from '../util/version.js';

export function programParser(argv: string[], scriptName: string, usage: string): Argv {
  return yargs(argv)
    .scriptName(scriptName)
    .usage(usage)
    .version(packageVersion())
    .help()
    .alias('h', 'help')
    .strict()
    .exitProcess(false)
    .check(checkFlags, true)
    .fail((message: string | null, err: Error | undefined) => {
      throw err ?? new UsageError(message ?? 'invalid command line');
    })
    .wrap(Math.min(100, process.stdout.columns || 100));
}
