// Helpers of the worker tests: fill a data directory's commit-log pool with
// dirty logs through the real write path (CommitLogWriter), keeping an exact
// model of what the frames add up to.

import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CommitLogWriter } from '../../lib/commitlog/writer.js';
import { encodeEntry, entrySize } from '../../lib/commitlog/format.js';
import { DataDir, openDataDir } from '../../lib/datadir/meta.js';
import { FieldSizes } from '../../lib/protocol/fields.js';
import { ModelStore } from './reader-helpers.js';

export interface Frame {
  increment: bigint;
  keyspace: Buffer;
  key: Buffer;
}

export async function tempDataDir(sizes: FieldSizes, tag = 'worker'): Promise<DataDir> {
  const root = await mkdtemp(path.join(os.tmpdir(), `countd-test-${tag}-`));
  return openDataDir(path.join(root, 'data'), { sizes });
}

/** Encode frames as one append's entries. */
export function entries(frames: readonly Frame[]): Buffer {
  let n = 0;
  for (const f of frames) n += entrySize(f.keyspace.length, f.key.length);
  const buf = Buffer.allocUnsafe(n);
  let at = 0;
  for (const f of frames) at = encodeEntry(buf, at, f.increment, f.keyspace, f.key);
  return buf;
}

/**
 * Append `frames` through a CommitLogWriter, `perAppend` frames per append,
 * then close it: every log it filled is sealed and dirty. Adds every frame to
 * `model`, if given.
 */
export async function writeFrames(
  dataDir: DataDir,
  frames: readonly Frame[],
  options: { logSize?: number; perAppend?: number; model?: ModelStore } = {},
): Promise<void> {
  const writer = await CommitLogWriter.open({
    dir: dataDir.paths.commitlog,
    sizes: dataDir.sizes,
    logSize: options.logSize ?? 64 * 1024,
    handoverMs: 60_000,
  });
  const per = options.perAppend ?? 100;
  try {
    for (let i = 0; i < frames.length; i += per) {
      const chunk = frames.slice(i, i + per);
      await writer.append(entries(chunk), chunk.length);
    }
  } finally {
    await writer.close();
  }
  for (const f of frames) options.model?.add(f.keyspace, f.key, f.increment);
}

export function frame(increment: bigint, keyspace: string, key: string): Frame {
  return { increment, keyspace: Buffer.from(keyspace), key: Buffer.from(key) };
}
