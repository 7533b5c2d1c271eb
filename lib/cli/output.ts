// What the CLI prints on stdout. Text: `key<TAB>count` per line, names in the
// escaped form of escape.ts. JSON (--json): one object per line; counts are
// written as exact integer numerals (JSON.stringify cannot write a bigint,
// and a Number would round counts past 2^53), names as escaped strings.

import { escapeName } from '../util/escape.js';

export type Field = { name: string; value: bigint | number | string | Uint8Array | boolean | null };

/** One output line: text fields joined by TAB, or a JSON object with the same fields. */
export function formatLine(fields: Field[], json: boolean): string {
  if (!json) return fields.map((f) => textValue(f.value)).join('\t') + '\n';
  return '{' + fields.map((f) => `${JSON.stringify(f.name)}: ${jsonValue(f.value)}`).join(', ') + '}\n';
}

function textValue(v: Field['value']): string {
  if (v instanceof Uint8Array) return escapeName(v);
  return String(v);
}

function jsonValue(v: Field['value']): string {
  if (typeof v === 'bigint') return v.toString(); // exact, even past 2^53
  if (v instanceof Uint8Array) return JSON.stringify(escapeName(v));
  return JSON.stringify(v);
}

/** An entry line: key and count. */
export function entryLine(key: Uint8Array, count: bigint, json: boolean, rank?: bigint): string {
  const fields: Field[] = [];
  if (rank !== undefined) fields.push({ name: 'rank', value: rank });
  fields.push({ name: 'key', value: key }, { name: 'count', value: count });
  return formatLine(fields, json);
}

/**
 * Buffered stdout that respects backpressure (dump of millions of lines) and
 * stops quietly when the reader goes away (`countd dump x | head`).
 */
export class Output {
  #chunks: string[] = [];
  #bytes = 0;
  #closed = false;
  readonly #stream: NodeJS.WritableStream;

  constructor(stream: NodeJS.WritableStream = process.stdout) {
    this.#stream = stream;
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') this.#closed = true;
    });
  }

  /** True once the reader closed the pipe: stop producing. */
  get closed(): boolean {
    return this.#closed;
  }

  async write(line: string): Promise<void> {
    if (this.#closed) return;
    this.#chunks.push(line);
    this.#bytes += line.length;
    if (this.#bytes >= 65536) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#chunks.length === 0 || this.#closed) return;
    const data = this.#chunks.join('');
    this.#chunks = [];
    this.#bytes = 0;
    const ok = this.#stream.write(data);
    if (!ok && !this.#closed) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.#stream.off('drain', done);
          this.#stream.off('error', done);
          resolve();
        };
        this.#stream.on('drain', done);
        this.#stream.on('error', done);
      });
    }
  }
}
