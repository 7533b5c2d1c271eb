// The shape of lib/, checked so it stays true: small files, small functions,
// and dependencies that point one way (docs/architecture.md, "Module
// layout"). Reads the TypeScript sources, not the build.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const LIB = path.join(ROOT, 'lib');
const MAX_FILE_LINES = 600;
const MAX_FUNCTION_LINES = 80;

/**
 * The layers of lib/, bottom first: a module may import its own folder and
 * anything in a layer below its own, never a layer above, and never a
 * sideways folder of the same layer. A top-level file (`errors.ts`) is a
 * folder of its own.
 */
const LAYERS: string[][] = [
  ['errors.ts', 'metrics.ts'],
  ['util'],
  ['protocol'],
  ['datadir', 'commitlog'],
  ['store', 'client'],
  ['migrate', 'roles'],
  ['daemon'],
  ['http'],
  ['cli'],
  ['index.ts'],
];

function layerOf(folder: string): number {
  const i = LAYERS.findIndex((layer) => layer.includes(folder));
  if (i < 0) throw new Error(`lib/${folder} is in no layer of test/house/layout.test.ts: place it`);
  return i;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sources(full));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out.sort();
}

/** lib-relative path of a source, e.g. `store/state.ts`. */
function rel(file: string): string {
  return path.relative(LIB, file).split(path.sep).join('/');
}

function folderOf(relPath: string): string {
  const slash = relPath.indexOf('/');
  return slash < 0 ? relPath : relPath.slice(0, slash);
}

/** The lib-relative sources a file imports (static, dynamic and type-only imports and re-exports). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out = new Set<string>();
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'(\.{1,2}\/[^']+)'/gm;
  for (const m of text.matchAll(re)) {
    const target = path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts'));
    out.add(rel(target));
  }
  return [...out];
}

/**
 * Functions and methods longer than `max` lines, by indentation: the code is
 * formatted (prettier), so a declaration that opens a block at indentation n
 * closes it on the next line that starts with n spaces and `}`.
 */
function longFunctions(file: string, max: number): string[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const head =
    /^(\s*)(?:export\s+)?(?:default\s+)?(?:async\s+)?(?:function\s*\*?\s*[\w$]+|(?:(?:public|private|protected|static|readonly|override|async|get|set)\s+)*\*?\s*#?[\w$]+\s*(?:<[^>]*>)?\s*\(|(?:const|let)\s+[\w$]+\s*=\s*(?:async\s*)?(?:\([^)]*\)|[\w$]+)\s*(?::[^=]+)?=>)/;
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const m = head.exec(line);
    if (m === null || /^\s*(\*|\/\/|\/\*|if\b|for\b|while\b|switch\b|catch\b|return\b|await\b|throw\b|new\b|else\b|super\b)/.test(line)) continue;
    // The declaration may wrap its parameters: its body opens on the line
    // where the parentheses balance, which must end with `{`.
    let depth = 0;
    let open = i;
    for (; open < lines.length; open++) {
      for (const ch of lines[open]!) depth += ch === '(' ? 1 : ch === ')' ? -1 : 0;
      if (depth <= 0) break;
    }
    if (open >= lines.length || !/\{\s*$/.test(lines[open]!)) continue;
    const indent = m[1]!;
    let end = open + 1;
    while (end < lines.length && !(lines[end]!.startsWith(indent + '}') && !lines[end]!.startsWith(indent + ' '))) end++;
    const length = end - i + 1;
    if (length > max) out.push(`${rel(file)}:${i + 1} ${line.trim().slice(0, 60)} (${length} lines)`);
  }
  return out;
}

function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (state.get(next) === undefined) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (state.get(node) === undefined) visit(node);
  return found;
}

describe('the shape of lib/', () => {
  const files = sources(LIB);

  it('finds the sources', () => {
    assert.ok(files.length > 50, `only ${files.length} sources under ${LIB}`);
  });

  it(`no file above ${MAX_FILE_LINES} lines`, () => {
    const long = files.map((f) => [rel(f), fs.readFileSync(f, 'utf8').split('\n').length - 1] as const).filter(([, n]) => n > MAX_FILE_LINES);
    assert.deepEqual(long, []);
  });

  it(`no function above ${MAX_FUNCTION_LINES} lines`, () => {
    assert.deepEqual(files.flatMap((f) => longFunctions(f, MAX_FUNCTION_LINES)), []);
  });

  it('the function-length check sees a long function (it can fail)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'countd-layout-'));
    try {
      const file = path.join(dir, 'probe.ts');
      const body = Array.from({ length: 90 }, (_, i) => `    const x${i} = ${i};`).join('\n');
      fs.writeFileSync(file, `export class A {\n  private async run(a: number): Promise<void> {\n${body}\n  }\n}\nexport function f(\n  a: number,\n): number {\n${body}\n  return a;\n}\n`);
      assert.equal(longFunctions(file, MAX_FUNCTION_LINES).length, 2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every import resolves to a source in lib/', () => {
    const known = new Set(files.map(rel));
    const missing = files.flatMap((f) => importsOf(f).filter((t) => !known.has(t)).map((t) => `${rel(f)} -> ${t}`));
    assert.deepEqual(missing, []);
  });

  it('no import runs up a layer or sideways to another folder of the same layer', () => {
    const bad: string[] = [];
    for (const f of files) {
      const from = folderOf(rel(f));
      for (const target of importsOf(f)) {
        const to = folderOf(target);
        if (to === from) continue;
        if (layerOf(to) >= layerOf(from)) bad.push(`${rel(f)} -> ${target}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('no import cycle between files', () => {
    const graph = new Map(files.map((f) => [rel(f), importsOf(f)] as const));
    assert.deepEqual(cycles(graph), []);
  });

  it('docs/architecture.md lists every module', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8');
    const unlisted = files
      .map(rel)
      .filter((r) => !doc.includes(`\`${r}\``) && !(r.startsWith('cli/commands/') && doc.includes(`\`${path.basename(r)}\``)) && !doc.includes(`lib/${r}`));
    assert.deepEqual(unlisted, []);
  });

  it('CLI commands do not import each other', () => {
    const commands = files.filter((f) => rel(f).startsWith('cli/commands/') && !rel(f).endsWith('/index.ts'));
    const bad = commands.flatMap((f) => importsOf(f).filter((t) => t.startsWith('cli/commands/')).map((t) => `${rel(f)} -> ${t}`));
    assert.deepEqual(bad, []);
  });
});
