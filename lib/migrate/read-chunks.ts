// Sequential, read-only reads of a legacy file in large chunks. The legacy
// directory is never modified: files are opened with O_RDONLY only.

import { promises as fsp } from 'node:fs';
import { translateFsError } from '../errors.js';

/** Bytes per read: 4,096 keyspace records (about 1 MiB), a whole multiple of the record size. */
export const CHUNK_RECORDS = 4096;

/**
 * Yield the file's bytes in chunks of `chunkSize` (the last may be shorter).
 * The yielded Buffer is reused: the consumer must be done with it before
 * asking for the next chunk, unless `fresh` (a new Buffer per chunk, for a
 * consumer that keeps views into it).
 */
export async function* readChunks(path: string | Buffer, chunkSize: number, what: string, fresh = false): AsyncGenerator<Buffer> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(path, 'r');
  } catch (err) {
    throw translateFsError(err, `open ${what}`);
  }
  let buf = Buffer.allocUnsafe(chunkSize);
  try {
    for (let first = true; ; first = false) {
      if (fresh && !first) buf = Buffer.allocUnsafe(chunkSize);
      let filled = 0;
      while (filled < chunkSize) {
        let n: number;
        try {
          ({ bytesRead: n } = await fh.read(buf, filled, chunkSize - filled, null));
        } catch (err) {
          throw translateFsError(err, `read ${what}`);
        }
        if (n === 0) break;
        filled += n;
      }
      if (filled > 0) yield buf.subarray(0, filled);
      if (filled < chunkSize) return;
    }
  } finally {
    await fh.close().catch(() => {});
  }
}
