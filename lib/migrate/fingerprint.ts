// The fingerprint of a legacy source file: what `countd migrate` records in
// its marks to know whether a file was imported already and unchanged.
//
//   sha256( "countd-legacy-v1" 0x00 <relative path bytes> 0x00 <size, decimal ASCII> 0x00 <content> )
//
// The path makes two identical files under different names distinct sources;
// the size is redundant with the content but cheap and makes intent plain.

import { createHash, type Hash } from 'node:crypto';
import { readChunks } from './read-chunks.js';

const DOMAIN = 'countd-legacy-v1';

export function fingerprintHash(relativePath: Buffer, size: number): Hash {
  const hash = createHash('sha256');
  hash.update(DOMAIN);
  hash.update(Buffer.from([0]));
  hash.update(relativePath);
  hash.update(Buffer.from([0]));
  hash.update(String(size));
  hash.update(Buffer.from([0]));
  return hash;
}

/** The fingerprint of a set of source fingerprints (order-independent). */
export function combineFingerprints(fingerprints: string[]): string {
  const hash = createHash('sha256');
  for (const fp of [...fingerprints].sort()) hash.update(fp + '\n');
  return hash.digest('hex');
}

/** Fingerprint a whole file (read-only, in chunks). */
export async function fingerprintFile(path: string | Buffer, relativePath: Buffer, size: number, what: string, onBytes?: (n: number) => void): Promise<string> {
  const hash = fingerprintHash(relativePath, size);
  // A buffer no bigger than the file needs (thousands of small files: see keyspace-file.ts).
  for await (const chunk of readChunks(path, Math.min(1 << 20, Math.max(size, 4096)), what)) {
    hash.update(chunk);
    onBytes?.(chunk.length);
  }
  return hash.digest('hex');
}
