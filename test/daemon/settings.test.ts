// The daemon's settings table (lib/daemon/settings.ts) drives everything a
// daemon flag needs: the programs' yargs options and --help, the parsing and
// checking of its value, the typed settings object, and what `countd start`
// hands its children (the ChildSpec in their environment).

import assert from 'node:assert/strict';
import { PROGRAMS, SETTINGS, flagOf, settingOptions, settingsOf, type DaemonSettings, type Program } from '../../lib/daemon/settings.js';
import { CHILD_SPEC_ENV, childEnv, type ChildSpec } from '../../lib/daemon/supervisor.js';
import { programParser } from '../../lib/cli/parser.js';
import { withOptions } from '../../lib/cli/options.js';
import { UsageError } from '../../lib/util/flag-values.js';
import { run } from '../cli/helpers.js';

/** A value other than the default for every setting: [flag text, typed value]. */
const GIVEN: { [K in keyof DaemonSettings]: [string[], DaemonSettings[K]] } = {
  dataDir: [['/srv/countd-test'], '/srv/countd-test'],
  debug: [[], true],
  listen: [['127.0.0.2'], '127.0.0.2'],
  writePort: [['41001'], 41001],
  readPort: [['41002'], 41002],
  metricsPort: [['41003'], 41003],
  httpPort: [['41004'], 41004],
  logSize: [['1048576'], 1048576],
  handoverMs: [['250'], 250],
  backlogSoft: [['8MiB'], 8 * 1024 * 1024],
  backlogHard: [['16MiB'], 16 * 1024 * 1024],
  pageLimit: [['500'], 500],
  maxConnections: [['77'], 77],
  idleTimeoutMs: [['9000'], 9000],
  storeNice: [['7'], 7],
  memory: [['1GiB'], 1024 * 1024 * 1024],
  storeMemory: [['512MiB'], 512 * 1024 * 1024],
  nats: [['nats://127.0.0.1:4222,127.0.0.2:4223'], ['nats://127.0.0.1:4222', '127.0.0.2:4223']],
  natsReplicas: [['1'], 1],
  natsSnapshotMs: [['5000'], 5000],
  natsPurge: [['always'], 'always'],
  logFormat: [['json'], 'json'],
  keyspaceSize: [['64'], 64],
  keySize: [['32'], 32],
};

const KEYS = Object.keys(SETTINGS) as Array<keyof DaemonSettings>;

/** The command line of `program` that gives every setting it takes its GIVEN value. */
function commandLine(program: Program): string[] {
  const out: string[] = [];
  for (const key of KEYS) {
    const f = flagOf(key, program);
    if (f !== undefined) out.push(`--${f.flag}`, ...GIVEN[key][0]);
  }
  return out;
}

async function parse(program: Program, args: string[]): Promise<Record<string, unknown>> {
  return (await withOptions(programParser(args, `test-${program}`, '$0'), settingOptions(program)).parseAsync()) as Record<string, unknown>;
}

describe('daemon settings (lib/daemon/settings.ts)', () => {
  it('the test covers every setting (a new one needs a value here)', () => {
    assert.deepEqual(Object.keys(GIVEN).sort(), [...KEYS].sort());
  });

  it('countd start takes every setting', () => {
    assert.deepEqual(KEYS.filter((k) => flagOf(k, 'start') === undefined), []);
  });

  for (const program of PROGRAMS) {
    it(`${program}: every setting it takes parses from its flag into the typed object; the others keep their fallback`, async () => {
      const settings = settingsOf(program, await parse(program, commandLine(program)));
      for (const key of KEYS) {
        const expected = flagOf(key, program) === undefined ? SETTINGS[key].fallback() : GIVEN[key][1];
        assert.deepEqual(settings[key], expected, key);
      }
    });
  }

  it('with no flags, every setting is its default (the yargs default, else the fallback)', async () => {
    const settings = settingsOf('start', await parse('start', []));
    assert.equal(settings.listen, '127.0.0.1');
    assert.equal(settings.writePort, 48879);
    assert.equal(settings.readPort, 48880);
    assert.equal(settings.storeNice, 4);
    assert.equal(settings.memory, 512 * 1024 * 1024);
    assert.equal(settings.storeMemory, 292 * 1024 * 1024, "the store child's share of --memory: 512 MiB less the supervisor's 72 and the writer's 96, less 15% for the allocator");
    assert.equal(settings.logFormat, 'text');
    assert.equal(settings.metricsPort, undefined);
    const worker = settingsOf('worker', await parse('worker', []));
    assert.equal(worker.readPort, undefined, 'countd-worker serves reads only with --read-port');
  });

  it("--memory alone sets the store child's share; --store-memory sets it apart", async () => {
    const two = settingsOf('start', await parse('start', ['--memory', '2GiB']));
    assert.equal(two.storeMemory, Math.floor((2048 - 168) * 0.85) * 1024 * 1024);
    const apart = settingsOf('start', await parse('start', ['--memory', '2GiB', '--store-memory', '300MiB']));
    assert.equal(apart.storeMemory, 300 * 1024 * 1024);
    const worker = settingsOf('worker', await parse('worker', []));
    assert.equal(worker.storeMemory, 292 * 1024 * 1024, "countd-worker's default: the store's share of the default --memory");
  });

  it('every setting with a parser rejects a bad value with a UsageError naming its flag', async () => {
    for (const key of KEYS) {
      const f = flagOf(key, 'start')!;
      if (f.option.coerce === undefined && f.option.choices === undefined) continue;
      await assert.rejects(parse('start', [`--${f.flag}`, ' ']), (err: unknown) => {
        assert.ok(err instanceof UsageError || (err as Error).name === 'YError', `${key}: ${String(err)}`);
        assert.match((err as Error).message, new RegExp(f.flag.replace(/-/g, '.')), key);
        return true;
      });
    }
  });

  it('round-trips whole through the ChildSpec a child of countd start receives', async () => {
    const settings = settingsOf('start', await parse('start', commandLine('start')));
    for (const kind of ['writer', 'store'] as const) {
      const env = childEnv({ kind, settings });
      const spec = JSON.parse(env[CHILD_SPEC_ENV]!) as ChildSpec;
      assert.equal(spec.kind, kind);
      assert.deepEqual(spec.settings, settings);
    }
  });

  it('`countd start --help` and each role binary`s --help list every flag of their settings', async function () {
    this.timeout(20_000);
    const bins: Record<Program, { bin?: string; args: string[] }> = {
      start: { args: ['start', '--help'] },
      write: { bin: 'countd-write', args: ['--help'] },
      worker: { bin: 'countd-worker', args: ['--help'] },
      read: { bin: 'countd-read', args: ['--help'] },
    };
    const results = await Promise.all(PROGRAMS.map((p) => run(bins[p].args, bins[p].bin === undefined ? {} : { bin: bins[p].bin! })));
    PROGRAMS.forEach((program, i) => {
      const r = results[i]!;
      assert.equal(r.code, 0, `${program}: ${r.stderr}`);
      for (const flag of Object.keys(settingOptions(program))) assert.match(r.stdout, new RegExp(`--${flag}\\b`), `${program} --help lacks --${flag}`);
    });
  });
});
