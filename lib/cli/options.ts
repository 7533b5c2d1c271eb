// Every flag of the countd commands and role binaries is defined, parsed and
// checked here, and nowhere else: value parsers (yargs `coerce`) turn the
// text into numbers and bigints or throw a UsageError, and checkFlags()
// checks the combinations. Commands only pick the option groups they take.

import type { Argv, Options, PositionalOptions } from 'yargs';
import { defaultDataDir } from '../datadir/layout.js';
import { MAX_FIELD_SIZE } from '../protocol/fields.js';
import { INT64_MAX, INT64_MIN } from '../protocol/write-frame.js';
import { UINT64_MAX } from '../protocol/read-request.js';
import { MAX_LOG_INDEX } from '../commitlog/filenames.js';
import { unescapeName } from '../util/escape.js';
import { formatSize, parseSize } from '../util/size.js';
import { DEFAULT_STORE_MEMORY, MAX_STORE_MEMORY, MIN_STORE_MEMORY } from '../roles/memory-budget.js';
import { UsageError } from './errors.js';
import { checkFlowBounds } from '../roles/write/flow-bounds.js';
import { DEFAULT_LOG_SIZE } from '../commitlog/format.js';

export const DEFAULT_LISTEN = '127.0.0.1';
export const DEFAULT_WRITE_PORT = 48879;
export const DEFAULT_READ_PORT = 48880;

// ---- value parsers -------------------------------------------------------

function single(flag: string, v: unknown): string {
  if (Array.isArray(v)) throw new UsageError(`${flag} was given ${v.length} times`);
  return String(v);
}

/** An integer within [min, max] (safe integers only). */
export function intParser(flag: string, min: number, max: number): (v: unknown) => number {
  return (v) => {
    const s = single(flag, v);
    if (!/^-?\d+$/.test(s) || Number(s) < min || Number(s) > max) {
      throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(s)}`);
    }
    return Number(s);
  };
}

/** A size in bytes within [min, max]: bytes, or with a unit K, M, G, T (binary). */
export function sizeParser(flag: string, min: number, max: number): (v: unknown) => number {
  return (v) => {
    const s = single(flag, v);
    const bytes = parseSize(s);
    if (bytes === undefined || bytes < min || bytes > max) {
      throw new UsageError(`${flag} must be a size from ${formatSize(min)} to ${formatSize(max)} (e.g. 512MiB, 2GiB), got ${JSON.stringify(s)}`);
    }
    return bytes;
  };
}

/** A bigint within [min, max]: counts, offsets and lengths are exact 64-bit values. */
export function bigintParser(flag: string, min: bigint, max: bigint): (v: unknown) => bigint {
  return (v) => {
    const s = single(flag, v);
    if (!/^[-+]?\d+$/.test(s) || BigInt(s) < min || BigInt(s) > max) {
      throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(s)}`);
    }
    return BigInt(s);
  };
}

/** A keyspace or key argument, in the escaped form of escape.ts. */
export function nameParser(what: string): (v: unknown) => Buffer {
  return (v) => {
    const s = single(what, v);
    if (s === '') throw new UsageError(`${what} must not be empty`);
    try {
      return unescapeName(s, what);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
}

function nonEmpty(flag: string): (v: unknown) => string {
  return (v) => {
    const s = single(flag, v);
    if (s.trim() === '') throw new UsageError(`${flag} must not be empty`);
    return s;
  };
}

const port = (flag: string): ((v: unknown) => number) => intParser(flag, 0, 65535);

// ---- option groups -------------------------------------------------------

/** Flags every command takes. */
export const commonOptions: Record<string, Options> = {
  'data-dir': {
    type: 'string',
    describe: 'data directory (env COUNTD_DATA_DIR; default $XDG_DATA_HOME/countd or ~/.local/share/countd)',
    coerce: nonEmpty('--data-dir'),
    defaultDescription: 'COUNTD_DATA_DIR or ~/.local/share/countd',
  },
  debug: { type: 'boolean', describe: 'print stack traces of errors', default: false },
};

/** Flags of commands that talk to a running daemon: point at one other than the data directory's. */
export const daemonOptions: Record<string, Options> = {
  listen: { type: 'string', describe: 'host of the daemon (default: from daemon.json)', coerce: nonEmpty('--listen') },
  'write-port': { type: 'string', describe: 'write port of the daemon (default: from daemon.json)', coerce: port('--write-port') },
  'read-port': { type: 'string', describe: 'read port of the daemon (default: from daemon.json)', coerce: port('--read-port') },
};

export const jsonOption: Record<string, Options> = {
  json: { type: 'boolean', describe: 'one JSON object per line (counts as exact integers)', default: false },
};

export const logFormatOption: Record<string, Options> = {
  'log-format': { choices: ['text', 'json'], default: 'text', describe: 'log lines on stderr: "[role] message" or JSON' },
};

/** Field sizes of a new data directory; an existing one must have been created with the same. */
export const sizeOptions: Record<string, Options> = {
  'keyspace-size': {
    type: 'string',
    describe: 'keyspace field size KS of a new data directory (an existing one must match)',
    coerce: intParser('--keyspace-size', 1, MAX_FIELD_SIZE),
  },
  'key-size': {
    type: 'string',
    describe: 'key field size K of a new data directory (an existing one must match)',
    coerce: intParser('--key-size', 1, MAX_FIELD_SIZE),
  },
};

export const writerTuningOptions: Record<string, Options> = {
  'log-size': {
    type: 'string',
    describe: 'bytes of each commit log (rounded down to whole records by the pool)',
    coerce: intParser('--log-size', 4096, 2 ** 31 - 1),
  },
  'handover-ms': {
    type: 'string',
    describe: 'hand a partly filled commit log to the worker after this many ms (bounds read visibility)',
    coerce: intParser('--handover-ms', 1, 3_600_000),
  },
  'backlog-soft': {
    type: 'string',
    describe: 'flow control: past this many bytes of unapplied commit logs, acknowledgements slow down progressively (default 64MiB, at least 4 logs)',
    coerce: sizeParser('--backlog-soft', 1, Number.MAX_SAFE_INTEGER),
  },
  'backlog-hard': {
    type: 'string',
    describe: 'flow control: at this many bytes of unapplied commit logs, the writer stops reading until the worker catches up (default 128MiB or twice --backlog-soft; above it); the pool\'s disk is at most this plus 2 logs per writer',
    coerce: sizeParser('--backlog-hard', 1, Number.MAX_SAFE_INTEGER),
  },
};

export const serverTuningOptions: Record<string, Options> = {
  'max-connections': { type: 'string', describe: 'most client connections per port', coerce: intParser('--max-connections', 1, 1_000_000) },
  'idle-timeout': {
    type: 'string',
    describe: 'close a client connection idle for this many ms (0: never)',
    coerce: intParser('--idle-timeout', 0, 2 ** 31 - 1),
  },
};

/** `countd start`: how the store child yields the CPU to the writer. */
export const storeNiceOption: Record<string, Options> = {
  'store-nice': {
    type: 'string',
    default: '4',
    describe: 'nice value of the store child (worker + reader), 0-19: under CPU contention the writer\'s acknowledgements come first',
    coerce: intParser('--store-nice', 0, 19),
  },
};

/** `countd start` and countd-worker: the memory of the process that holds the database (lib/roles/memory-budget.ts derives its caches, batch size and V8 heap limit from it). */
export const storeMemoryOption: Record<string, Options> = {
  'store-memory': {
    type: 'string',
    default: formatSize(DEFAULT_STORE_MEMORY),
    describe: 'memory of the process that holds the database (worker + reader): its caches, the size of its batches and its V8 heap limit are derived from it (e.g. 512MiB, 2GiB)',
    coerce: sizeParser('--store-memory', MIN_STORE_MEMORY, MAX_STORE_MEMORY),
  },
};

export const pageLimitOption: Record<string, Options> = {
  'page-limit': {
    type: 'string',
    describe: 'largest page length a read request may ask for (above it: n = -2)',
    coerce: intParser('--page-limit', 1, 1_000_000),
  },
};

/** `countd start`: where the daemon listens. Port 0 picks a free port (recorded in daemon.json). */
export const startListenOptions: Record<string, Options> = {
  listen: { type: 'string', default: DEFAULT_LISTEN, describe: 'address both ports listen on', coerce: nonEmpty('--listen') },
  'write-port': { type: 'string', default: String(DEFAULT_WRITE_PORT), describe: 'write port (0: any free port)', coerce: port('--write-port') },
  'read-port': { type: 'string', default: String(DEFAULT_READ_PORT), describe: 'read port (0: any free port)', coerce: port('--read-port') },
  'metrics-port': { type: 'string', describe: 'serve Prometheus metrics over HTTP on this port (0: any free port)', coerce: port('--metrics-port') },
  'http-port': {
    type: 'string',
    describe: 'serve the console (/), its JSON API (/api/v1/) and Prometheus metrics (/metrics) over HTTP on this port (0: any free port); read-only',
    coerce: port('--http-port'),
  },
};

/** A role binary's own port (`countd-write --port`, `countd-read --port`). */
export function rolePortOption(defaultPort: number): Record<string, Options> {
  return {
    listen: { type: 'string', default: DEFAULT_LISTEN, describe: 'address to listen on', coerce: nonEmpty('--listen') },
    port: { type: 'string', default: String(defaultPort), describe: 'port to listen on (0: any free port)', coerce: port('--port') },
  };
}

export const offsetLengthOptions: Record<string, Options> = {
  offset: { type: 'string', default: '0', describe: 'ranked entries to skip', coerce: bigintParser('--offset', 0n, (1n << 63n) - 1n) },
  length: { type: 'string', default: '10', describe: 'most entries to print', coerce: bigintParser('--length', 0n, UINT64_MAX) },
};

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

/** The flags of the commands that name one key (get, rank, around): keyspace and key, --json, a daemon address. */
export function keyCommandOptions(y: Argv, ...extra: Record<string, Options>[]): Argv {
  return withOptions(y.positional('keyspace', keyspacePositional).positional('key', keyPositional), commonOptions, ...extra, jsonOption, daemonOptions);
}

// ---- combinations --------------------------------------------------------

/** Parsed flags as yargs hands them over (after the parsers above). */
export type Flags = Record<string, unknown>;

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
  return true;
}

/** The data directory: --data-dir, else the default (COUNTD_DATA_DIR, XDG, home). */
export function dataDirOf(argv: Flags): string {
  return (argv['data-dir'] as string | undefined) ?? defaultDataDir();
}

/** Explicit daemon address flags, for commands that talk to a daemon. */
export interface DaemonAddress {
  host?: string;
  writePort?: number;
  readPort?: number;
}

export function daemonAddressOf(argv: Flags): DaemonAddress {
  const out: DaemonAddress = {};
  if (typeof argv.listen === 'string') out.host = argv.listen;
  if (typeof argv['write-port'] === 'number') out.writePort = argv['write-port'];
  if (typeof argv['read-port'] === 'number') out.readPort = argv['read-port'];
  return out;
}
