// The memory of the whole daemon, `countd start --memory`: the supervisor
// and the writer child get fixed shares, the store child (worker + reader +
// Store) the rest less the allocator's headroom (storeMemoryOf), which is
// its `--store-memory` (also the standalone countd-worker's setting). Every
// part of the store child below is derived from that, none from the number
// of keys or keyspaces. `npm run bench:e2e` and `bench:bigboard` measure the
// peak RSS of all processes (BENCHMARKS.md, "The engine keeps up").
//
// The parts: a Node.js process with nothing loaded (~60 MiB); LevelDB's
// block cache and two write buffers (the one filling and the one being
// flushed); the rank-block and page caches (Buffers, outside V8's heap);
// V8's old space, CAPPED (--max-old-space-size, set by the supervisor when
// it forks the child, and by countd-worker for its own: heapLimitOption),
// which holds the count cache and the JS side of the worker's batches; and
// the native side of the batches (key Buffers, LevelDB write batches). The
// batches take what is left, which bounds how many distinct keys one batch
// may hold (the worker's maxBatchKeys).
//
// Why a cap on V8's heap: without one, V8 lets garbage pile up while the
// worker is behind (its heap grew to ~530 MiB with ~110 MiB live during a
// 40 s overload), so the peak followed the length of the overload. With the
// cap it collects sooner. It would fail only if what is LIVE exceeded it
// (the store child would die and be restarted; nothing acknowledged is
// lost, docs/guarantees.md): the live set is bounded by the batch size,
// HEAP_BYTES_PER_KEY is twice what was measured live per key, and the
// worker stops growing batches while the heap is over half its limit
// (lib/roles/worker.ts, heapUnderPressure in work/batch-pacer.ts).

import { existsSync } from 'node:fs';
import { MIN_WRITE_BUFFER_SIZE } from '../store/schema.js';
import { formatSize } from '../util/size.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * V8 heap per key a batch may hold: twice the ~500 bytes measured live per
 * key at the heap's peak (two overlapped batches; an 80 s overload: up to
 * ~350 MiB used with batches of up to ~450,000 keys). A batch holds at most
 * maxBatchKeys plus one log's keys: the summing thread reads no further log
 * once the batch is full (lib/roles/work/summer-thread.ts).
 */
export const HEAP_BYTES_PER_KEY = 1000;
/**
 * Outside V8's heap, per key: key Buffers of the apply, LevelDB write batches,
 * the summing thread's table (with its per-pair mode and operator bytes:
 * lib/roles/work/pair-sums.ts), within the same margin.
 */
export const NATIVE_BYTES_PER_KEY = 1000;
export const NODE_BASELINE_BYTES = 64 * MiB;
/** V8 heap beyond the count cache and the batches: the reader, the worker's own state, code. */
export const HEAP_RESERVE_BYTES = 64 * MiB;
/**
 * `countd start --memory` when not given: the whole daemon (supervisor,
 * writer child, store child).
 */
export const DEFAULT_DAEMON_MEMORY = 512 * MiB;
/**
 * What the supervisor and the writer child are given out of --memory: a
 * Node.js process each (~60-67 MiB resident idle) plus, for the writer, its
 * frames in flight (bounded by --max-connections x 4,096 frames, in practice
 * a few MiB) and its commit buffers. Measured peaks (bench:e2e, bench:bigboard):
 * supervisor 67 MiB, writer 91-95 MiB.
 */
export const SUPERVISOR_BYTES = 72 * MiB;
export const WRITER_BYTES = 96 * MiB;
/**
 * Share of the store child's part of --memory kept for the C library's
 * allocator: freed memory that malloc keeps (fragmentation), which measured
 * 15-20% over the parts below in long overloads (README, "Memory").
 */
export const ALLOCATOR_HEADROOM = 0.15;
/** Below this, batches would be too small to drain a backlog at a useful rate. */
export const MIN_STORE_MEMORY = 256 * MiB;
export const MIN_DAEMON_MEMORY = Math.ceil(MIN_STORE_MEMORY / (1 - ALLOCATOR_HEADROOM) / MiB) * MiB + SUPERVISOR_BYTES + WRITER_BYTES;
export const MAX_STORE_MEMORY = 1024 * GiB;
export const MAX_DAEMON_MEMORY = 2048 * GiB;

/**
 * The store child's --store-memory out of the whole daemon's memory
 * (`countd start --memory`): what the supervisor and the writer leave, less
 * the allocator's headroom, in whole MiB.
 */
export function storeMemoryOf(daemonMemory: number): number {
  const share = Math.floor(((daemonMemory - SUPERVISOR_BYTES - WRITER_BYTES) * (1 - ALLOCATOR_HEADROOM)) / MiB) * MiB;
  return Math.min(MAX_STORE_MEMORY, Math.max(MIN_STORE_MEMORY, share));
}

/** `--store-memory` when neither it nor --memory is given: the store's share of the default --memory. */
export const DEFAULT_STORE_MEMORY = storeMemoryOf(DEFAULT_DAEMON_MEMORY);
/** Batches past this many keys gain nothing (an apply's fixed costs are long amortized) and take long to commit. */
export const MAX_BATCH_KEYS = 2_000_000;

export interface StoreChildSettings {
  /** LevelDB's block cache. */
  cacheSize: number;
  /** LevelDB's memtable size (two may be held). */
  writeBufferSize: number;
  countCacheBytes: number;
  blockCacheBytes: number;
  pageCacheBytes: number;
  /** The key filter (lib/store/key-filter.ts): new keys not read back. */
  keyFilterBytes: number;
  maxBatchKeys: number;
  /** V8's old-space limit for the process (--max-old-space-size). */
  heapLimit: number;
}

function share(rest: number, divisor: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, Math.floor(rest / divisor / MiB) * MiB));
}

/**
 * The settings of a store child that may use `memory` bytes: each cache a
 * fixed share of what the runtime leaves (capped where a larger cache stops
 * paying), the batches the rest. Throws RangeError outside
 * [MIN_STORE_MEMORY, MAX_STORE_MEMORY].
 */
export function storeChildSettingsFor(memory: number): StoreChildSettings {
  if (!Number.isSafeInteger(memory) || memory < MIN_STORE_MEMORY || memory > MAX_STORE_MEMORY) {
    throw new RangeError(`store memory must be from ${formatSize(MIN_STORE_MEMORY)} to ${formatSize(MAX_STORE_MEMORY)}, got ${memory} bytes`);
  }
  const rest = memory - NODE_BASELINE_BYTES;
  const writeBufferSize = Math.max(MIN_WRITE_BUFFER_SIZE, share(rest, 16, 4 * MiB, 64 * MiB));
  // The count cache before LevelDB's block cache: an apply that finds a
  // count cached reads nothing, and at 1/10 of the rest (22 MiB at the
  // default --memory, ~230,000 keys) it holds the whole working set of
  // issue 14's sustained load (200,000 keys over 1,000 keyspaces): +25%
  // frames per CPU-second (BENCHMARKS.md, "The engine keeps up (issue 14,
  // 0.8.0)"). The block cache then serves pages and the blocks a rank-fence
  // split reads back, which are recent: 1/32 of the rest.
  const cacheSize = share(rest, 32, 4 * MiB, 64 * MiB);
  const countCacheBytes = share(rest, 10, 4 * MiB, 128 * MiB);
  const blockCacheBytes = share(rest, 32, 2 * MiB, 32 * MiB);
  const pageCacheBytes = share(rest, 32, 2 * MiB, 32 * MiB);
  // 7 MiB at the default --memory: 10,000,000 new keys at ~6% false positives (reads), 1,000,000 at ~0.
  const keyFilterBytes = share(rest, 32, 2 * MiB, 64 * MiB);
  // Less 1 MiB: the heap limit is rounded up to whole MiB.
  const batches = rest - 2 * writeBufferSize - cacheSize - countCacheBytes - blockCacheBytes - pageCacheBytes - keyFilterBytes - HEAP_RESERVE_BYTES - MiB;
  const maxBatchKeys = Math.min(MAX_BATCH_KEYS, Math.floor(batches / (HEAP_BYTES_PER_KEY + NATIVE_BYTES_PER_KEY)));
  const heapLimit = Math.ceil((countCacheBytes + HEAP_RESERVE_BYTES + maxBatchKeys * HEAP_BYTES_PER_KEY) / MiB) * MiB;
  return { cacheSize, writeBufferSize, countCacheBytes, blockCacheBytes, pageCacheBytes, keyFilterBytes, maxBatchKeys, heapLimit };
}

export const DEFAULT_STORE_CHILD_SETTINGS: StoreChildSettings = storeChildSettingsFor(DEFAULT_STORE_MEMORY);

/** The store child's memory budget, in bytes, part by part. */
export function storeChildMemoryBudget(s: StoreChildSettings = DEFAULT_STORE_CHILD_SETTINGS): { total: number; parts: Array<[string, number]> } {
  const parts: Array<[string, number]> = [
    ['Node.js baseline', NODE_BASELINE_BYTES],
    ['LevelDB block cache', s.cacheSize],
    ['LevelDB write buffers (2)', 2 * s.writeBufferSize],
    ['rank-block cache', s.blockCacheBytes],
    ['page cache', s.pageCacheBytes],
    ['key filter', s.keyFilterBytes],
    [`V8 heap limit (count cache ${formatSize(s.countCacheBytes)}, batches of ${s.maxBatchKeys.toLocaleString('en-US')} keys × ${HEAP_BYTES_PER_KEY} B, reserve)`, s.heapLimit],
    [`batches outside the heap (${s.maxBatchKeys.toLocaleString('en-US')} keys × ${NATIVE_BYTES_PER_KEY} B)`, s.maxBatchKeys * NATIVE_BYTES_PER_KEY],
  ];
  return { total: parts.reduce((sum, [, bytes]) => sum + bytes, 0), parts };
}

/**
 * The Node.js option that caps V8's old space at the setting's heap limit,
 * for the process that holds the store: the supervisor's store child
 * (lib/daemon/supervisor.ts) and the standalone countd-worker (lib/daemon/heap-cap.ts).
 * Node.js reads it only at start-up.
 */
export function heapLimitOption(memory: number): string {
  return `--max-old-space-size=${storeChildSettingsFor(memory).heapLimit / MiB}`;
}

export function isHeapLimitOption(arg: string): boolean {
  return arg.startsWith('--max-old-space-size');
}

/**
 * V8's young generation of each child of `countd start --memory`, in MiB
 * per semi-space. Node.js 20 defaults to 16 MiB (up to 3 x 16 MiB resident
 * per process); 4 MiB cuts the children's resident memory by ~20-40 MiB
 * each for a few more scavenges (BENCHMARKS.md, "Memory").
 */
export const SEMI_SPACE_MIB = 4;

export function isSemiSpaceOption(arg: string): boolean {
  return arg.startsWith('--max-semi-space-size');
}

export function semiSpaceOption(): string {
  return `--max-semi-space-size=${SEMI_SPACE_MIB}`;
}

/**
 * glibc malloc settings of the process that holds the store, each unless
 * the environment already sets it (other C libraries ignore them):
 *
 * - MALLOC_ARENA_MAX=2: glibc gives each thread that allocates its own
 *   arena, up to 8 per core, and LevelDB's memtables and write batches are
 *   allocated on several threads (libuv's pool, compaction): freed memory
 *   stayed in those arenas, ~200 MiB of the store child's RSS after a 40 s
 *   overload (BENCHMARKS.md).
 * - MALLOC_MMAP_THRESHOLD_=64 KiB (which also turns off glibc's sliding
 *   threshold, which rises to 32 MiB after the first large free):
 *   allocations of 64 KiB and more (LevelDB write batches and memtable
 *   blocks, read buffers, Buffers) get pages of their own, returned to the
 *   system when freed instead of left in the heap between live chunks; and
 *   MALLOC_TRIM_THRESHOLD_=1 MiB returns the heap's free top sooner.
 *   Measured: 3,000,000 distinct keys in one keyspace, store child peak
 *   382 → 334 MiB in the same minute (BENCHMARKS.md, "The engine keeps up").
 */
export const STORE_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '65536',
  MALLOC_TRIM_THRESHOLD_: '1048576',
};

/**
 * jemalloc, where the system has it (Debian and Ubuntu: package
 * libjemalloc2; Fedora: jemalloc), preloaded into the process that holds
 * the store. Under glibc the store child's resident memory grows with the
 * number of keys written (~35 bytes a key: 770 MiB for all processes at
 * 10,000,000 distinct keys) although what is live does not (jemalloc's heap
 * profiler: 60-106 MiB throughout); under jemalloc it stays flat
 * (BENCHMARKS.md, "The engine keeps up (issue 14, 0.7.0)"). Two arenas and
 * freed pages returned after a second, as MALLOC_ARENA_MAX=2 and the trim
 * threshold do for glibc. COUNTD_STORE_ALLOCATOR=glibc keeps glibc; an
 * LD_PRELOAD already set is left alone.
 */
export const JEMALLOC_PATHS: readonly string[] = [
  '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
  '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2',
  '/usr/lib64/libjemalloc.so.2',
  '/usr/lib/libjemalloc.so.2',
];
export const STORE_JEMALLOC_CONF = 'narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0';

/** The jemalloc library to preload into the store's process, if any (see JEMALLOC_PATHS). */
export function storeJemalloc(env: NodeJS.ProcessEnv, exists: (file: string) => boolean = existsSync): string | undefined {
  if (env.COUNTD_STORE_ALLOCATOR === 'glibc' || env.LD_PRELOAD !== undefined) return undefined;
  return JEMALLOC_PATHS.find((file) => exists(file));
}

export function withStoreMallocArenas(env: NodeJS.ProcessEnv, exists: (file: string) => boolean = existsSync): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [name, value] of Object.entries(STORE_MALLOC_ENV)) if (out[name] === undefined) out[name] = value;
  const jemalloc = storeJemalloc(env, exists);
  if (jemalloc !== undefined) {
    out.LD_PRELOAD = jemalloc;
    out.MALLOC_CONF ??= STORE_JEMALLOC_CONF;
  }
  return out;
}
