// `npm run bench:pages`: does a page cost the same at any depth, and how does
// it compare with Redis on the same data?
//
// Builds one keyspace of 1,000,000 keys directly through Store.apply (big
// batches, random counts with many ties), then prints the median latency of a
// 100-entry page at offset 0 and at offset 900,000, of rank() and of
// around() for random keys, in-process. Then, over loopback, one request at a
// time (send, wait for the whole response, repeat), the same page and rank
// requests through the real read server (startReader on this Store, page
// cache off, so the uncached cost is measured) against a private redis-server
// holding the same (key, count) pairs in one sorted set: ZREVRANGE ... 
// WITHSCORES and ZREVRANK. Targets: deep page <= 3x shallow page; both pages
// <= 2x Redis's ZREVRANGE (rank is reported beside ZREVRANK, without a target).
//
// Options (environment): COUNTD_BENCH_KEYS (default 1,000,000),
// COUNTD_BENCH_DIR (default os.tmpdir()), COUNTD_BENCH_FENCE (rankFenceSize).

import { mkdtemp, rm } from 'node:fs/promises';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_FIELD_SIZES, readRecordSize } from '../lib/protocol/fields.js';
import { encodeReadRequest } from '../lib/protocol/read-request.js';
import { startReader } from '../lib/roles/reader.js';
import { Entry, IncrementBatch, Store } from '../lib/store/store.js';
import { Client } from '../lib/client/client.js';
import { mulberry32 as random } from '../test/harness/rng.js';
import { formatMachineFacts, machineFacts } from './lib/machine.js';
import { ReplyCounter, connect } from './lib/pipeline.js';
import { RedisServer, RespValue, findRedisServer, respReplyCounter, startRedis } from './lib/redis.js';

const KEYS = Number(process.env.COUNTD_BENCH_KEYS ?? 1_000_000);
const BATCH = 100_000;
const RUNS = 1000;
/**
 * Requests before timing starts, for every system alike: a server's steady
 * state is its JIT-compiled code (with 20, countd's read path measured ~2x
 * slower per request than after a few thousand).
 */
const WARMUP = 2000;
const PAGE = 100;
const ZADD_MEMBERS = 1000;
const FENCE = process.env.COUNTD_BENCH_FENCE ? Number(process.env.COUNTD_BENCH_FENCE) : undefined;
const SIZES = DEFAULT_FIELD_SIZES;

async function median(runs: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < WARMUP; i++) await fn(i); // warm up
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await fn(WARMUP + i);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const ms = (x: number): string => `${x.toFixed(3)} ms`;
const times = (x: number): string => `${x.toFixed(2)}x`;

// ---------------------------------------------------------------- one request at a time

/**
 * One connection used strictly one request at a time: request() writes the
 * bytes and resolves when the counter has seen exactly one complete reply.
 */
class RoundTrip {
  readonly #socket: net.Socket;
  #resolve: (() => void) | undefined;
  #reject: ((err: Error) => void) | undefined;

  constructor(socket: net.Socket, counter: ReplyCounter) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      let done: number;
      try {
        done = counter(chunk);
      } catch (err) {
        this.#fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (done === 0) return;
      const resolve = this.#resolve;
      this.#resolve = this.#reject = undefined;
      if (done !== 1 || resolve === undefined) this.#fail(new Error(`${done} replies to one request`));
      else resolve();
    });
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new Error('connection closed')));
  }

  request(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      this.#socket.write(bytes);
    });
  }

  close(): void {
    this.#socket.removeAllListeners('close');
    this.#socket.destroy();
  }

  #fail(err: Error): void {
    const reject = this.#reject;
    this.#resolve = this.#reject = undefined;
    reject?.(err);
  }
}

/**
 * Counts complete countd read responses without decoding them (as
 * respReplyCounter does for Redis): n (i64), then `header()` - 8 more bytes
 * (0 for page, 8 for rank's `first`), then n records.
 */
function countdReplyCounter(header: () => number): ReplyCounter {
  const rec = readRecordSize(SIZES);
  let head = Buffer.alloc(0);
  let got = 0;
  let total = -1;
  return (chunk) => {
    let done = 0;
    let pos = 0;
    for (;;) {
      if (total < 0) {
        if (pos >= chunk.length) break;
        const take = chunk.subarray(pos, pos + 8 - head.length);
        head = Buffer.concat([head, take]);
        pos += take.length;
        got += take.length;
        if (head.length < 8) break;
        const n = head.readBigInt64LE(0);
        if (n < 0n) throw new Error(`countd answered n = ${n}`);
        total = header() + Number(n) * rec;
      }
      const take = Math.min(total - got, chunk.length - pos);
      got += take;
      pos += take;
      if (got < total) break;
      done++;
      head = Buffer.alloc(0);
      got = 0;
      total = -1;
    }
    return done;
  };
}

function respCommand(args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Load `entries` into sorted set `ks` with pipelined ZADDs of ZADD_MEMBERS members each. */
async function loadRedis(server: RedisServer, ks: Buffer, entries: Entry[]): Promise<void> {
  const socket = await connect('127.0.0.1', server.port);
  try {
    const commands: Buffer[] = [];
    for (let i = 0; i < entries.length; i += ZADD_MEMBERS) {
      const args: (string | Buffer)[] = ['ZADD', ks];
      for (const e of entries.slice(i, i + ZADD_MEMBERS)) args.push(String(e.count), e.key);
      commands.push(respCommand(args));
    }
    await new Promise<void>((resolve, reject) => {
      const counter = respReplyCounter();
      let replies = 0;
      socket.on('data', (chunk: Buffer) => {
        try {
          replies += counter(chunk);
        } catch (err) {
          reject(err);
          return;
        }
        if (replies === commands.length) resolve();
      });
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('redis closed the connection')));
      for (const c of commands) socket.write(c);
    });
  } finally {
    socket.destroy();
  }
}

async function redisNumber(server: RedisServer, ...args: (string | number)[]): Promise<number> {
  const v: RespValue = await server.command(...args);
  if (typeof v !== 'number') throw new Error(`redis ${args[0]}: expected a number, got ${JSON.stringify(v)}`);
  return v;
}

interface Requests {
  shallow: Buffer;
  deep: Buffer;
  rank: Buffer[];
}

interface Figures {
  shallow: number;
  deep: number;
  rank: number;
}

/** Median round trips of the same requests on one connection (`header`: 8 for pages, 16 for rank). */
async function measureTrips(port: number, countd: boolean, requests: Requests): Promise<Figures> {
  let header = 8;
  const trip = new RoundTrip(await connect('127.0.0.1', port), countd ? countdReplyCounter(() => header) : respReplyCounter());
  try {
    const shallow = await median(RUNS, () => trip.request(requests.shallow));
    const deep = await median(RUNS, () => trip.request(requests.deep));
    // rank is an extension op: the connection asks for the extensions first (docs/read-protocol-extensions.md).
    if (countd) await trip.request(encodeReadRequest({ op: 'hello' }, SIZES));
    header = 16;
    const rank = await median(RUNS, (i) => trip.request(requests.rank[i]!));
    return { shallow, deep, rank };
  } finally {
    trip.close();
  }
}

/** countd's answers agree with Redis's on the same data (ties aside: Redis orders them by member descending). */
async function crossCheck(client: Client, redis: RedisServer, ks: Buffer, deepOffset: number, rankKeys: Buffer[]): Promise<void> {
  for (const offset of [0, deepOffset]) {
    const ours = (await client.page(ks, offset, PAGE)).map((e) => String(e.count));
    const theirs = (await redis.command('ZREVRANGE', ks.toString('latin1'), offset, offset + PAGE - 1, 'WITHSCORES')) as string[];
    const scores = theirs.filter((_, i) => i % 2 === 1);
    if (ours.join() !== scores.join()) throw new Error(`page at offset ${offset}: countd and Redis counts differ`);
  }
  for (const key of rankKeys.slice(0, 20)) {
    const ours = await client.rank(ks, key);
    const theirs = await redisNumber(redis, 'ZREVRANK', ks.toString('latin1'), key.toString('latin1'));
    const atTheirs = await client.page(ks, theirs, 1);
    if (ours === undefined || atTheirs[0]?.count !== ours.count) throw new Error(`rank of ${key}: countd ${ours?.rank}, Redis ${theirs} (different counts)`);
  }
}

/** The read server on `store` (page cache off), timed with the same requests as Redis. */
async function measureCountd(store: Store, requests: Requests, redis: RedisServer | undefined, check: (client: Client) => Promise<void>): Promise<Figures> {
  const reader = await startReader({ store, sizes: SIZES, listen: '127.0.0.1', port: 0, pageCacheBytes: 0 });
  try {
    if (redis !== undefined) {
      const client = new Client({ host: '127.0.0.1', readPort: reader.port });
      try {
        await check(client);
      } finally {
        await client.close();
      }
    }
    return await measureTrips(reader.port, true, requests);
  } finally {
    await reader.close();
  }
}

/** The page cache's figure: the same shallow page again and again through a reader with its default page cache. */
async function measureCachedShallow(store: Store, request: Buffer): Promise<number> {
  const reader = await startReader({ store, sizes: SIZES, listen: '127.0.0.1', port: 0 });
  const trip = new RoundTrip(await connect('127.0.0.1', reader.port), countdReplyCounter(() => 8));
  try {
    return await median(RUNS, () => trip.request(request));
  } finally {
    trip.close();
    await reader.close();
  }
}

/** In-process Store figures. */
async function measureStore(store: Store, ks: Buffer, deepOffset: number, names: Buffer[], rand: () => number): Promise<Figures & { random: number; around: number }> {
  const shallow = await median(RUNS, () => store.page(ks, 0, PAGE));
  const deep = await median(RUNS, () => store.page(ks, deepOffset, PAGE));
  const randomPage = await median(RUNS, () => store.page(ks, Math.floor(rand() * (KEYS - PAGE)), PAGE));
  const rank = await median(RUNS, () => store.rank(ks, names[Math.floor(rand() * KEYS)]!));
  const around = await median(RUNS, () => store.around(ks, names[Math.floor(rand() * KEYS)]!, PAGE));
  const page = await store.page(ks, deepOffset, PAGE);
  if (page.length !== PAGE || (await store.rank(ks, page[0]!.key)) !== deepOffset) throw new Error('deep page and rank disagree');
  return { shallow, deep, random: randomPage, rank, around };
}

/** Every entry, read through pages (which also fills the rank-block cache, as a busy leaderboard would). */
async function readAll(store: Store, ks: Buffer, size: number): Promise<Entry[]> {
  const entries: Entry[] = [];
  for (let offset = 0; offset < size; offset += 10_000) entries.push(...(await store.page(ks, offset, 10_000)));
  if (entries.length !== size) throw new Error(`read back ${entries.length} entries of ${size}`);
  return entries;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(process.env.COUNTD_BENCH_DIR ?? os.tmpdir(), 'countd-bench-pages-'));
  const redisBinary = findRedisServer();
  let store: Store | undefined;
  try {
    console.log('bench:pages');
    for (const line of formatMachineFacts(machineFacts(root, redisBinary))) console.log(`  ${line}`);
    store = await Store.open({ location: path.join(root, 'db'), sizes: SIZES, rankFenceSize: FENCE });
    const rand = random(1);
    const ks = Buffer.from('pages');
    const names: Buffer[] = [];
    const buildStart = Date.now();
    for (let start = 0; start < KEYS; start += BATCH) {
      const batch = new IncrementBatch();
      for (let i = start; i < Math.min(KEYS, start + BATCH); i++) {
        const key = Buffer.from('key' + i);
        names.push(key);
        batch.add(ks, key, BigInt(1 + Math.floor(rand() * 100_000)));
      }
      await store.apply(batch);
    }
    const buildSeconds = (Date.now() - buildStart) / 1000;
    // Move keys across fences with a few ordinary applies, as the worker would.
    for (let round = 0; round < 5; round++) {
      const batch = new IncrementBatch();
      for (let i = 0; i < 50_000; i++) batch.add(ks, names[Math.floor(rand() * KEYS)], BigInt(Math.floor(rand() * 2001) - 1000));
      await store.apply(batch);
    }
    const size = await store.size(ks);
    const deepOffset = Math.floor(KEYS * 0.9);
    console.log(`one keyspace of ${size.toLocaleString('en-US')} keys (built in ${buildSeconds.toFixed(1)} s through Store.apply)`);

    // Two configurations of the same database: the LevelDB path alone (rank-block
    // cache off), and the defaults (32 MiB rank-block cache) once every block
    // has been read (the whole keyspace is read once, to load Redis).
    const location = path.join(root, 'db');
    await store.close();
    store = await Store.open({ location, sizes: SIZES, rankFenceSize: FENCE, blockCacheBytes: 0 });
    const cold = await measureStore(store, ks, deepOffset, names, rand);
    const entries = await readAll(store, ks, size);
    await store.close();
    store = await Store.open({ location, sizes: SIZES, rankFenceSize: FENCE });
    await readAll(store, ks, size);
    const warm = await measureStore(store, ks, deepOffset, names, rand);

    console.log(`in-process (Store), median of ${RUNS} after ${WARMUP} warm-up:        LevelDB path (no rank-block cache)   default settings (rank-block cache warm)`);
    const row = (label: string, a: number, b: number, extra = ''): void => console.log(`  ${label.padEnd(28)}${ms(a).padStart(12)}${ms(b).padStart(36)}${extra}`);
    row(`page(0, ${PAGE})`, cold.shallow, warm.shallow);
    row(`page(${deepOffset.toLocaleString('en-US')}, ${PAGE})`, cold.deep, warm.deep, `   deep/shallow ${times(cold.deep / cold.shallow)} and ${times(warm.deep / warm.shallow)} (target <= 3x)`);
    row(`page(random, ${PAGE})`, cold.random, warm.random);
    row('rank(random key)', cold.rank, warm.rank);
    row(`around(random key, ${PAGE})`, cold.around, warm.around);

    if (redisBinary === undefined) {
      console.log('redis-server is not on the PATH: the comparison with Redis is skipped.');
      return;
    }
    // The same random keys for both servers (warm-up requests included).
    const rankKeys = Array.from({ length: WARMUP + RUNS }, () => names[Math.floor(rand() * KEYS)]!);
    const redis = await startRedis(redisBinary, 'everysec');
    try {
      await redis.command('CONFIG', 'SET', 'appendonly', 'no'); // reads only: no persistence
      const loadStart = Date.now();
      await loadRedis(redis, ks, entries);
      const loadSeconds = (Date.now() - loadStart) / 1000;
      const card = await redisNumber(redis, 'ZCARD', ks.toString('latin1'));
      if (card !== size) throw new Error(`redis holds ${card} members, countd ${size}`);
      const countdRequests: Requests = {
        shallow: encodeReadRequest({ op: 'page', keyspace: ks, offset: 0, length: PAGE }, SIZES),
        deep: encodeReadRequest({ op: 'page', keyspace: ks, offset: deepOffset, length: PAGE }, SIZES),
        rank: rankKeys.map((key) => encodeReadRequest({ op: 'rank', keyspace: ks, key }, SIZES)),
      };
      const redisRequests: Requests = {
        shallow: respCommand(['ZREVRANGE', ks, '0', String(PAGE - 1), 'WITHSCORES']),
        deep: respCommand(['ZREVRANGE', ks, String(deepOffset), String(deepOffset + PAGE - 1), 'WITHSCORES']),
        rank: rankKeys.map((key) => respCommand(['ZREVRANK', ks, key])),
      };
      const check = (client: Client): Promise<void> => crossCheck(client, redis, ks, deepOffset, rankKeys);
      const theirs = await measureTrips(redis.port, false, redisRequests);
      const ours = await measureCountd(store, countdRequests, redis, check);
      const shallowCached = await measureCachedShallow(store, countdRequests.shallow);
      await store.close();
      store = await Store.open({ location, sizes: SIZES, rankFenceSize: FENCE, blockCacheBytes: 0 });
      const oursCold = await measureCountd(store, countdRequests, redis, check);

      const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
      const rows: [string, keyof Figures, string][] = [
        [`page(0, ${PAGE})`, 'shallow', `ZREVRANGE 0 ${PAGE - 1} WITHSCORES`],
        [`page(${deepOffset}, ${PAGE})`, 'deep', `ZREVRANGE ${deepOffset} ${deepOffset + PAGE - 1} WITHSCORES`],
        ['rank(random key)', 'rank', 'ZREVRANK (same keys)'],
      ];
      console.log(`over loopback, one request at a time, median of ${RUNS} after ${WARMUP} warm-up (Redis loaded in ${loadSeconds.toFixed(1)} s, ${ZADD_MEMBERS} members per pipelined ZADD, no persistence; countd read server with its page cache off):`);
      console.log(`  ${'countd'.padEnd(20)}${'default'.padStart(10)}${'LevelDB path'.padStart(14)}   ${'Redis'.padEnd(36)}${'median'.padStart(10)}   default/Redis (target <= 2x)   LevelDB path/Redis`);
      for (const [label, k, redisLabel] of rows) {
        const ratio = ours[k] / theirs[k];
        console.log(
          `  ${label.padEnd(20)}${ms(ours[k]).padStart(10)}${ms(oursCold[k]).padStart(14)}   ${redisLabel.padEnd(36)}${ms(theirs[k]).padStart(10)}   ${`${times(ratio)} ${k === 'rank' ? '(no target)' : verdict(ratio <= 2)}`.padStart(28)}   ${times(oursCold[k] / theirs[k]).padStart(18)}`,
        );
      }
      const ratio = ours.deep / ours.shallow;
      console.log(`  deep / shallow page: countd ${times(ratio)} (target <= 3x: ${verdict(ratio <= 3)}), LevelDB path ${times(oursCold.deep / oursCold.shallow)}, Redis ${times(theirs.deep / theirs.shallow)}`);
      console.log(`  page(0, ${PAGE}) with the page cache on too (default 32 MiB): ${ms(shallowCached)} (${times(shallowCached / theirs.shallow)} Redis)`);
    } finally {
      await redis.stop();
    }
  } finally {
    await store?.close();
    await rm(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench:pages failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
