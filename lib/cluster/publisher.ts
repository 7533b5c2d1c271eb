// The writer's side of the cluster (docs/cluster.md, "Write path"): the
// entries of one group commit (BATCH entries, or OPS op entries when it holds
// a set, a delete or a create) are split by partition, in their order, and
// published as ONE JetStream message per partition (message.ts), each with
// this writer's id and its next sequence in that partition. publish()
// resolves once JetStream acknowledged every message (stored on a majority of
// the stream's replicas); only then are the WINs sent.
//
// Retries keep the message's sequence, so the applier's per-writer watermark
// drops a copy. Group commits are published one after the other (the writer
// has one in flight), so sequence s+1 of a partition is only published once s
// was acknowledged: a watermark (highest sequence applied) is an exact dedupe,
// and a connection's frames reach each partition in the order it sent them.
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

export class Publisher {
  readonly #o: Required<PublisherOptions>;
  /** Last sequence used per partition. */
  readonly #seqs = new Float64Array(PARTITIONS);
  readonly #bytes = new Int32Array(PARTITIONS);
  readonly #frames = new Int32Array(PARTITIONS);

  constructor(options: PublisherOptions) {
    this.#o = { timeoutMs: 5000, attempts: 4, ...options };
  }

  /** Publish the entries (of record type `type`) of one group commit; resolves when JetStream acknowledged all of them. */
  async publish(entries: Buffer, type: number): Promise<void> {
    const parts = this.#split(entries, type);
    const sends: Array<Promise<void>> = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const body = parts[p];
      if (body === undefined) continue;
      const seq = ++this.#seqs[p]!;
      writeMessageHeader(body, type, this.#frames[p]!, this.#o.writer, seq);
      sends.push(this.#send(p, seq, body));
    }
    await Promise.all(sends);
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

