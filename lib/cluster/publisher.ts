// The writer's side of the cluster (docs/cluster.md, "Write path"): the
// entries of a group commit (BATCH entries, or OPS op entries when it holds a
// set, a delete or a create) are split by partition, in their order, and
// published with this writer's id and its next sequence in that partition.
// publish() resolves once JetStream acknowledged every message holding them
// (stored on a majority of the stream's replicas); only then are the WINs sent.
//
// Each partition has at most ONE message in flight: the entries of the group
// commits that arrive meanwhile (the writer has up to three in flight) wait,
// and go out together as the partition's next message once it is acknowledged
// (a group commit of publishes). So a message carries what a partition
// received during one acknowledgement, however small the group commits, and
// sequence s+1 of a partition is only published once s was acknowledged: the
// applier's per-writer watermark (highest sequence applied) is an exact
// dedupe, and a connection's frames reach each partition in the order sent.
// Retries keep the message's sequence, so the watermark drops a copy.
// No Nats-Msg-Id and no NATS headers: a message costs about 30% less without
// them (BENCHMARKS.md, "Cluster"), and the watermark is exact anyway.

import type { JetStreamClient } from '@nats-io/jetstream';
import { ENTRY_FIXED_SIZE, OP_ENTRY_FIXED_SIZE, RECORD_OPS, forEachEntryAt, forEachOpAt } from '../commitlog/format.js';
import { CountdError, ErrorCodes } from '../errors.js';
import { metrics } from '../metrics.js';
import type { Logger } from '../util/log.js';
import { MESSAGE_HEADER_SIZE, writeMessageHeader } from './message.js';
import { describe } from './nats.js';
import { PARTITIONS, partitionOf, subjectOf } from './partition.js';

export interface PublisherOptions {
  js: JetStreamClient;
  /** This writer process's id (message.ts WRITER_ID_SIZE random bytes): unique per incarnation. */
  writer: Buffer;
  logger: Logger;
  /** Per attempt. Default 5000 ms. */
  timeoutMs?: number;
  /** Attempts per message. Default 4. */
  attempts?: number;
}

/** A group commit being published: resolved when every partition message holding its entries was acknowledged. */
interface Commit {
  left: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Entries of one or more group commits waiting to go out as one message of a partition. */
interface Pending {
  type: number;
  /** Entry bytes, each chunk one commit's (the first may carry room for the header before them). */
  chunks: Buffer[];
  bytes: number;
  frames: number;
  commits: Commit[];
}

/**
 * Entries of later group commits join a waiting message up to this size (the
 * NATS default max_payload is 1 MiB); one group commit's entries for a
 * partition go out whole, as before.
 */
export const COALESCE_BYTES = 512 * 1024;

export class Publisher {
  readonly #o: Required<PublisherOptions>;
  /** Last sequence used per partition. */
  readonly #seqs = new Float64Array(PARTITIONS);
  readonly #bytes = new Int32Array(PARTITIONS);
  readonly #frames = new Int32Array(PARTITIONS);
  /** A message of the partition is being published (one at a time: the watermark dedupe relies on it). */
  readonly #busy = new Uint8Array(PARTITIONS);
  readonly #waiting: Pending[][] = Array.from({ length: PARTITIONS }, () => []);
  /** Partitions whose message was acknowledged, to publish their next one at the next turn of the event loop. */
  readonly #acked: number[] = [];
  #flushing = false;
  readonly #flushBound = (): void => this.#flushAcked();
  /** Partition messages published (the bench's and the tests' figure). */
  messages = 0;

  constructor(options: PublisherOptions) {
    this.#o = { timeoutMs: 5000, attempts: 4, ...options };
  }

  /**
   * Publish the entries (of record type `type`) of one group commit; resolves
   * when JetStream acknowledged every message holding them. A partition with
   * a message in flight keeps the entries, and those of every later group
   * commit meanwhile, for ONE next message (a group commit of publishes).
   * Rejects when a message holding them failed for good; the entries of later
   * group commits waiting behind it in that partition fail with it unsent.
   */
  publish(entries: Buffer, type: number): Promise<void> {
    const parts = this.#split(entries, type);
    return new Promise<void>((resolve, reject) => {
      const commit: Commit = { left: 0, resolve, reject };
      for (let p = 0; p < PARTITIONS; p++) if (parts[p] !== undefined) commit.left++;
      if (commit.left === 0) return resolve();
      for (let p = 0; p < PARTITIONS; p++) {
        const body = parts[p];
        if (body === undefined) continue;
        this.#add(p, body, type, this.#frames[p]!, commit);
        if (this.#busy[p] === 0) this.#next(p);
      }
    });
  }

  /** Queue one commit's entries of partition p (`body` has MESSAGE_HEADER_SIZE bytes of room first). */
  #add(p: number, body: Buffer, type: number, frames: number, commit: Commit): void {
    const queue = this.#waiting[p]!;
    const last = queue[queue.length - 1];
    const bytes = body.length - MESSAGE_HEADER_SIZE;
    if (last !== undefined && last.type === type && last.bytes + bytes <= COALESCE_BYTES) {
      last.chunks.push(body.subarray(MESSAGE_HEADER_SIZE));
      last.bytes += bytes;
      last.frames += frames;
      last.commits.push(commit);
    } else {
      queue.push({ type, chunks: [body], bytes, frames, commits: [commit] });
    }
  }

  /** Publish partition p's next waiting message, if any. */
  #next(p: number): void {
    const m = this.#waiting[p]!.shift();
    if (m === undefined) {
      this.#busy[p] = 0;
      return;
    }
    this.#busy[p] = 1;
    const seq = ++this.#seqs[p]!;
    const body = m.chunks.length === 1 ? m.chunks[0]! : Buffer.concat(m.chunks, MESSAGE_HEADER_SIZE + m.bytes);
    writeMessageHeader(body, m.type, m.frames, this.#o.writer, seq);
    this.messages++;
    this.#send(p, seq, body).then(
      () => {
        for (const c of m.commits) if (--c.left === 0) c.resolve();
        // Not at once: the acks read together go out again together, in one socket write (nats.js writes per microtask turn).
        this.#acked.push(p);
        if (!this.#flushing) {
          this.#flushing = true;
          setImmediate(this.#flushBound);
        }
      },
      (err: unknown) => {
        // Later commits' entries behind it fail unsent: s+1 of a partition is only published once s is stored.
        const behind = this.#waiting[p]!.splice(0);
        for (const w of [m, ...behind]) for (const c of w.commits) c.reject(err);
        this.#busy[p] = 0;
      },
    );
  }

  #flushAcked(): void {
    this.#flushing = false;
    const ps = this.#acked.splice(0);
    for (const p of ps) this.#next(p);
  }

  /** Copy each entry into its partition's message, after room for the message header. */
  #split(entries: Buffer, type: number): Array<Buffer | undefined> {
    const bytes = this.#bytes;
    const frames = this.#frames;
    bytes.fill(0);
    frames.fill(0);
    const parts: Array<Buffer | undefined> = new Array(PARTITIONS);
    const which: number[] = [];
    const spans: number[] = [];
    const visit = (off: number, fixed: number, ksLen: number, keyLen: number): void => {
      const ks = off + fixed;
      const p = partitionOf(entries.subarray(ks, ks + ksLen));
      const size = fixed + ksLen + keyLen;
      which.push(p);
      spans.push(off, size);
      bytes[p]! += size;
      frames[p]!++;
    };
    if (type === RECORD_OPS) forEachOpAt(entries, (off, _op, ksLen, keyLen) => visit(off, OP_ENTRY_FIXED_SIZE, ksLen, keyLen));
    else forEachEntryAt(entries, (off, ksLen, keyLen) => visit(off, ENTRY_FIXED_SIZE, ksLen, keyLen));
    const at = new Int32Array(PARTITIONS).fill(MESSAGE_HEADER_SIZE);
    for (let p = 0; p < PARTITIONS; p++) if (bytes[p]! > 0) parts[p] = Buffer.allocUnsafe(MESSAGE_HEADER_SIZE + bytes[p]!);
    for (let i = 0; i < which.length; i++) {
      const p = which[i]!;
      const off = spans[2 * i]!;
      const size = spans[2 * i + 1]!;
      entries.copy(parts[p]!, at[p]!, off, off + size);
      at[p]! += size;
    }
    return parts;
  }

  async #send(p: number, seq: number, body: Buffer): Promise<void> {
    const { js, timeoutMs, attempts, logger } = this.#o;
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      try {
        await js.publish(subjectOf(p), body, { timeout: timeoutMs });
        metrics.clusterPublishSeconds.observe((performance.now() - started) / 1000);
        return;
      } catch (err) {
        if (attempt >= attempts) {
          throw new CountdError(ErrorCodes.CLUSTER, `JetStream did not acknowledge partition ${p} message ${seq} after ${attempts} attempts: ${describe(err)}`, { cause: err });
        }
        logger.warn('JetStream publish failed; retrying with the same sequence', { partition: p, seq, attempt, error: describe(err) });
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }
}

