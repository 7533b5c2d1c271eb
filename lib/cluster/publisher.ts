// The writer's side of the cluster (docs/cluster.md, "Write path"): the
// entries of one group commit, already durable in the node's commit log, are
// split by partition and published as ONE JetStream message per partition
// (the commit-log entry encoding, concatenated), each with this writer's id
// and its next sequence in that partition. publish() resolves once JetStream
// acknowledged every message (stored on a majority of the stream's replicas);
// only then are the WINs sent.
//
// Retries keep the message's sequence (and Nats-Msg-Id), so the stream's
// duplicate window and the applier's per-writer watermark both drop a copy.
// Group commits are published one after the other (the writer has one in
// flight), so sequence s+1 of a partition is only published once s was
// acknowledged: a watermark (highest sequence applied) is an exact dedupe.

import { headers } from '@nats-io/transport-node';
import type { JetStreamClient } from '@nats-io/jetstream';
import { ENTRY_FIXED_SIZE, forEachEntryAt } from '../commitlog/format.js';
import { CountdError, ErrorCodes } from '../errors.js';
import { metrics } from '../metrics.js';
import type { Logger } from '../util/log.js';
import { describe } from './nats.js';
import { HDR_FRAMES, HDR_SEQ, HDR_WRITER, PARTITIONS, partitionOf, subjectOf } from './partition.js';

export interface PublisherOptions {
  js: JetStreamClient;
  /** This writer process's id: unique per incarnation. */
  writer: string;
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

  /** Publish the entries of one durable group commit; resolves when JetStream acknowledged all of them. */
  async publish(entries: Buffer): Promise<void> {
    const parts = this.#split(entries);
    const sends: Array<Promise<void>> = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const data = parts[p];
      if (data === undefined) continue;
      sends.push(this.#send(p, ++this.#seqs[p]!, data, this.#frames[p]!));
    }
    await Promise.all(sends);
  }

  /** Copy each entry into its partition's message. */
  #split(entries: Buffer): Array<Buffer | undefined> {
    const bytes = this.#bytes;
    const frames = this.#frames;
    bytes.fill(0);
    frames.fill(0);
    const parts: Array<Buffer | undefined> = new Array(PARTITIONS);
    const which: number[] = [];
    const spans: number[] = [];
    forEachEntryAt(entries, (off, ksLen, keyLen) => {
      const ks = off + ENTRY_FIXED_SIZE;
      const p = partitionOf(entries.subarray(ks, ks + ksLen));
      const size = ENTRY_FIXED_SIZE + ksLen + keyLen;
      which.push(p);
      spans.push(off, size);
      bytes[p]! += size;
      frames[p]!++;
    });
    const at = new Int32Array(PARTITIONS);
    for (let p = 0; p < PARTITIONS; p++) if (bytes[p]! > 0) parts[p] = Buffer.allocUnsafe(bytes[p]!);
    for (let i = 0; i < which.length; i++) {
      const p = which[i]!;
      const off = spans[2 * i]!;
      const size = spans[2 * i + 1]!;
      entries.copy(parts[p]!, at[p]!, off, off + size);
      at[p]! += size;
    }
    return parts;
  }

  async #send(p: number, seq: number, data: Buffer, frames: number): Promise<void> {
    const { js, writer, timeoutMs, attempts, logger } = this.#o;
    const h = headers();
    h.set(HDR_WRITER, writer);
    h.set(HDR_SEQ, String(seq));
    h.set(HDR_FRAMES, String(frames));
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      try {
        await js.publish(subjectOf(p), data, { msgID: `${writer}.${p}.${seq}`, headers: h, timeout: timeoutMs });
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

