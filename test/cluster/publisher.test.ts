// The cluster writer's publisher (lib/cluster/publisher.ts) against a real
// nats-server with JetStream: group commits published while a partition's
// message is in flight are coalesced into ONE next message of that partition
// (a group commit of publishes), each partition's writer sequences are 1, 2,
// 3, ... in stream order with every entry exactly once; and a publish that
// fails for good rejects its group commit and those waiting behind it in the
// partition, which are never sent.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DeliverPolicy } from '@nats-io/jetstream';
import { ENTRY_FIXED_SIZE, RECORD_BATCH, encodeEntry, forEachEntryAt } from '../../lib/commitlog/format.js';
import { decodeMessage } from '../../lib/cluster/message.js';
import { connectCluster } from '../../lib/cluster/nats.js';
import { STREAM, partitionOf, subjectOf } from '../../lib/cluster/partition.js';
import { Publisher } from '../../lib/cluster/publisher.js';
import { silentLogger } from '../../lib/util/log.js';
import { NatsCluster } from '../harness/nats-cluster.js';

const SIZES = { keyspaceSize: 16, keySize: 16 };

/** Entries of one group commit: key `c<commit>-<i>` of keyspace `ks` by 1, `n` of them. */
function commitEntries(commit: number, keyspaces: string[], n: number): Buffer {
  const out = Buffer.alloc(n * (ENTRY_FIXED_SIZE + 32));
  let at = 0;
  for (let i = 0; i < n; i++) at = encodeEntry(out, at, BigInt(commit + 1), Buffer.from(keyspaces[i % keyspaces.length]!), Buffer.from(`c${commit}-${i}`));
  return out.subarray(0, at);
}

describe('cluster publisher: a group commit of publishes per partition (real nats-server)', function () {
  this.timeout(60_000);
  let root: string;
  let nats: NatsCluster;
  let conn: Awaited<ReturnType<typeof connectCluster>>;

  before(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-publisher-'));
    nats = await NatsCluster.start(root, 1);
    conn = await connectCluster({ servers: nats.urls.split(','), replicas: 1, name: 'publisher test' });
  });

  after(async () => {
    await conn?.close().catch(() => {});
    await nats?.stopAll();
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('coalesces the group commits that wait behind an in-flight message, with consecutive sequences and every entry once', async () => {
    const publisher = new Publisher({ js: conn.js, writer: randomBytes(8), logger: silentLogger });
    const keyspaces = ['alpha', 'bravo', 'charlie'];
    const before = (await conn.jsm.streams.info(STREAM)).state.last_seq;
    const COMMITS = 40;
    // All at once, as overlapping group commits are: only the first goes out at once per partition.
    await Promise.all(Array.from({ length: COMMITS }, (_, c) => publisher.publish(commitEntries(c, keyspaces, 6), RECORD_BATCH)));
    const partitions = new Set(keyspaces.map((k) => partitionOf(Buffer.from(k))));
    assert.equal(publisher.messages, (await conn.jsm.streams.info(STREAM)).state.last_seq - before);
    assert.ok(publisher.messages < COMMITS * partitions.size, `${publisher.messages} messages for ${COMMITS} group commits × ${partitions.size} partitions: coalesced`);
    assert.ok(publisher.messages >= 2 * partitions.size, 'the first commit went out alone in each partition');

    // Read the stream back: per partition, sequences 1..n in stream order, every entry exactly once.
    const seen = new Map<string, bigint>();
    for (const p of partitions) {
      const consumer = await conn.js.consumers.get(STREAM, { filter_subjects: subjectOf(p), deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: before + 1 });
      const pending = (await consumer.info()).num_pending;
      let expectSeq = 1;
      for (let got = 0; got < pending; ) {
        const batch = await consumer.fetch({ max_messages: pending - got, expires: 5000 });
        for await (const m of batch) {
          got++;
          const msg = decodeMessage(Buffer.from(m.data), SIZES);
          assert.equal(msg.seq, expectSeq++, `partition ${p}: sequences in stream order without a gap`);
          let frames = 0;
          forEachEntryAt(msg.entries, (off, ksLen, keyLen) => {
            frames++;
            const ks = msg.entries.subarray(off + ENTRY_FIXED_SIZE, off + ENTRY_FIXED_SIZE + ksLen).toString();
            const key = msg.entries.subarray(off + ENTRY_FIXED_SIZE + ksLen, off + ENTRY_FIXED_SIZE + ksLen + keyLen).toString();
            assert.equal(partitionOf(Buffer.from(ks)), p, `${ks} in partition ${p}'s message`);
            assert.ok(!seen.has(`${ks}/${key}`), `${ks}/${key} published once`);
            seen.set(`${ks}/${key}`, msg.entries.readBigInt64LE(off));
          });
          assert.equal(frames, msg.frames);
        }
      }
    }
    assert.equal(seen.size, COMMITS * 6, 'every entry of every group commit is in the stream');
    for (let c = 0; c < COMMITS; c++) for (let i = 0; i < 6; i++) assert.equal(seen.get(`${keyspaces[i % 3]}/c${c}-${i}`), BigInt(c + 1));
  });

  it('a publish that fails for good rejects its group commit and the ones waiting behind it, which are not sent', async () => {
    const publisher = new Publisher({ js: conn.js, writer: randomBytes(8), logger: silentLogger, timeoutMs: 300, attempts: 2 });
    const before = (await conn.jsm.streams.info(STREAM)).state.last_seq;
    await nats.stop(0);
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, (_, c) => publisher.publish(commitEntries(c, ['alpha'], 2), RECORD_BATCH)));
    assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'rejected', 'rejected', 'rejected', 'rejected']);
    assert.match(String((outcomes[0] as PromiseRejectedResult).reason.message), /did not acknowledge partition \d+ message 1 after 2 attempts/);
    assert.equal(publisher.messages, 1, 'only the first message was attempted; the commits behind it failed unsent');
    await nats.start(0);
    // The server is back: the next group commit goes out as the partition's next message.
    await waitFor(() => conn.jsm.streams.info(STREAM).then(() => true, () => false));
    await publisher.publish(commitEntries(9, ['alpha'], 1), RECORD_BATCH);
    assert.equal(publisher.messages, 2);
    assert.ok((await conn.jsm.streams.info(STREAM)).state.last_seq > before);
  });
});

async function waitFor(cond: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}
