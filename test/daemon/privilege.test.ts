// countd as a service user: commit-log states are permission bits, so a
// process without CAP_DAC_OVERRIDE must be refused at once with a message
// naming the fix, and a service user granted that capability must work.
// The daemon runs under setpriv(1) as uid 65534 (tests run as root).

import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { mayOverrideModes, requireModeOverride } from '../../lib/commitlog/privilege.js';
import { isCountdError } from '../../lib/errors.js';
import { BIN, Daemon, countd, pollOutput, removeDir, tempDir } from '../cli/helpers.js';

const NOBODY = '65534';
const status = (capEff: string): string => `Name:\tnode\nUid:\t65534\t65534\t65534\t65534\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\n`;

function asNobody(args: string[], caps: boolean): ChildProcess {
  const priv = ['--reuid', NOBODY, '--regid', NOBODY, '--clear-groups'];
  if (caps) priv.push('--inh-caps', '+dac_override', '--ambient-caps', '+dac_override');
  const env = { ...process.env };
  delete env.COUNTD_DATA_DIR;
  return spawn('setpriv', [...priv, process.execPath, BIN(), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('commit-log pool privilege (CAP_DAC_OVERRIDE)', function () {
  this.timeout(30_000);
  let dir: string;
  const procs: ChildProcess[] = [];

  before(() => {
    // Never skipped: like the disk-full tests, these need root (to become uid 65534) and say so.
    assert.equal(process.getuid?.(), 0, 'the privilege tests run as root (npm test runs as root, as CI does)');
    assert.equal(spawnSync('setpriv', ['--version']).status, 0, 'setpriv(1) (util-linux) is needed to run the daemon as another user');
  });
  beforeEach(async () => {
    dir = await tempDir('privilege');
    await fsp.chmod(dir, 0o755);
    await fsp.chown(dir, Number(NOBODY), Number(NOBODY));
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await removeDir(dir);
  });

  it('reads CAP_DAC_OVERRIDE from the effective set', () => {
    assert.equal(mayOverrideModes(status('000001ffffffffff')), true);
    assert.equal(mayOverrideModes(status('0000000000000002')), true);
    assert.equal(mayOverrideModes(status('0000000000000000')), false);
    assert.equal(mayOverrideModes(status('00000000000000fd')), false);
    assert.throws(() => requireModeOverride('/x/commitlog', status('0000000000000000')), (e: unknown) => isCountdError(e, 'COUNTD_PERMISSION') && /CAP_DAC_OVERRIDE/.test((e as Error).message));
  });

  it('a service user without the capability is refused with COUNTD_PERMISSION, no stack trace, no lock left', async () => {
    const proc = asNobody(['start', '--data-dir', path.join(dir, 'data'), '--write-port', '0', '--read-port', '0'], false);
    procs.push(proc);
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    proc.stdout!.resume();
    const code = await new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
    assert.notEqual(code, 0);
    assert.match(stderr, /must run as root or with CAP_DAC_OVERRIDE \(uid 65534 has neither; under systemd: AmbientCapabilities=CAP_DAC_OVERRIDE\)/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
    const left = await fsp.readdir(path.join(dir, 'data'));
    assert.ok(!left.includes('daemon.lock') && !left.includes('daemon.json'), `left behind: ${left.join(', ')}`);
  });

  it('a service user with CAP_DAC_OVERRIDE runs the daemon: writes are acknowledged and readable', async () => {
    const data = path.join(dir, 'data');
    const proc = asNobody(['start', '--data-dir', data, '--write-port', '0', '--read-port', '0', '--handover-ms', '50'], true);
    procs.push(proc);
    const daemon = new Daemon(proc, data);
    proc.stdout!.resume();
    await daemon.record();
    const w = await countd(data, 'write', 'pages', 'home', '7');
    assert.equal(w.code, 0, w.stderr);
    await pollOutput(() => countd(data, 'get', 'pages', 'home'), (out) => /\b7\b/.test(out));
    const logs = await fsp.readdir(path.join(data, 'commitlog'));
    const owners = new Set(await Promise.all(logs.map(async (n) => (await fsp.stat(path.join(data, 'commitlog', n))).uid)));
    assert.deepEqual([...owners], [Number(NOBODY)], 'the pool belongs to the service user');
    const stopped = await daemon.stop();
    assert.equal(stopped.code, 0, daemon.stderr);
  });
});
