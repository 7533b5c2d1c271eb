// The bytes a worked example of docs/ prints: the first code block of a
// section, each line's hex bytes before its comment (two spaces or more),
// a line with `…` NUL-padded to a 256-byte field.

/** The bytes of the first code block of `section`. */
export function docBlockBytes(section: string): Buffer {
  const block = /```\n([\s\S]*?)```/.exec(section)![1]!;
  const bytes: number[] = [];
  for (const line of block.split('\n')) {
    const hex = line.split(/ {2,}/)[0]!.trim();
    if (hex === '' || !/^[0-9a-f]{2}( |$)/.test(hex)) continue;
    const field = hex.replace('…', '').trim().split(/\s+/).map((h) => parseInt(h, 16));
    if (hex.includes('…')) while (field.length < 256) field.push(0);
    bytes.push(...field);
  }
  return Buffer.from(bytes);
}

/** The bytes of every code block of `section`, in order (blocks without bytes left out). */
export function docBlocksBytes(section: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of section.matchAll(/```\n[\s\S]*?```/g)) {
    const b = docBlockBytes(m[0]);
    if (b.length > 0) out.push(b);
  }
  return out;
}
