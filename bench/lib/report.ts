// Tables for the terminal and for BENCHMARKS.md, and the section writer:
// each benchmark owns the part of BENCHMARKS.md between
//   <!-- bench:<name>:start -->  and  <!-- bench:<name>:end -->
// and replaces only that, so the sections other benchmarks write survive.

import { promises as fsp } from 'node:fs';
import { errnoCode } from '../../lib/errors.js';

export type Cell = string | number | undefined;

export interface Table {
  headers: string[];
  rows: Cell[][];
  /** Columns (by index) aligned left; the others align right. Default: the first. */
  leftColumns?: number[];
}

function cellText(c: Cell): string {
  if (c === undefined) return '–';
  return typeof c === 'number' ? formatNumber(c) : c;
}

/** 12345.6 → "12,346"; 1.234 → "1.23"; 0.0123 → "0.012". */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 100) return Math.round(n).toLocaleString('en-US');
  if (abs >= 10) return n.toFixed(1);
  if (abs >= 0.1) return n.toFixed(2);
  if (abs === 0) return '0';
  return n.toPrecision(2);
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${Math.round(n)} B`;
}

/** A ratio a / b as "1.52x", or undefined when either side is missing. */
export function ratio(a: number | undefined, b: number | undefined): string | undefined {
  if (a === undefined || b === undefined || b === 0) return undefined;
  return `${(a / b).toFixed(2)}x`;
}

/** Plain-text table with aligned columns, for the terminal. */
export function textTable(t: Table): string {
  const left = new Set(t.leftColumns ?? [0]);
  const cells = [t.headers, ...t.rows.map((r) => r.map(cellText))];
  const widths = t.headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** GitHub-flavoured Markdown table. */
export function markdownTable(t: Table): string {
  const left = new Set(t.leftColumns ?? [0]);
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const out = [
    `| ${t.headers.map(esc).join(' | ')} |`,
    `| ${t.headers.map((_, i) => (left.has(i) ? '---' : '---:')).join(' | ')} |`,
  ];
  for (const r of t.rows) out.push(`| ${r.map((c) => esc(cellText(c))).join(' | ')} |`);
  return out.join('\n');
}

const FILE_HEADER = `# Benchmarks

Figures measured by the scripts in \`bench/\` (\`npm run bench\` and \`npm run bench:*\`).
Each section below is rewritten by the benchmark that owns it; numbers from
different machines are not comparable, so every section names its machine.
`;

export function sectionMarkers(name: string): { start: string; end: string } {
  return { start: `<!-- bench:${name}:start -->`, end: `<!-- bench:${name}:end -->` };
}

/**
 * Replace the section `name` of a Markdown file with `body` (markers kept),
 * appending the section when the file lacks it and creating the file when
 * missing. Everything outside the markers is left as it was.
 */
export function replaceSection(text: string, name: string, body: string): string {
  const { start, end } = sectionMarkers(name);
  const block = `${start}\n${body.trimEnd()}\n${end}`;
  const i = text.indexOf(start);
  const j = i < 0 ? -1 : text.indexOf(end, i + start.length);
  if (i >= 0 && j >= 0) return text.slice(0, i) + block + text.slice(j + end.length);
  const base = text.trim() === '' ? FILE_HEADER : text.endsWith('\n') ? text : text + '\n';
  return `${base}\n${block}\n`;
}

export async function writeSection(file: string, name: string, body: string): Promise<void> {
  let text = '';
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  // Write a temp file and rename: an interrupted run never leaves half a file.
  const tmp = `${file}.tmp-${process.pid}`;
  await fsp.writeFile(tmp, replaceSection(text, name, body));
  await fsp.rename(tmp, file);
}
