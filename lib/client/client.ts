// The countd client library: increments over the write port (docs/protocol.md
// section 1), pages and lookups over the read port (section 2 and
// docs/read-protocol-extensions.md). One connection per port, opened on the
// first call and reopened lazily for the next call after a loss. Calls made
// concurrently are pipelined on that connection.
//
// An increment whose connection is lost before its reply rejects with
// COUNTD_CONNECTION and is never retried: it may or may not have been
// applied, and only the caller can decide whether to send it again. Unless
// the client is an idempotent producer (`producer` option, version 2 of the
// extended write protocol): then every write carries (producer, epoch,
// sequence), and the client sends it again by itself until it is answered
// (producer-session.ts): applied exactly once.

import { CountdError, ErrorCodes, invalidArgument } from '../errors.js';
import { readLiveDaemonRecord } from '../datadir/daemon-record.js';
import { dataDirPaths } from '../datadir/layout.js';
import { readMeta } from '../datadir/meta.js';
import { DEFAULT_FIELD_SIZES, FieldSizes, INT64_MIN, checkFieldSizes, nameBytes } from '../protocol/fields.js';
import { encodeFrame } from '../protocol/write-frame.js';
import { OPERATOR_NAMES, Operator, ResultState, TIES_NAMES, TiesRule, WRITE_OPS_PRODUCERS, encodeHello, encodeOpFrame, type OperatorName, type TiesName, type WriteOpName } from '../protocol/write-ops.js';
import { toInt64 } from '../protocol/write-frame.js';
import { HealthReport, KeyspaceInfo, KeyspaceSettingsInfo, ReadEntry, ReadResponse } from '../protocol/read-response.js';
import { MAX_AGO, toUint64 } from '../protocol/read-request.js';
import { parseWindow, readWindow, windowLabel, type WindowSettings } from '../protocol/window-settings.js';
import { DEFAULT_HOST, DEFAULT_READ_PORT, DEFAULT_WRITE_PORT } from '../protocol/ports.js';
import { ReadConnection } from './read-connection.js';
import { WriteConnection, type WriteAck } from './write-connection.js';
import { type ProducerOptions, type ProducerSession } from './producer-session.js';
import { DEFAULT_VISIBLE_TIMEOUT_MS, checkProducerOptions, checkTimeout, checkWriteOptions, newSession, type ReadAfter, type WriteOptions, type WriteResult } from './write-options.js';

export type { WriteAck, ProducerOptions };

export type { WriteOptions, ReadAfter, WriteResult };

/** Entries per request when dump() and keyspaces() page through a whole list. */
export const DEFAULT_DUMP_PAGE = 1000;

export type Name = string | Uint8Array;

/** One ranked entry: the key (bytes) and its exact count. */
export type Entry = ReadEntry;
export type { KeyspaceInfo };

export interface ClientOptions {
  /** Server host. Default: the daemon's listen address from `dataDir`, else 127.0.0.1. */
  host?: string;
  /** Write port. Default: the daemon's (from `dataDir`), else 48879. */
  writePort?: number;
  /** Read port. Default: the daemon's (from `dataDir`), else 48880. */
  readPort?: number;
  /** Find the running daemon through `<dataDir>/daemon.json`, and the field sizes through its meta file. */
  dataDir?: string;
  /** KS: keyspace field size of the server. Default: the data directory's, else 256. */
  keyspaceSize?: number;
  /** K: key field size of the server. Default: the data directory's, else 256. */
  keySize?: number;
  /** Entries per request in dump() and keyspaces(). Default 1000 (the server's page limit is 10,000 by default). */
  pageSize?: number;
  /**
   * Write as an idempotent producer: every write is numbered and retried by
   * the client until answered, and applied exactly once (needs countd
   * 0.6.0's write protocol version 2).
   */
  producer?: ProducerOptions;
}

/** Where a rank or around answer starts: `rank` is the 0-based position of the first entry in rank order. */
export interface RankedEntry extends Entry {
  rank: bigint;
}

/** A key's rank (0-based position) and dense rank (0-based: the number of distinct counts above its count). */
export interface DenseRankedEntry extends RankedEntry {
  dense: bigint;
}

/**
 * A keyspace that exists or is declared: its number of keys and settings
 * (`op` undefined: undeclared, it sums); `window` ('10s', 'day', …) and
 * `keep` for a windowed keyspace (its size: its current period's).
 */
export interface KeyspaceSettings extends KeyspaceInfo {
  op: OperatorName | undefined;
  ties: TiesName;
  window?: string;
  keep?: number;
}

/** A keyspace's name, size and settings value (docs/storage-format.md settings-value) as KeyspaceSettings. */
export function keyspaceSettingsOf(name: Buffer, size: bigint, settings: Uint8Array): KeyspaceSettings {
  const out: KeyspaceSettings = { name, size, op: OPERATOR_NAMES[settings[0]!], ties: TIES_NAMES[settings[1]!] ?? 'key' };
  const w = readWindow(settings, 0);
  const label = w === null ? undefined : windowLabel(w);
  if (w !== null && label !== undefined) {
    out.window = label;
    out.keep = w.keep;
  }
  return out;
}

// The ok responses, by shape (read-response.ts decodes them; the op decides the shape).
type EntriesResponse = { entries: Entry[] };
type PositionedResponse = { first: bigint; entries: Entry[] };
type KeyspacesResponse = { keyspaces: KeyspaceInfo[] };

interface Resolved {
  host: string;
  writePort: number;
  readPort: number;
  sizes: FieldSizes;
}

/** Which period of a windowed keyspace a read is of: `ago` periods before the current one (default 0). */
export interface PeriodOption {
  ago?: number;
}

function agoOf(options: PeriodOption): number {
  if (options === null || typeof options !== 'object') throw invalidArgument('read options must be an object');
  const ago = options.ago ?? 0;
  if (!Number.isSafeInteger(ago) || ago < 0 || ago > MAX_AGO) throw invalidArgument(`ago must be an integer from 0 to ${MAX_AGO}, got ${String(options.ago)}`);
  return ago;
}

export class Client {
  readonly #options: ClientOptions;
  readonly #pageSize: number;
  #resolved: Resolved | undefined;
  #resolving: Promise<Resolved> | undefined;
  #write: WriteConnection | undefined;
  /** A version-2 connection for writes without a producer (visible, tokens). */
  #write2: Promise<WriteConnection> | undefined;
  #producer: ProducerSession | undefined;
  #read: ReadConnection | undefined;
  #closed = false;

  constructor(options: ClientOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidArgument('Client options must be an object');
    for (const port of ['writePort', 'readPort'] as const) {
      const v = options[port];
      if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > 65535)) {
        throw invalidArgument(`${port} must be an integer from 1 to 65535, got ${String(v)}`);
      }
    }
    if (options.host !== undefined && (typeof options.host !== 'string' || options.host === '')) {
      throw invalidArgument('host must be a non-empty string');
    }
    if (options.dataDir !== undefined && (typeof options.dataDir !== 'string' || options.dataDir === '')) {
      throw invalidArgument('dataDir must be a non-empty string');
    }
    const sizes = { ...DEFAULT_FIELD_SIZES, ...definedSizes(options) };
    checkFieldSizes(sizes);
    const pageSize = options.pageSize ?? DEFAULT_DUMP_PAGE;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw invalidArgument(`pageSize must be a positive integer, got ${String(pageSize)}`);
    this.#pageSize = pageSize;
    if (options.producer !== undefined) checkProducerOptions(options.producer);
    this.#options = { ...options };
    if (options.dataDir === undefined) {
      this.#resolved = {
        host: options.host ?? DEFAULT_HOST,
        writePort: options.writePort ?? DEFAULT_WRITE_PORT,
        readPort: options.readPort ?? DEFAULT_READ_PORT,
        sizes,
      };
    }
  }

  /** Create a client and resolve where the server is (reads `dataDir` now, so a missing daemon fails here). */
  static async connect(options: ClientOptions = {}): Promise<Client> {
    const client = new Client(options);
    await client.#resolve();
    return client;
  }

  /** The field sizes this client encodes with (after connect(), or after the first call when `dataDir` is used). */
  get sizes(): FieldSizes | undefined {
    return this.#resolved?.sizes;
  }

  /**
   * Add `by` (default 1; signed 64-bit) to the count of `key` in `keyspace`.
   * Resolves when the server acknowledged it durable (WIN). Rejects with
   * COUNTD_INVALID_ARGUMENT (nothing sent), COUNTD_REJECTED (BAD),
   * COUNTD_SERVER_ERROR (ERR: not applied) or COUNTD_CONNECTION (lost before
   * the reply: it may or may not have been applied; not retried).
   */
  async increment(keyspace: Name, key: Name, by: bigint | number = 1, options?: WriteOptions): Promise<void> {
    if (options !== undefined || this.#options.producer !== undefined) {
      await this.incrementAck(keyspace, key, by, options);
      return;
    }
    const r = this.#resolved ?? (await this.#resolve());
    if (this.#write?.extended === true && this.#write.usable) return this.#op('increment', by, keyspace, key);
    const frame = encodeFrame(by, keyspace, key, r.sizes); // validates first
    this.#checkOpen();
    if (this.#write === undefined || !this.#write.usable) {
      this.#write = new WriteConnection({ host: r.host, port: r.writePort });
    }
    return this.#write.send(frame);
  }

  /**
   * Set the count of `key` in `keyspace` to `count` (signed 64-bit),
   * creating the key if needed; ordered with this client's increments.
   * Resolves once durable. Needs the extended write protocol
   * (docs/write-protocol-extensions.md): the client's write connection
   * sends a hello first; rejects as increment() does, and with
   * COUNTD_REJECTED when the server does not speak it.
   */
  async set(keyspace: Name, key: Name, count: bigint | number): Promise<void> {
    if (this.#options.producer !== undefined) return void (await this.#write2Op('set', count, keyspace, key, {}));
    return this.#op('set', count, keyspace, key);
  }

  /** Delete `key` of `keyspace` (nothing happens if it does not exist). Resolves once durable; as set(). */
  async deleteKey(keyspace: Name, key: Name): Promise<void> {
    if (this.#options.producer !== undefined) return void (await this.#write2Op('deleteKey', 0, keyspace, key, {}));
    return this.#op('deleteKey', 0, keyspace, key);
  }

  /** Delete `keyspace` and all its keys (nothing happens if it does not exist). Resolves once durable; as set(). */
  async deleteKeyspace(keyspace: Name): Promise<void> {
    if (this.#options.producer !== undefined) return void (await this.#write2Op('deleteKeyspace', 0, keyspace, null, {}));
    return this.#op('deleteKeyspace', 0, keyspace, null);
  }

  /**
   * increment() answered with its token (version 2 of the extended write
   * protocol): pass `token` to a read's `after` to read this write.
   * `duplicate`: a producer's write that was made durable before (a retry of
   * it); nothing new was written. With `visible`, resolves once applied.
   * Rejects as increment(), and with COUNTD_FENCED, COUNTD_OUT_OF_SEQUENCE,
   * COUNTD_PRODUCER_LIMIT (producers) or COUNTD_TOKEN_TIMEOUT (visible).
   */
  async incrementAck(keyspace: Name, key: Name, by: bigint | number = 1, options: WriteOptions = {}): Promise<WriteAck> {
    return this.#write2Op('increment', by, keyspace, key, options);
  }

  /**
   * increment(), answered once applied with the key's new count and 0-based
   * rank (`undefined` when the key does not exist then): the writer reads
   * them for the reply (flag 0x02 of version 2; a countd before 0.7.0
   * answers it BAD: COUNTD_REJECTED). When the writer could not tell in
   * time, they are read through the read port after the token instead.
   * Rejects as incrementAck(), COUNTD_TOKEN_TIMEOUT after `timeoutMs`.
   */
  async incrementResult(keyspace: Name, key: Name, by: bigint | number = 1, options: Omit<WriteOptions, 'visible'> = {}): Promise<WriteResult> {
    const t0 = Date.now();
    const ack = await this.#write2Op('increment', by, keyspace, key, options, true);
    const r = ack.result;
    if (r !== undefined && (r.state === ResultState.found || r.state === ResultState.absent)) {
      const found = r.state === ResultState.found;
      return { token: ack.token, duplicate: ack.duplicate, count: found ? r.count : undefined, rank: found ? r.rank : undefined };
    }
    const left = Math.max(0, (options.timeoutMs ?? DEFAULT_VISIBLE_TIMEOUT_MS) - (Date.now() - t0));
    const entry = await this.rank(keyspace, key, { after: ack.token, timeoutMs: left });
    return { token: ack.token, duplicate: ack.duplicate, count: entry?.count, rank: entry?.rank };
  }

  /**
   * Resolves once every write whose token is at most `token` is applied
   * (readable), with the applied position; COUNTD_TOKEN_TIMEOUT after
   * `timeoutMs` (default 10,000).
   */
  async awaitToken(token: bigint, timeoutMs = DEFAULT_VISIBLE_TIMEOUT_MS): Promise<bigint> {
    const res = await this.#request({ op: 'await', token, timeoutMs });
    return (res as { applied: bigint }).applied;
  }

  /** The producer this client writes as (after its first write), or undefined. */
  get producer(): { id: bigint; epoch: number; sequence: bigint } | undefined {
    const p = this.#producer;
    return p === undefined ? undefined : { id: p.id, epoch: p.epoch, sequence: p.sequence };
  }

  /** A version-2 op: through the producer session (retried), or a version-2 connection without producer. */
  async #write2Op(op: WriteOpName, value: bigint | number, keyspace: Name, key: Name | null, options: WriteOptions, result = false): Promise<WriteAck> {
    const r = this.#resolved ?? (await this.#resolve());
    const visible = checkWriteOptions(options);
    this.#checkOpen();
    let ack: WriteAck;
    const producer = this.#options.producer;
    if (producer !== undefined) {
      this.#producer ??= newSession(producer, { host: r.host, port: r.writePort }, r.sizes);
      const id = this.#producer.id;
      const sequence = options.sequence === undefined ? undefined : toUint64(options.sequence, 'sequence');
      ack = await this.#producer.send((epoch, seq) => encodeOpFrame(op, value, keyspace, key, r.sizes, { producer: { producer: id, epoch, sequence: seq }, prompt: visible, result }), sequence);
    } else {
      if (options.sequence !== undefined) throw invalidArgument('sequence needs a producer (the producer client option)');
      const frame = encodeOpFrame(op, value, keyspace, key, r.sizes, { prompt: visible, result }); // validates first
      ack = await (await this.#v2Connection(r)).send2(frame);
    }
    if (visible) await this.awaitToken(ack.token, options.timeoutMs ?? DEFAULT_VISIBLE_TIMEOUT_MS);
    return ack;
  }

  /** The version-2 connection for writes without a producer, opened (hello answered) if needed. */
  async #v2Connection(r: Resolved): Promise<WriteConnection> {
    const current = this.#write2 && (await this.#write2.catch(() => undefined));
    if (current !== undefined && current.usable) return current;
    this.#write2 = (async () => {
      const conn = new WriteConnection({ host: r.host, port: r.writePort });
      await conn.hello(encodeHello(r.sizes, WRITE_OPS_PRODUCERS));
      if (conn.version < WRITE_OPS_PRODUCERS) {
        void conn.close();
        throw new CountdError(ErrorCodes.REJECTED, `the writer speaks version ${conn.version} of the extended write protocol: tokens and visible writes need version 2 (countd 0.6.0 with a read port; not in cluster mode)`);
      }
      return conn;
    })();
    return this.#write2;
  }

  /**
   * Create `keyspace` with an operator (default 'sum'): 'max' and 'min' keep
   * the best value written to a key, 'set' the last; 'sum' adds, as an
   * undeclared keyspace does. It REPLACES whatever the name held (its keys
   * go, as with deleteKeyspace), in order with this client's other writes.
   * `window` ('10s', '5m', '2h', '7d', 'hour', 'day', 'week', 'month')
   * makes it count into the current period (UTC), keeping the last `keep`
   * periods readable (default 2; reads take `ago`). Resolves once durable;
   * rejects as set().
   */
  async createKeyspace(keyspace: Name, options: { op?: OperatorName; ties?: TiesName; window?: string; keep?: number } = {}): Promise<void> {
    const op = options.op ?? 'sum';
    if (!Object.hasOwn(Operator, op)) throw invalidArgument(`op must be one of ${Object.keys(Operator).join(', ')}, got ${String(op)}`);
    const ties = options.ties ?? 'key';
    if (!Object.hasOwn(TiesRule, ties)) throw invalidArgument(`ties must be one of ${Object.keys(TiesRule).join(', ')}, got ${String(ties)}`);
    if (options.keep !== undefined && options.window === undefined) throw invalidArgument('keep needs a window: only a windowed keyspace keeps periods');
    if (options.window !== undefined && typeof options.window !== 'string') throw invalidArgument(`window must be a string such as '10s' or 'day', got ${String(options.window)}`);
    const window = options.window === undefined ? undefined : parseWindow(options.window, options.keep);
    // Settings bytes 1 … 15 in the key field (write-protocol-extensions.md): the tie rule here, the window added by encodeOpFrame; none for today's rules.
    const settings = TiesRule[ties] === TiesRule.key ? null : Buffer.from([TiesRule[ties]]);
    return this.#op('createKeyspace', Operator[op], keyspace, settings, window);
  }

  /** Send an op frame on an extended write connection (opened with a hello if needed). */
  async #op(op: WriteOpName, value: bigint | number, keyspace: Name, key: Name | null, window?: WindowSettings): Promise<void> {
    const r = this.#resolved ?? (await this.#resolve());
    const frame = encodeOpFrame(op, value, keyspace, key, r.sizes, { window }); // validates first
    this.#checkOpen();
    let hello: Promise<void> | undefined;
    if (this.#write === undefined || !this.#write.usable || !this.#write.extended) {
      // A plain connection's pending increments are still answered: close() lets them finish.
      void this.#write?.close();
      this.#write = new WriteConnection({ host: r.host, port: r.writePort });
      hello = this.#write.hello(encodeHello(r.sizes, 1));
      hello.catch(() => {});
    }
    const sent = this.#write.send(frame);
    if (hello === undefined) return sent;
    try {
      return await sent;
    } catch (err) {
      await hello; // a hello answered BAD explains the failure better than the closed connection
      throw err;
    }
  }

  /**
   * Up to `length` entries of `keyspace` in rank order, skipping the first
   * `offset`. `ago`: for a windowed keyspace, the period `ago` periods
   * before the current one (0, the default: the current one); a period not
   * kept rejects with COUNTD_INVALID_ARGUMENT. So for dump, get, rank, around.
   */
  async page(keyspace: Name, offset: bigint | number, length: bigint | number, options: PeriodOption = {}): Promise<Entry[]> {
    const res = await this.#request({ op: 'page', keyspace, offset, length, ago: agoOf(options) });
    return (res as EntriesResponse).entries;
  }

  /**
   * Every entry of `keyspace` in rank order, fetched a page at a time. Not a
   * snapshot: increments applied while it runs may move keys across pages.
   */
  async *dump(keyspace: Name, options: { pageSize?: number } & PeriodOption = {}): AsyncGenerator<Entry, void, undefined> {
    const pageSize = options.pageSize ?? this.#pageSize;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw invalidArgument(`pageSize must be a positive integer, got ${String(pageSize)}`);
    const ago = agoOf(options);
    let offset = 0n;
    for (;;) {
      const entries = await this.page(keyspace, offset, pageSize, { ago });
      yield* entries;
      if (entries.length < pageSize) return;
      offset += BigInt(entries.length);
    }
  }

  /**
   * The count of `key`, or undefined when the keyspace has no such key.
   * `ago`: a period of a windowed keyspace. `after`: a write's token; the
   * answer then includes that write (and waits for it up to `timeoutMs`:
   * COUNTD_TOKEN_TIMEOUT).
   */
  async get(keyspace: Name, key: Name, options: ReadAfter & PeriodOption = {}): Promise<bigint | undefined> {
    const res = (await this.#after(options, { op: 'get', keyspace, key, ago: agoOf(options) })) as EntriesResponse;
    return res.entries[0]?.count;
  }

  /** The 0-based rank and count of `key`, or undefined when the keyspace has no such key; `ago` and `after` as get(). */
  async rank(keyspace: Name, key: Name, options: ReadAfter & PeriodOption = {}): Promise<RankedEntry | undefined> {
    const res = (await this.#after(options, { op: 'rank', keyspace, key, ago: agoOf(options) })) as PositionedResponse;
    const entry = res.entries[0];
    return entry === undefined ? undefined : { rank: res.first, key: entry.key, count: entry.count };
  }

  /**
   * Up to `n` entries around `key` in rank order (the key near the middle),
   * each with its 0-based rank; empty when the keyspace has no such key.
   */
  async around(keyspace: Name, key: Name, n: bigint | number = 11, options: PeriodOption = {}): Promise<RankedEntry[]> {
    const res = (await this.#request({ op: 'around', keyspace, key, length: n, ago: agoOf(options) })) as PositionedResponse;
    return res.entries.map((e, i) => ({ rank: res.first + BigInt(i), key: e.key, count: e.count }));
  }

  /** The rank, dense rank and count of `key` from one snapshot, or undefined when the keyspace has no such key. Needs a countd of 0.6.0 or later. */
  async denseRank(keyspace: Name, key: Name, options: PeriodOption = {}): Promise<DenseRankedEntry | undefined> {
    const res = (await this.#request({ op: 'dense', keyspace, key, ago: agoOf(options) })) as { rank: bigint; dense: bigint; entries: Entry[] };
    const entry = res.entries[0];
    return entry === undefined ? undefined : { rank: res.rank, dense: res.dense, key: entry.key, count: entry.count };
  }

  /** The number of keys of `keyspace` (0 if it does not exist), or of those with a count of at least `min`. Needs a countd of 0.6.0 or later. */
  async count(keyspace: Name, options: { min?: bigint | number } & PeriodOption = {}): Promise<bigint> {
    const ago = agoOf(options);
    const min = options.min === undefined ? INT64_MIN : toInt64(options.min, 'min');
    const res = (await this.#request({ op: 'count', keyspace, min, ago })) as { keys: bigint };
    return res.keys;
  }

  /**
   * Every keyspace that exists or is declared (declared ones may hold no
   * key), with its number of keys and settings, in name order. Needs a
   * countd of 0.6.0 or later.
   */
  async keyspaceSettings(): Promise<KeyspaceSettings[]> {
    const all: KeyspaceSettings[] = [];
    let offset = 0n;
    for (;;) {
      const res = (await this.#request({ op: 'settings', offset, length: this.#pageSize })) as { keyspaces: KeyspaceSettingsInfo[] };
      for (const k of res.keyspaces) all.push(keyspaceSettingsOf(k.name, k.size, k.settings));
      if (res.keyspaces.length < this.#pageSize) return all;
      offset += BigInt(res.keyspaces.length);
    }
  }

  /** Every keyspace with its number of keys, in name order. */
  async keyspaces(): Promise<KeyspaceInfo[]> {
    const all: KeyspaceInfo[] = [];
    let offset = 0n;
    for (;;) {
      const res = (await this.#request({ op: 'keyspaces', offset, length: this.#pageSize })) as KeyspacesResponse;
      all.push(...res.keyspaces);
      if (res.keyspaces.length < this.#pageSize) return all;
      offset += BigInt(res.keyspaces.length);
    }
  }

  /**
   * The health of the worker behind the read port: applying, failing (applies
   * fail and are retried), stalled (its disk is full), or none (the port is
   * served by a process without a worker, e.g. countd-read).
   */
  async health(): Promise<HealthReport> {
    const res = (await this.#request({ op: 'health' })) as { health: HealthReport };
    return res.health;
  }

  /** Wait for calls in flight, then close both connections. Later calls reject with COUNTD_CLOSED. */
  async close(): Promise<void> {
    this.#closed = true;
    const w = this.#write;
    const r = this.#read;
    const w2 = this.#write2;
    const p = this.#producer;
    this.#write = undefined;
    this.#read = undefined;
    this.#write2 = undefined;
    await Promise.all([w?.close(), r?.close(), p?.close(), w2?.then((c) => c.close(), () => {})]);
  }

  /** `req`, pipelined behind an await of `options.after` when given (answered in order: req sees the write). */
  async #after(options: ReadAfter, req: Parameters<ReadConnection['request']>[0]): Promise<ReadResponse> {
    if (options === null || typeof options !== 'object') throw invalidArgument('read options must be an object');
    if (options.after === undefined) return this.#request(req);
    const waited = this.awaitToken(toUint64(options.after, 'after'), checkTimeout(options.timeoutMs));
    const answer = this.#request(req);
    answer.catch(() => {});
    await waited;
    return answer;
  }

  async #request(req: Parameters<ReadConnection['request']>[0]): Promise<ReadResponse> {
    const r = this.#resolved ?? (await this.#resolve());
    if ('keyspace' in req && req.keyspace !== undefined) nameBytes(req.keyspace, 'keyspace', r.sizes.keyspaceSize);
    if ('offset' in req) toUint64(req.offset, 'offset');
    if ('length' in req) toUint64(req.length, req.op === 'around' ? 'n' : 'length');
    this.#checkOpen();
    if (this.#read === undefined || !this.#read.usable) {
      this.#read = new ReadConnection({ host: r.host, port: r.readPort }, r.sizes);
    }
    return this.#read.request(req);
  }

  #checkOpen(): void {
    if (this.#closed) throw new CountdError(ErrorCodes.CLOSED, 'the client is closed');
  }

  /** Find the daemon and the field sizes through the data directory (once; retried after a failure). */
  #resolve(): Promise<Resolved> {
    if (this.#resolved) return Promise.resolve(this.#resolved);
    this.#resolving ??= resolveFromDataDir(this.#options).then(
      (r) => {
        this.#resolved = r;
        return r;
      },
      (err: unknown) => {
        this.#resolving = undefined;
        throw err;
      },
    );
    return this.#resolving;
  }
}

async function resolveFromDataDir(options: ClientOptions): Promise<Resolved> {
  const paths = dataDirPaths(options.dataDir!);
  const meta = await readMeta(paths);
  if (meta === undefined) {
    throw new CountdError(ErrorCodes.NO_DATA_DIR, `${paths.root} is not a countd data directory (no COUNTD file)`);
  }
  const wanted = definedSizes(options);
  for (const field of ['keyspaceSize', 'keySize'] as const) {
    if (wanted[field] !== undefined && wanted[field] !== meta[field]) {
      throw new CountdError(
        ErrorCodes.DATA_DIR_MISMATCH,
        `data directory ${paths.root} was created with ${field} ${meta[field]}, not ${wanted[field]}`,
      );
    }
  }
  const sizes = { keyspaceSize: meta.keyspaceSize, keySize: meta.keySize };
  const needDaemon = options.writePort === undefined || options.readPort === undefined || options.host === undefined;
  const record = needDaemon ? await readLiveDaemonRecord(paths) : undefined;
  if (needDaemon && record === undefined && (options.writePort === undefined || options.readPort === undefined)) {
    throw new CountdError(ErrorCodes.NOT_RUNNING, `no countd daemon is running on ${paths.root} (start one with: countd start)`);
  }
  return {
    host: options.host ?? connectableHost(record?.listen ?? DEFAULT_HOST),
    writePort: options.writePort ?? record!.writePort,
    readPort: options.readPort ?? record!.readPort,
    sizes,
  };
}

/** A wildcard listen address is not an address to connect to: use loopback of the same family. */
export function connectableHost(listen: string): string {
  if (listen === '0.0.0.0' || listen === '') return DEFAULT_HOST;
  if (listen === '::' || listen === '[::]') return '::1';
  return listen.replace(/^\[(.*)\]$/, '$1');
}

function definedSizes(options: ClientOptions): Partial<FieldSizes> {
  const out: { keyspaceSize?: number; keySize?: number } = {};
  if (options.keyspaceSize !== undefined) out.keyspaceSize = options.keyspaceSize;
  if (options.keySize !== undefined) out.keySize = options.keySize;
  return out;
}
