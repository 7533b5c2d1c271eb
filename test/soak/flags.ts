// The numeric flags of the soak scripts: `--name N`, a non-negative integer.

/** The value of `--name` on the command line, or `fallback`; exits 2 (naming `program`) when it is not a non-negative integer. */
export function numericFlag(program: string, name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) {
    process.stderr.write(`${program}: --${name} needs a non-negative integer\n`);
    process.exit(2);
  }
  return v;
}
