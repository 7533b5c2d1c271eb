// The commands of `countd`, one module each (command, describe, builder, handler).

import * as around from './around.js';
import * as commitlog from './commitlog.js';
import * as count from './count.js';
import * as create from './create.js';
import * as del from './delete.js';
import * as dump from './dump.js';
import * as get from './get.js';
import * as keyspaces from './keyspaces.js';
import * as migrate from './migrate.js';
import * as rank from './rank.js';
import * as set from './set.js';
import * as read from './read.js';
import * as start from './start.js';
import * as status from './status.js';
import * as write from './write.js';

export interface CommandModule {
  command: string | readonly string[];
  describe: string;
  builder: (...args: never[]) => unknown;
  handler: (argv: never) => void | Promise<void>;
}

export const commands: readonly CommandModule[] = [
  start,
  status,
  write,
  set,
  del,
  create,
  read,
  dump,
  get,
  rank,
  count,
  around,
  keyspaces,
  commitlog,
  migrate,
];
