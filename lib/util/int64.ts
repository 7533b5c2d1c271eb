// Signed and unsigned 64-bit integers written little-endian into bytes and
// read back, for the hot paths of countd-write (version-2 replies, op entries and
// producer trailers: several per frame). Buffer#writeBigUInt64LE and
// #writeBigInt64LE are JavaScript in Node.js 20 that makes several BigInts
// per call (~0.1-0.5 µs and garbage); storing the BigInt into a typed array
// converts it natively, and its 8 bytes are then copied one by one (a
// Buffer#copy of 8 bytes costs more than the loop). Same bytes, same range
// checks (RangeError) as the Buffer methods; on a big-endian machine those
// are used as they are.

const U64 = new BigUint64Array(1);
const I64 = new BigInt64Array(U64.buffer);
const BYTES = new Uint8Array(U64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const I64_MIN = -0x8000_0000_0000_0000n;
const I64_MAX = 0x7fff_ffff_ffff_ffffn;

function copyOut(target: Buffer, offset: number): void {
  if (offset < 0 || offset + 8 > target.length) throw new RangeError(`offset ${offset} is out of range for 8 bytes in ${target.length}`);
  target[offset] = BYTES[0]!;
  target[offset + 1] = BYTES[1]!;
  target[offset + 2] = BYTES[2]!;
  target[offset + 3] = BYTES[3]!;
  target[offset + 4] = BYTES[4]!;
  target[offset + 5] = BYTES[5]!;
  target[offset + 6] = BYTES[6]!;
  target[offset + 7] = BYTES[7]!;
}

/** target.writeBigUInt64LE(value, offset), faster. */
export function writeU64LE(target: Buffer, offset: number, value: bigint): void {
  if (!LITTLE_ENDIAN) {
    target.writeBigUInt64LE(value, offset);
    return;
  }
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) throw new RangeError(`${String(value)} is not an unsigned 64-bit integer`);
  U64[0] = value;
  copyOut(target, offset);
}

/** target.writeBigInt64LE(value, offset), faster. */
export function writeI64LE(target: Buffer, offset: number, value: bigint): void {
  if (!LITTLE_ENDIAN) {
    target.writeBigInt64LE(value, offset);
    return;
  }
  if (typeof value !== 'bigint' || value < I64_MIN || value > I64_MAX) throw new RangeError(`${String(value)} is not a signed 64-bit integer`);
  I64[0] = value;
  copyOut(target, offset);
}

function copyIn(source: Buffer, offset: number): void {
  if (offset < 0 || offset + 8 > source.length) throw new RangeError(`offset ${offset} is out of range for 8 bytes in ${source.length}`);
  BYTES[0] = source[offset]!;
  BYTES[1] = source[offset + 1]!;
  BYTES[2] = source[offset + 2]!;
  BYTES[3] = source[offset + 3]!;
  BYTES[4] = source[offset + 4]!;
  BYTES[5] = source[offset + 5]!;
  BYTES[6] = source[offset + 6]!;
  BYTES[7] = source[offset + 7]!;
}

/** source.readBigUInt64LE(offset), faster. */
export function readU64LE(source: Buffer, offset: number): bigint {
  if (!LITTLE_ENDIAN) return source.readBigUInt64LE(offset);
  copyIn(source, offset);
  return U64[0]!;
}

/** source.readBigInt64LE(offset), faster. */
export function readI64LE(source: Buffer, offset: number): bigint {
  if (!LITTLE_ENDIAN) return source.readBigInt64LE(offset);
  copyIn(source, offset);
  return I64[0]!;
}
