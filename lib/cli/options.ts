// Every flag of the admin commands is defined here, and nowhere else; the
// flags of the daemon (`countd start` and the role binaries) are its settings,
// defined in lib/daemon/settings.ts. Value parsers (lib/util/flag-values.ts,
// yargs `coerce`) turn the text into numbers and bigints or throw a
// UsageError, and checkFlags() checks the combinations for every program.
// Commands only pick the option groups they take.

import type { Argv, Options, PositionalOptions } from 'yargs';
import { defaultDataDir } from '../datadir/layout.js';
import { INT64_MAX, INT64_MIN, UINT64_MAX } from '../protocol/fields.js';
import { MAX_LOG_INDEX } from '../commitlog/filenames.js';
import { SETTINGS } from '../daemon/settings.js';
import { DEFAULT_LOG_SIZE } from '../commitlog/format.js';
import { checkFlowBounds } from '../roles/write/flow-bounds.js';
import { UsageError, bigintParser, intParser, nameParser, nonEmpty, port } from '../util/flag-values.js';
import { MAX_AGO } from '../protocol/read-request.js';
import { DEFAULT_KEEP, MAX_KEEP, parseWindow } from '../protocol/window-settings.js';

// ---- option groups -------------------------------------------------------

/** Flags every command takes: the data directory and --debug, defined with the daemon's settings. */
export const commonOptions: Record<string, Options> = {
  'data-dir': SETTINGS.dataDir.option,
  debug: SETTINGS.debug.option,
};

/** Flags of commands that talk to a running daemon: point at one other than the data directory's. */
export const daemonOptions: Record<string, Options> = {
  listen: { type: 'string', describe: 'host of the daemon (default: from daemon.json)', coerce: nonEmpty('--listen') },
  'write-port': { type: 'string', describe: 'write port of the daemon (default: from daemon.json)', coerce: port('--write-port') },
  'read-port': { type: 'string', describe: 'read port of the daemon (default: from daemon.json)', coerce: port('--read-port') },
};

/** `countd write`: an idempotent producer's write (docs/write-protocol-extensions.md, version 2) and read-your-writes. */
export const producerWriteOptions: Record<string, Options> = {
  producer: { type: 'string', describe: 'write as idempotent producer ID (1 to 2^64-1): a repeat of the same --producer/--epoch/--seq applies nothing (needs --seq)', coerce: bigintParser('--producer', 1n, UINT64_MAX) },
  epoch: { type: 'string', describe: "the producer's epoch (0 to 2^32-1; default 0): a higher one fences writes of lower ones", coerce: bigintParser('--epoch', 0n, 0xffff_ffffn) },
  seq: { type: 'string', describe: "the write's sequence number within the producer's epoch (0 to 2^64-1)", coerce: bigintParser('--seq', 0n, UINT64_MAX) },
  visible: { type: 'boolean', describe: 'exit once the write is readable (applied), not only durable, printing the key\'s new rank<TAB>key<TAB>count', default: false },
  timeout: { type: 'string', describe: 'with --visible: ms to wait for it to be readable (default 10000)', coerce: intParser('--timeout', 0, 3_600_000) },
};

/** producerWriteOptions. */
export interface ProducerWriteArgs {
  producer?: bigint;
  epoch?: bigint;
  seq?: bigint;
  visible?: boolean;
  timeout?: number;
}

export const jsonOption: Record<string, Options> = {
  json: { type: 'boolean', describe: 'one JSON object per line (counts as exact integers)', default: false },
};

/** Field sizes of a new data directory (countd migrate), defined with the daemon's settings. */
export const sizeOptions: Record<string, Options> = {
  'keyspace-size': SETTINGS.keyspaceSize.option,
  'key-size': SETTINGS.keySize.option,
};

export const offsetLengthOptions: Record<string, Options> = {
  offset: { type: 'string', default: '0', describe: 'ranked entries to skip', coerce: bigintParser('--offset', 0n, INT64_MAX) },
  length: { type: 'string', default: '10', describe: 'most entries to print', coerce: bigintParser('--length', 0n, UINT64_MAX) },
};

/** The period of a windowed keyspace a read is of (dump, read, get, rank, around). */
export const agoOption: Record<string, Options> = {
  ago: { type: 'string', default: '0', describe: 'periods before the current one, for a keyspace created with --window (0 = the current period)', coerce: intParser('--ago', 0, MAX_AGO) },
};

/** countd create's time window: --window and --keep (checked together by checkFlags and parseWindow). */
export const windowOptions: Record<string, Options> = {
  window: {
    type: 'string',
    describe: 'count into the current period (UTC, aligned): a duration (10s, 5m, 2h, 7d) or hour, day, week (from Monday), month',
    coerce: windowParser,
  },
  keep: { type: 'string', describe: `periods kept readable, the current one included (--ago 0 to N-1; default ${DEFAULT_KEEP}); needs --window`, coerce: intParser('--keep', 1, MAX_KEEP) },
};

/** --window's text, checked now (so a bad one fails before anything is sent); parsed with --keep by the command. */
function windowParser(v: unknown): string {
  const text = String(v);
  try {
    parseWindow(text, undefined);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return text;
}

export const aroundOptions: Record<string, Options> = {
  n: { type: 'string', default: '11', describe: 'most entries to print (the key near the middle)', coerce: bigintParser('--n', 1n, 1_000_000n) },
};

export const keyspacePositional: PositionalOptions = { type: 'string', describe: 'keyspace name (escapes: \\\\ \\t \\n \\r \\xHH)', coerce: nameParser('keyspace') };
export const keyPositional: PositionalOptions = { type: 'string', describe: 'key name (escapes: \\\\ \\t \\n \\r \\xHH)', coerce: nameParser('key') };
export const incrementPositional: PositionalOptions = {
  type: 'string',
  default: '1',
  describe: 'signed 64-bit amount to add',
  coerce: bigintParser('increment', INT64_MIN, INT64_MAX),
};
export const logIndexPositional: PositionalOptions = {
  type: 'string',
  describe: 'commit log index (e.g. 3 or 0000000003)',
  coerce: intParser('index', 0, MAX_LOG_INDEX),
};

/** Add option groups to a yargs builder. */
export function withOptions<T>(y: Argv<T>, ...groups: Record<string, Options>[]): Argv<T> {
  let out = y;
  for (const g of groups) out = out.options(g) as Argv<T>;
  return out;
}

/** The flags of the commands that name one key (get, rank, around): keyspace and key, --ago, --json, a daemon address. */
export function keyCommandOptions(y: Argv, ...extra: Record<string, Options>[]): Argv {
  return withOptions(y.positional('keyspace', keyspacePositional).positional('key', keyPositional), commonOptions, ...extra, agoOption, jsonOption, daemonOptions);
}

// ---- combinations --------------------------------------------------------

/** Parsed flags of any program as yargs hands them over (for checks that span programs). */
export type Flags = Record<string, unknown>;

// What a handler receives of each option group, typed by the group's parsers.

/** commonOptions. */
export interface CommonArgs {
  'data-dir'?: string;
  debug?: boolean;
}
/** jsonOption. */
export interface JsonArgs {
  json?: boolean;
}
/** daemonOptions. */
export interface DaemonArgs {
  listen?: string;
  'write-port'?: number;
  'read-port'?: number;
}
/** keyspacePositional (and keyPositional). */
export interface KeyspaceArgs {
  keyspace: Buffer;
}
export interface KeyArgs extends KeyspaceArgs {
  key: Buffer;
}
/** agoOption. */
export interface AgoArgs {
  ago: number;
}
/** What a command that names one key receives (keyCommandOptions). */
export type KeyCommandArgs = CommonArgs & JsonArgs & DaemonArgs & KeyArgs & AgoArgs;

/** Check flag combinations; throws UsageError. Registered once, for every command and role binary. */
export function checkFlags(argv: Flags): true {
  const ports: Array<[string, unknown]> = [
    ['--write-port', argv['write-port']],
    ['--read-port', argv['read-port']],
    ['--metrics-port', argv['metrics-port']],
    ['--http-port', argv['http-port']],
  ];
  const seen = new Map<number, string>();
  for (const [flag, value] of ports) {
    if (typeof value !== 'number' || value === 0) continue;
    const other = seen.get(value);
    if (other !== undefined) throw new UsageError(`${other} and ${flag} are both ${value}; give each its own port`);
    seen.set(value, flag);
  }
  if (argv['backlog-soft'] !== undefined || argv['backlog-hard'] !== undefined) {
    try {
      checkFlowBounds(argv['backlog-soft'] as number | undefined, argv['backlog-hard'] as number | undefined, (argv['log-size'] as number | undefined) ?? DEFAULT_LOG_SIZE);
    } catch (err) {
      throw new UsageError((err as Error).message.replace('backlog soft bound', '--backlog-soft').replace('backlog hard bound', '--backlog-hard'));
    }
  }
  if (argv.merge === true && argv.replace === true) throw new UsageError('--merge and --replace exclude each other');
  if (argv.keep !== undefined && argv.window === undefined) throw new UsageError('--keep needs --window: only a windowed keyspace keeps periods');
  if (argv.producer !== undefined && argv.seq === undefined) throw new UsageError('--producer needs --seq: the sequence number that makes a repeated write apply once');
  if (argv.producer === undefined && (argv.seq !== undefined || argv.epoch !== undefined)) throw new UsageError(`${argv.seq !== undefined ? '--seq' : '--epoch'} needs --producer`);
  if (argv.timeout !== undefined && argv.visible !== true) throw new UsageError('--timeout needs --visible');
  return true;
}

/** The data directory: --data-dir, else the default (COUNTD_DATA_DIR, XDG, home). */
export function dataDirOf(argv: CommonArgs): string {
  return argv['data-dir'] ?? defaultDataDir();
}

/** Explicit daemon address flags, for commands that talk to a daemon. */
export interface DaemonAddress {
  host?: string;
  writePort?: number;
  readPort?: number;
}

export function daemonAddressOf(argv: DaemonArgs): DaemonAddress {
  const out: DaemonAddress = {};
  if (typeof argv.listen === 'string') out.host = argv.listen;
  if (typeof argv['write-port'] === 'number') out.writePort = argv['write-port'];
  if (typeof argv['read-port'] === 'number') out.readPort = argv['read-port'];
  return out;
}
