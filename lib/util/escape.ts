// How the CLI prints names (keyspaces, keys) that are byte strings, and how it
// reads them back from arguments. Names are usually UTF-8 but need not be
// (docs/protocol.md section 1), so output must stay one line per entry and lose no
// byte. The escaped form (README.md, "Names on the command line"):
//
//   \\      a backslash
//   \t \n \r  tab, line feed, carriage return
//   \xHH    any other byte that is not printable UTF-8: control characters
//           (U+0000-U+001F, U+007F-U+009F, each UTF-8 byte escaped) and every
//           byte of an invalid UTF-8 sequence
//
// Everything else (printable UTF-8) is printed as is. Arguments of the CLI
// (keyspace, key) are read in the same form, so output can be pasted back.

import { invalidArgument } from '../errors.js';

const HEX = '0123456789abcdef';

function hexByte(b: number): string {
  return '\\x' + HEX[b >> 4]! + HEX[b & 15]!;
}

/**
 * Length of the valid UTF-8 sequence starting at buf[i], or 0 when the bytes
 * there are not one (overlong forms, surrogates and code points above U+10FFFF
 * are invalid, as in RFC 3629).
 */
function utf8SequenceLength(buf: Uint8Array, i: number): number {
  const b0 = buf[i]!;
  if (b0 < 0x80) return 1;
  const cont = (j: number): boolean => j < buf.length && (buf[j]! & 0xc0) === 0x80;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(i + 1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const b1 = buf[i + 1];
    if (b1 === undefined || !cont(i + 1) || !cont(i + 2)) return 0;
    if (b0 === 0xe0 && b1 < 0xa0) return 0; // overlong
    if (b0 === 0xed && b1 >= 0xa0) return 0; // UTF-16 surrogate
    return 3;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const b1 = buf[i + 1];
    if (b1 === undefined || !cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (b0 === 0xf0 && b1 < 0x90) return 0; // overlong
    if (b0 === 0xf4 && b1 >= 0x90) return 0; // above U+10FFFF
    return 4;
  }
  return 0;
}

/** The escaped, printable form of a name (see the grammar at the top of this file). */
export function escapeName(name: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < name.length) {
    const b = name[i]!;
    if (b >= 0x20 && b < 0x7f) {
      out += b === 0x5c ? '\\\\' : String.fromCharCode(b);
      i++;
      continue;
    }
    if (b === 0x09) out += '\\t';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x0d) out += '\\r';
    else {
      const n = utf8SequenceLength(name, i);
      // C1 controls U+0080-U+009F are encoded c2 80 .. c2 9f: not printable.
      if (n === 0 || n === 1 || (n === 2 && b === 0xc2 && name[i + 1]! < 0xa0)) {
        const count = n === 2 ? 2 : 1;
        for (let j = 0; j < count; j++) out += hexByte(name[i + j]!);
        i += count;
        continue;
      }
      out += Buffer.from(name.subarray(i, i + n)).toString('utf8');
      i += n;
      continue;
    }
    i++;
  }
  return out;
}

/**
 * The bytes of a name given on the command line in escaped form. Throws
 * COUNTD_INVALID_ARGUMENT on a backslash sequence other than those above.
 */
export function unescapeName(text: string, what: string): Buffer {
  if (!text.includes('\\')) return Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let literal = '';
  const flush = (): void => {
    if (literal) parts.push(Buffer.from(literal, 'utf8'));
    literal = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\') {
      literal += c;
      continue;
    }
    const e = text[i + 1];
    if (e === '\\') literal += '\\';
    else if (e === 't') literal += '\t';
    else if (e === 'n') literal += '\n';
    else if (e === 'r') literal += '\r';
    else if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) {
      flush();
      parts.push(Buffer.from([parseInt(text.slice(i + 2, i + 4), 16)]));
      i += 3;
      continue;
    } else {
      throw invalidArgument(
        `${what} ${JSON.stringify(text)}: unknown escape at position ${i} (use \\\\ for a backslash, \\xHH for a byte)`,
      );
    }
    i++;
  }
  flush();
  return Buffer.concat(parts);
}
