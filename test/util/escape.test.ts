import assert from 'node:assert/strict';
import { escapeName, unescapeName } from '../../lib/util/escape.js';
import { isCountdError } from '../../lib/errors.js';

describe('CLI name escaping', () => {
  const cases: Array<[string, Buffer, string]> = [
    ['printable ASCII', Buffer.from('home page'), 'home page'],
    ['UTF-8', Buffer.from('größe ✓ 😀'), 'größe ✓ 😀'],
    ['backslash', Buffer.from('a\\b'), 'a\\\\b'],
    ['tab, newline, CR', Buffer.from('a\tb\nc\rd'), 'a\\tb\\nc\\rd'],
    ['other control bytes', Buffer.from([0x01, 0x1f, 0x7f]), '\\x01\\x1f\\x7f'],
    ['C1 control U+0085', Buffer.from('a\u0085b'), 'a\\xc2\\x85b'],
    ['invalid byte', Buffer.from([0x6b, 0xff]), 'k\\xff'],
    ['lone continuation byte', Buffer.from([0x80]), '\\x80'],
    ['truncated sequence', Buffer.from([0xe2, 0x9c]), '\\xe2\\x9c'],
    ['overlong encoding', Buffer.from([0xc0, 0xaf]), '\\xc0\\xaf'],
    ['UTF-16 surrogate', Buffer.from([0xed, 0xa0, 0x80]), '\\xed\\xa0\\x80'],
    ['above U+10FFFF', Buffer.from([0xf4, 0x90, 0x80, 0x80]), '\\xf4\\x90\\x80\\x80'],
  ];
  for (const [name, bytes, text] of cases) {
    it(`${name}: escapes and reads back`, () => {
      assert.equal(escapeName(bytes), text);
      assert.deepEqual(unescapeName(text, 'key'), bytes);
    });
  }

  it('every single byte and pair of bytes round-trips and stays on one line', () => {
    for (let a = 1; a < 256; a++) {
      for (const b of [0x41, 0x80, 0xbf, 0xc3, 0xff]) {
        const bytes = Buffer.from([a, b]);
        const text = escapeName(bytes);
        assert.ok(!/[\n\r\t]/.test(text), text);
        assert.deepEqual(unescapeName(text, 'key'), bytes, text);
      }
    }
  });

  it('rejects unknown escapes and incomplete \\x', () => {
    for (const bad of ['a\\q', 'a\\', 'a\\x4', 'a\\xzz']) {
      assert.throws(() => unescapeName(bad, 'key'), (err) => isCountdError(err, 'COUNTD_INVALID_ARGUMENT'), bad);
    }
  });
});
