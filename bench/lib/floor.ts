// The disk's floor for one durable write: pwrite of one 520-byte frame, then
// fdatasync, on a preallocated file (the file never grows, as with countd's
// commit logs), one after another from a single thread with no event loop in
// between. No server can acknowledge a durable write faster than this on
// the same disk; the sweep prints it beside countd and Redis. With `dsync`,
// the same write on a descriptor opened O_DSYNC, no fdatasync (what
// countd's commit log does by default): the floor of that one call.

import fs from 'node:fs';
import path from 'node:path';
import { LatencyHistogram } from './latency-load.js';

export interface FloorResult {
  /** Write size, bytes. */
  bytes: number;
  writes: number;
  perSecond: number;
  p50Us: number;
  p99Us: number;
}

/** Measure for `seconds` in a fresh preallocated file of `fileSize` bytes under `dir` (removed after). */
export function measureFloor(dir: string, seconds: number, bytes = 520, fileSize = 2 * 1024 * 1024, dsync = false): FloorResult {
  const file = path.join(dir, `floor-${process.pid}.tmp`);
  let fd = fs.openSync(file, 'w+');
  try {
    const zeros = Buffer.alloc(1024 * 1024);
    for (let off = 0; off < fileSize; off += zeros.length) fs.writeSync(fd, zeros, 0, Math.min(zeros.length, fileSize - off), off);
    fs.fsyncSync(fd);
    if (dsync) {
      fs.closeSync(fd);
      fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_DSYNC);
    }
    const frame = Buffer.alloc(bytes, 0x61);
    const histogram = new LatencyHistogram();
    let position = 0;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    let now = t0;
    while (now < end) {
      if (position + bytes > fileSize) position = 0;
      fs.writeSync(fd, frame, 0, bytes, position);
      if (!dsync) fs.fdatasyncSync(fd);
      position += bytes;
      const after = performance.now();
      histogram.record((after - now) * 1000);
      now = after;
    }
    const elapsed = (now - t0) / 1000;
    return { bytes, writes: histogram.total, perSecond: histogram.total / elapsed, p50Us: histogram.quantile(0.5), p99Us: histogram.quantile(0.99) };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}
