// Shared helpers of the migration tests: temp dirs, a byte-and-mode snapshot
// of a directory tree, and reading a data directory's whole content back.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isCountdError } from '../../lib/errors.js';
import { Store } from '../../lib/store/store.js';
import type { FieldSizes } from '../../lib/protocol/fields.js';

const dirs: string[] = [];

export async function tempDir(): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'countd-test-migrate-'));
  dirs.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  for (const dir of dirs.splice(0)) await fsp.rm(dir, { recursive: true, force: true });
}

/** Every entry under `root` (names as latin1): type, permission bits, link count, sha256 of content. */
export async function snapshotTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: Buffer, rel: string): Promise<void> => {
    for (const e of (await fsp.readdir(dir, { encoding: 'buffer' })).sort(Buffer.compare)) {
      const full = Buffer.concat([dir, Buffer.from('/'), e]);
      const name = rel + '/' + e.toString('latin1');
      const st = await fsp.lstat(full);
      if (st.isDirectory()) {
        out[name] = `dir ${(st.mode & 0o7777).toString(8)}`;
        await walk(full, name);
      } else {
        const sha = createHash('sha256').update(await fsp.readFile(full)).digest('hex');
        out[name] = `file ${(st.mode & 0o7777).toString(8)} nlink ${st.nlink} size ${st.size} ${sha}`;
      }
    }
  };
  await walk(Buffer.from(root), '');
  return out;
}

/** keyspace (latin1) -> key (latin1) -> count, read through the Store. */
export async function readStore(dataDir: string, sizes: FieldSizes = { keyspaceSize: 256, keySize: 256 }): Promise<Record<string, Record<string, bigint>>> {
  const store = await Store.open({ location: path.join(dataDir, 'db'), sizes });
  try {
    const out: Record<string, Record<string, bigint>> = {};
    for (const ks of await store.keyspaces()) {
      const entries: Record<string, bigint> = {};
      for await (const e of store.iterate(ks.name)) entries[e.key.toString('latin1')] = e.count;
      out[ks.name.toString('latin1')] = entries;
    }
    return out;
  } finally {
    await store.close();
  }
}

/** The content a migration of the legacy fixture into a 256/256 data directory must produce. */
export const FIXTURE_EXPECTED: Record<string, Record<string, bigint>> = {
  // keyspace file + log 0 (apple +5, elderberry +2) + log 1 (apple +1); the clean log's +1000 not replayed
  fruit: { apple: 56n, banana: 30n, cherry: 20n, date: 0n, elderberry: 2n },
  // out of order is fine; bob -1 from log 0; the empty key and the junk key skipped
  scores: { alice: 5n, bob: 9n, carol: -3n },
  // only in the logs: x +7 -7 = 0 (exists), y +3
  newks: { x: 0n, y: 3n },
  ['l'.repeat(100)]: { k: 1n },
  'long-keys': { ['K'.repeat(256)]: 2n, short: 1n },
  [Buffer.from([0x63, 0xff, 0x73]).toString('latin1')]: { [Buffer.from([0x6b, 0xfe]).toString('latin1')]: 42n },
};

/** The same with the fixture's lock link on clean log 2: the writer's log in progress, its +1000 replayed. */
export const FIXTURE_EXPECTED_WITH_LOCK: Record<string, Record<string, bigint>> = {
  ...FIXTURE_EXPECTED,
  fruit: { ...FIXTURE_EXPECTED.fruit, apple: 1056n },
};

/** Expect `p` to reject with a CountdError of `code` whose message matches `pattern`. */
export async function rejectsWith(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<Error> {
  try {
    await p;
  } catch (err) {
    assert.ok(isCountdError(err), `expected a CountdError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail(`expected ${code}`);
}
