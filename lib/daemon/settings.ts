// The daemon's settings, defined once. DaemonSettings is the typed object
// every part of the daemon receives; SETTINGS says, for each of its fields,
// which flag sets it in which program (`countd start`, countd-write,
// countd-worker, countd-read), how the flag's text is parsed and checked
// (lib/util/flag-values.ts) and what it is when no flag gives it. From this
// one table come the programs' yargs options (--help included: settingOptions),
// the typed object built once from the parsed command line (settingsOf), what
// `countd start` hands its children (the whole object, in their ChildSpec:
// supervisor.ts), and what each role is started with (roles.ts).
//
// Adding a daemon flag: a field in DaemonSettings and its entry in SETTINGS
// (TypeScript refuses one without the other), the code that uses it, and the
// docs. Combinations of flags are checked by lib/cli/options.ts's checkFlags,
// which every program registers.

import type { Options } from 'yargs';
import { defaultDataDir } from '../datadir/layout.js';
import { MAX_FIELD_SIZE } from '../protocol/fields.js';
import { DEFAULT_HOST, DEFAULT_READ_PORT, DEFAULT_WRITE_PORT } from '../protocol/ports.js';
import { DEFAULT_DAEMON_MEMORY, DEFAULT_STORE_MEMORY, MAX_DAEMON_MEMORY, MAX_STORE_MEMORY, MIN_DAEMON_MEMORY, MIN_STORE_MEMORY, storeMemoryOf } from '../roles/memory-budget.js';
import { hostPortList, intParser, nonEmpty, port, sizeParser } from '../util/flag-values.js';
import type { LogFormat } from '../util/log.js';
import { formatSize } from '../util/size.js';

/** The programs that run the daemon or one of its roles. */
export type Program = 'start' | 'write' | 'worker' | 'read';
export const PROGRAMS: readonly Program[] = ['start', 'write', 'worker', 'read'];

export interface DaemonSettings {
  /** The data directory. */
  dataDir: string;
  /** Stack traces of errors, debug log lines. */
  debug: boolean;
  logFormat: LogFormat;
  /** Field sizes of a data directory created by this run (an existing one must match). */
  keyspaceSize: number | undefined;
  keySize: number | undefined;
  /** The address the ports listen on. */
  listen: string;
  writePort: number;
  /** undefined: countd-worker without --read-port serves no reads. */
  readPort: number | undefined;
  /** Prometheus metrics over HTTP (`countd start` only). */
  metricsPort: number | undefined;
  /** The operator's console, its JSON API and /metrics over HTTP (`countd start` only: lib/http/). */
  httpPort: number | undefined;
  /** Bytes of each commit log. */
  logSize: number | undefined;
  /** Hand a partly filled commit log to the worker after this many ms. */
  handoverMs: number | undefined;
  /** Flow control (lib/roles/write/flow.ts): unapplied backlog bytes past which WINs slow down, and at which reading stops. */
  backlogSoft: number | undefined;
  backlogHard: number | undefined;
  /** Flow control's time bound: the hard bound in ms of applying at the measured drain rate (0: bytes only). */
  backlogMs: number | undefined;
  /** Largest page length a read request may ask for. */
  pageLimit: number | undefined;
  /** Most client connections per port. */
  maxConnections: number | undefined;
  /** Close a client connection idle this long (0: never). */
  idleTimeoutMs: number | undefined;
  /** Nice value of the store child of `countd start`. */
  storeNice: number;
  /** Memory of the whole daemon (`countd start`): the store child gets what the supervisor and the writer leave (memory-budget.ts). */
  memory: number | undefined;
  /**
   * Memory of the process that holds the database (memory-budget.ts); for
   * `countd start` derived from `memory` unless given; undefined: each part
   * keeps its own default.
   */
  storeMemory: number | undefined;
  /** Cluster mode (docs/cluster.md): the NATS servers to join; undefined: a single node. */
  nats: string[] | undefined;
  /** Cluster mode: replicas of the JetStream stream and buckets a node creates (1, 3 or 5). */
  natsReplicas: number;
  /** Idempotent producers (issue 16): most producers the writer tracks. */
  maxProducers: number | undefined;
  /** Idempotent producers: an idle producer is forgotten after this many ms (writer and database). */
  producerExpiryMs: number | undefined;
  /** Cluster mode: ms between two snapshots of an owned partition that changed (docs/cluster.md, "Snapshots"). */
  natsSnapshotMs: number;
  /** Cluster mode: purge the stream below the snapshots: 'auto' (on nats-server 2.10 and later), 'always', 'never'. */
  natsPurge: 'auto' | 'always' | 'never';
}

/** How one program takes a setting: under another flag, or with other option fields (describe, default). */
interface ProgramFlag {
  flag?: string;
  option?: Options;
}

interface Setting<K extends keyof DaemonSettings> {
  /** The flag, unless a program names it otherwise. */
  flag: string;
  option: Options;
  /** The programs that take the setting. */
  programs: Partial<Record<Program, true | ProgramFlag>>;
  /** The value when no flag gives one. */
  fallback: () => DaemonSettings[K];
}

const ALL: Record<Program, true> = { start: true, write: true, worker: true, read: true };
const servers = (worker: boolean): Partial<Record<Program, true>> => ({ start: true, write: true, read: true, ...(worker ? { worker: true } : {}) });

/** Every setting. The key order is the order of --help. */
export const SETTINGS: { [K in keyof DaemonSettings]: Setting<K> } = {
  dataDir: {
    flag: 'data-dir',
    option: {
      type: 'string',
      describe: 'data directory (env COUNTD_DATA_DIR; default $XDG_DATA_HOME/countd or ~/.local/share/countd)',
      coerce: nonEmpty('--data-dir'),
      defaultDescription: 'COUNTD_DATA_DIR or ~/.local/share/countd',
    },
    programs: ALL,
    fallback: defaultDataDir,
  },
  debug: { flag: 'debug', option: { type: 'boolean', describe: 'print stack traces of errors', default: false }, programs: ALL, fallback: () => false },
  listen: {
    flag: 'listen',
    option: { type: 'string', default: DEFAULT_HOST, describe: 'address to listen on', coerce: nonEmpty('--listen') },
    programs: {
      start: { option: { describe: 'address both ports listen on' } },
      write: true,
      read: true,
      worker: { option: { describe: 'address the read port listens on (with --read-port)' } },
    },
    fallback: () => DEFAULT_HOST,
  },
  writePort: {
    flag: 'write-port',
    option: { type: 'string', default: String(DEFAULT_WRITE_PORT), describe: 'write port (0: any free port)', coerce: port('--write-port') },
    programs: { start: true, write: { flag: 'port', option: { describe: 'port to listen on (0: any free port)', coerce: port('--port') } } },
    fallback: () => DEFAULT_WRITE_PORT,
  },
  readPort: {
    flag: 'read-port',
    option: { type: 'string', default: String(DEFAULT_READ_PORT), describe: 'read port (0: any free port)', coerce: port('--read-port') },
    programs: {
      start: true,
      read: { flag: 'port', option: { describe: 'port to listen on (0: any free port)', coerce: port('--port') } },
      worker: { option: { default: undefined, describe: 'also serve reads on this port (0: any free port)' } },
      write: { option: { default: undefined, describe: 'the read port of the countd-worker that applies this pool: enables idempotent producers and tokens (write protocol version 2)' } },
    },
    fallback: () => undefined,
  },
  metricsPort: {
    flag: 'metrics-port',
    option: { type: 'string', describe: 'serve Prometheus metrics over HTTP on this port (0: any free port)', coerce: port('--metrics-port') },
    programs: { start: true },
    fallback: () => undefined,
  },
  httpPort: {
    flag: 'http-port',
    option: {
      type: 'string',
      describe: 'serve the console (/), its JSON API (/api/v1/) and Prometheus metrics (/metrics) over HTTP on this port (0: any free port); read-only',
      coerce: port('--http-port'),
    },
    programs: { start: true },
    fallback: () => undefined,
  },
  logSize: {
    flag: 'log-size',
    option: { type: 'string', describe: 'bytes of each commit log (rounded down to whole records by the pool)', coerce: intParser('--log-size', 4096, 2 ** 31 - 1) },
    programs: { start: true, write: true },
    fallback: () => undefined,
  },
  handoverMs: {
    flag: 'handover-ms',
    option: {
      type: 'string',
      describe: 'hand a partly filled commit log to the worker after this many ms (bounds read visibility)',
      coerce: intParser('--handover-ms', 1, 3_600_000),
    },
    programs: { start: true, write: true },
    fallback: () => undefined,
  },
  backlogSoft: {
    flag: 'backlog-soft',
    option: {
      type: 'string',
      describe: 'flow control: past this many bytes of unapplied commit logs, acknowledgements slow down progressively (default 64MiB, at least 4 logs)',
      coerce: sizeParser('--backlog-soft', 1, Number.MAX_SAFE_INTEGER),
    },
    programs: { start: true, write: true },
    fallback: () => undefined,
  },
  backlogHard: {
    flag: 'backlog-hard',
    option: {
      type: 'string',
      describe:
        "flow control: at this many bytes of unapplied commit logs the writer stops reading until the worker catches up (default 128MiB or twice --backlog-soft; above it); the pool's disk is at most this plus 2 logs per writer",
      coerce: sizeParser('--backlog-hard', 1, Number.MAX_SAFE_INTEGER),
    },
    programs: { start: true, write: true },
    fallback: () => undefined,
  },
  backlogMs: {
    flag: 'backlog-ms',
    option: {
      type: 'string',
      describe:
        'flow control: the writer stops at this many ms of unapplied commit logs at the rate the worker drains them, and slows acknowledgements past half of it, within --backlog-soft/--backlog-hard (default 1000; 0: the byte bounds only)',
      coerce: intParser('--backlog-ms', 0, 3_600_000),
    },
    programs: { start: true, write: true },
    fallback: () => undefined,
  },
  pageLimit: {
    flag: 'page-limit',
    option: { type: 'string', describe: 'largest page length a read request may ask for (above it: n = -2)', coerce: intParser('--page-limit', 1, 1_000_000) },
    programs: { start: true, worker: true, read: true },
    fallback: () => undefined,
  },
  maxConnections: {
    flag: 'max-connections',
    option: { type: 'string', describe: 'most client connections per port', coerce: intParser('--max-connections', 1, 1_000_000) },
    programs: servers(true),
    fallback: () => undefined,
  },
  idleTimeoutMs: {
    flag: 'idle-timeout',
    option: { type: 'string', describe: 'close a client connection idle for this many ms (0: never)', coerce: intParser('--idle-timeout', 0, 2 ** 31 - 1) },
    programs: servers(true),
    fallback: () => undefined,
  },
  storeNice: {
    flag: 'store-nice',
    option: {
      type: 'string',
      default: '4',
      describe: "nice value of the store child (worker + reader), 0-19: under CPU contention the writer's acknowledgements come first",
      coerce: intParser('--store-nice', 0, 19),
    },
    programs: { start: true },
    fallback: () => 4,
  },
  memory: {
    flag: 'memory',
    option: {
      type: 'string',
      default: formatSize(DEFAULT_DAEMON_MEMORY),
      describe:
        'memory of the whole daemon (supervisor, writer child, store child): every cache, buffer, batch size and V8 heap limit is derived from it (e.g. 512MiB, 2GiB)',
      coerce: sizeParser('--memory', MIN_DAEMON_MEMORY, MAX_DAEMON_MEMORY),
    },
    programs: { start: true },
    fallback: () => undefined,
  },
  storeMemory: {
    flag: 'store-memory',
    option: {
      type: 'string',
      default: formatSize(DEFAULT_STORE_MEMORY),
      describe:
        'memory of the process that holds the database (worker + reader): its caches, the size of its batches and its V8 heap limit are derived from it (e.g. 512MiB, 2GiB)',
      coerce: sizeParser('--store-memory', MIN_STORE_MEMORY, MAX_STORE_MEMORY),
    },
    programs: {
      start: { option: { default: undefined, defaultDescription: '--memory less the supervisor, the writer and 15% (292MiB at 512MiB)', describe: "the store child's share of --memory, set apart (finer setting; --memory then does not bound the store child)" } },
      worker: true,
    },
    fallback: () => undefined,
  },
  nats: {
    flag: 'nats',
    option: { type: 'string', describe: 'join a countd cluster on these NATS JetStream servers (URL[,URL...]; docs/cluster.md)', coerce: hostPortList('--nats') },
    programs: { start: true },
    fallback: () => undefined,
  },
  natsReplicas: {
    flag: 'nats-replicas',
    option: { type: 'string', default: '3', describe: 'replicas of the cluster stream and buckets when a node creates them (1, 3 or 5)', coerce: intParser('--nats-replicas', 1, 5) },
    programs: { start: true },
    fallback: () => 3,
  },
  maxProducers: {
    flag: 'max-producers',
    option: { type: 'string', describe: 'idempotent producers tracked at most; a new one beyond it is refused (COUNTD_PRODUCER_LIMIT) until one expires (default 100000)', coerce: intParser('--max-producers', 1, 100_000_000) },
    programs: { start: true, write: true },
    fallback: () => undefined,
  },
  producerExpiryMs: {
    flag: 'producer-expiry',
    option: {
      type: 'string',
      describe: 'ms after which an idle idempotent producer is forgotten; a retry older than that may apply twice (default 86400000: one day)',
      coerce: intParser('--producer-expiry', 1, Number.MAX_SAFE_INTEGER),
    },
    programs: { start: true, write: true, worker: true },
    fallback: () => undefined,
  },
  natsSnapshotMs: {
    flag: 'nats-snapshot-ms',
    option: { type: 'string', default: '60000', describe: 'cluster mode: ms between snapshots of each owned partition to the Object Store (bounds a failover\'s replay)', coerce: intParser('--nats-snapshot-ms', 100, 86_400_000) },
    programs: { start: true },
    fallback: () => 60_000,
  },
  natsPurge: {
    flag: 'nats-purge',
    option: { choices: ['auto', 'always', 'never'], default: 'auto', describe: 'cluster mode: purge the stream below the snapshots (auto, the default: on nats-server 2.10 or later, whose filtered purges survive a crash of every server; docs/cluster.md, "Snapshots and purge")' },
    programs: { start: true },
    fallback: () => 'auto' as const,
  },
  logFormat: {
    flag: 'log-format',
    option: { choices: ['text', 'json'], default: 'text', describe: 'log lines on stderr: "[role] message" or JSON' },
    programs: ALL,
    fallback: () => 'text',
  },
  keyspaceSize: {
    flag: 'keyspace-size',
    option: { type: 'string', describe: 'keyspace field size KS of a new data directory (an existing one must match)', coerce: intParser('--keyspace-size', 1, MAX_FIELD_SIZE) },
    programs: ALL,
    fallback: () => undefined,
  },
  keySize: {
    flag: 'key-size',
    option: { type: 'string', describe: 'key field size K of a new data directory (an existing one must match)', coerce: intParser('--key-size', 1, MAX_FIELD_SIZE) },
    programs: ALL,
    fallback: () => undefined,
  },
};

const KEYS = Object.keys(SETTINGS) as Array<keyof DaemonSettings>;

/** The flag and yargs option of setting `key` in `program`, or undefined if the program does not take it. */
export function flagOf(key: keyof DaemonSettings, program: Program): { flag: string; option: Options } | undefined {
  const spec = SETTINGS[key] as Setting<typeof key>;
  const how = spec.programs[program];
  if (how === undefined) return undefined;
  if (how === true) return { flag: spec.flag, option: spec.option };
  const option: Record<string, unknown> = { ...spec.option, ...how.option };
  // An override to undefined removes the field (countd-worker's --read-port has no default).
  for (const [field, value] of Object.entries(how.option ?? {})) if (value === undefined) delete option[field];
  return { flag: how.flag ?? spec.flag, option: option as Options };
}

/** The yargs options of `program`: one per setting it takes. */
export function settingOptions(program: Program): Record<string, Options> {
  const out: Record<string, Options> = {};
  for (const key of KEYS) {
    const f = flagOf(key, program);
    if (f !== undefined) out[f.flag] = f.option;
  }
  return out;
}

/**
 * The typed settings of `program` from its parsed command line (yargs has
 * parsed and checked every value with the setting's option): each setting
 * its flag's value, or its fallback.
 */
export function settingsOf(program: Program, argv: Readonly<Record<string, unknown>>): DaemonSettings {
  const out: Partial<Record<keyof DaemonSettings, unknown>> = {};
  for (const key of KEYS) {
    const f = flagOf(key, program);
    const value = f === undefined ? undefined : argv[f.flag];
    out[key] = value === undefined ? SETTINGS[key].fallback() : value;
  }
  // `countd start`: the store child's share of the whole daemon's memory, unless set apart.
  if (out.storeMemory === undefined && typeof out.memory === 'number') out.storeMemory = storeMemoryOf(out.memory);
  return out as DaemonSettings;
}

/** The field sizes a new data directory is created with (only those given). */
export function creationSizes(s: DaemonSettings): { keyspaceSize?: number; keySize?: number } {
  return { ...(s.keyspaceSize === undefined ? {} : { keyspaceSize: s.keyspaceSize }), ...(s.keySize === undefined ? {} : { keySize: s.keySize }) };
}
