// The countd admin CLI, run as the real bin/countd on temp data directories.

import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Client } from '../../lib/client/client.js';
import { HEADER_SIZE, RECORD_HEADER_SIZE } from '../../lib/commitlog/format.js';
import { storeChildSettingsFor } from '../../lib/roles/memory-budget.js';
import { Daemon, ROOT, RoleProcess, RunResult, countd, flipByte, isAlive, isOneCleanLine, killAll, pollOutput, removeDir, run, startDaemon, startRole, tempDir, waitFor } from './helpers.js';

const BIG = 2n ** 53n + 1n; // not representable as a double
const NON_UTF8_KEY = 'k\\xff\\x01'; // escaped form of the bytes 6b ff 01

describe('countd CLI', function () {
  this.timeout(30_000);
  const dirs: string[] = [];
  const fresh = async (): Promise<string> => {
    const d = await tempDir();
    dirs.push(d);
    return d;
  };

  after(async () => {
    await killAll();
    for (const d of dirs) await removeDir(d);
  });

  describe('help and version', () => {
    it('--version prints the version of package.json', async () => {
      const pkg = JSON.parse(await fsp.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
      const r = await run(['--version']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), pkg.version);
    });

    it('--help lists every command', async () => {
      const r = await run(['--help']);
      assert.equal(r.code, 0);
      for (const c of ['start', 'status', 'write', 'set', 'delete', 'create', 'read', 'dump', 'get', 'rank', 'around', 'keyspaces', 'commitlog']) {
        assert.match(r.stdout, new RegExp(`countd ${c}\\b`), c);
      }
    });

    it('every command has --help', async () => {
      const names = ['start', 'status', 'write', 'set', 'delete', 'create', 'read', 'dump', 'get', 'rank', 'around', 'keyspaces', 'commitlog'];
      const results = await Promise.all(names.map((c) => run([c, '--help'])));
      names.forEach((c, i) => {
        assert.equal(results[i]!.code, 0, `${c}: ${results[i]!.stderr}`);
        assert.match(results[i]!.stdout, new RegExp(`countd ${c}[\\s\\S]*--data-dir`), c);
      });
    });
  });

  describe('user errors: one clean line on stderr, non-zero exit', () => {
    let dir: string;
    before(async () => {
      dir = await fresh();
    });

    const usage: Array<[string, string[], RegExp]> = [
      ['no command', [], /no command given/],
      ['unknown command', ['frobnicate'], /Unknown argument: frobnicate/],
      ['unknown flag', ['status', '--frob'], /Unknown argument: frob/],
      ['missing keyspace', ['dump'], /Not enough non-option arguments/],
      ['port out of range', ['write', 'ks', 'k', '--write-port', '70000'], /--write-port must be an integer from 0 to 65535, got "70000"/],
      ['port not a number', ['dump', 'ks', '--read-port', 'abc'], /--read-port must be an integer/],
      ['negative offset', ['read', 'ks', '--offset', '-1'], /--offset must be an integer from 0/],
      ['length not a number', ['read', 'ks', '--length', 'ten'], /--length must be an integer/],
      ['increment not a number', ['write', 'ks', 'k', '1.5'], /increment must be an integer/],
      ['increment past 64 bits', ['write', 'ks', 'k', '9223372036854775808'], /increment must be an integer from -9223372036854775808 to 9223372036854775807/],
      ['bad escape in a key', ['get', 'ks', 'a\\q'], /unknown escape/],
      ['same port twice', ['start', '--write-port', '5000', '--read-port', '5000'], /--write-port and --read-port are both 5000/],
      ['bad log format', ['start', '--log-format', 'xml'], /Invalid values/],
      ['n of zero', ['around', 'ks', 'k', '--n', '0'], /--n must be an integer from 1/],
      ['store nice out of range', ['start', '--store-nice', '20'], /--store-nice must be an integer from 0 to 19, got "20"/],
      ['store memory too small', ['start', '--store-memory', '100MiB'], /--store-memory must be a size from 256 MiB to 1024 GiB \(e\.g\. 512MiB, 2GiB\), got "100MiB"/],
      ['store memory not a size', ['start', '--store-memory', 'lots'], /--store-memory must be a size from 256 MiB to 1024 GiB/],
      ['backlog soft bound not a size', ['start', '--backlog-soft', 'lots'], /--backlog-soft must be a size from 1 bytes/],
      ['backlog hard bound not a size', ['start', '--backlog-hard', '-5'], /--backlog-hard must be a size from 1 bytes/],
      ['backlog soft bound below 4 logs', ['start', '--backlog-soft', '1MiB'], /--backlog-soft 1048576 is below 4 commit logs of 2097152 bytes/],
      ['backlog hard bound not above soft', ['start', '--backlog-soft', '64MiB', '--backlog-hard', '32MiB'], /--backlog-hard 33554432 must be above the soft bound 67108864/],
      ['flag given twice', ['dump', 'ks', '--read-port', '1', '--read-port', '2'], /given 2 times/],
      ['bad commit-log index', ['commitlog', 'x'], /index must be an integer/],
    ];
    // Run them all at once (each is a process start), then check each.
    const results = new Map<string, Promise<RunResult>>();
    before(() => {
      for (const [name, args] of usage) results.set(name, countd(dir, ...args));
    });
    for (const [name, , message] of usage) {
      it(`${name}: exit 2`, async () => {
        const r = await results.get(name)!;
        assert.equal(r.code, 2, r.stderr);
        assert.ok(isOneCleanLine(r.stderr), JSON.stringify(r.stderr));
        assert.match(r.stderr, message);
        assert.equal(r.stdout, '');
      });
    }

    it('write without a running daemon: exit 1, says how to start one', async () => {
      const r = await countd(dir, 'write', 'ks', 'k');
      assert.equal(r.code, 1);
      assert.ok(isOneCleanLine(r.stderr), r.stderr);
      assert.match(r.stderr, /no countd daemon is running on .*countd start/);
    });

    it('write to a port nobody listens on: exit 1, connection refused', async () => {
      const r = await countd(dir, 'write', 'ks', 'k', '--write-port', '1');
      assert.equal(r.code, 1);
      assert.ok(isOneCleanLine(r.stderr), r.stderr);
      assert.match(r.stderr, /connection refused/);
    });

    it('a data directory that does not exist: exit 1', async () => {
      const r = await countd(path.join(dir, 'nope'), 'dump', 'ks');
      assert.equal(r.code, 1);
      assert.ok(isOneCleanLine(r.stderr), r.stderr);
      assert.match(r.stderr, /does not exist/);
    });

    it('a data directory of the original countd: exit 1, names countd migrate', async () => {
      const legacy = await fresh();
      await fsp.writeFile(path.join(legacy, '0000000000'), Buffer.alloc(520));
      for (const args of [['start'], ['status'], ['dump', 'ks']]) {
        const r = await countd(legacy, ...args);
        assert.equal(r.code, 1, args.join(' '));
        assert.ok(isOneCleanLine(r.stderr), r.stderr);
        assert.match(r.stderr, /original countd.*countd migrate/);
      }
    });

    it('field sizes other than the data directory was created with: exit 1', async () => {
      const d = await fresh();
      await fsp.writeFile(path.join(d, 'COUNTD'), JSON.stringify({ format: 'countd', version: 1, keyspaceSize: 256, keySize: 256, created: '2026-01-01T00:00:00Z' }));
      const r = await countd(d, 'start', '--keyspace-size', '64', '--write-port', '0', '--read-port', '0');
      assert.equal(r.code, 1);
      assert.ok(isOneCleanLine(r.stderr), r.stderr);
      assert.match(r.stderr, /created with keyspaceSize 256, not 64/);
    });

    it('a data directory of a newer format version: exit 1', async () => {
      const d = await fresh();
      await fsp.writeFile(path.join(d, 'COUNTD'), JSON.stringify({ format: 'countd', version: 2, keyspaceSize: 256, keySize: 256, created: '2026-01-01T00:00:00Z' }));
      const r = await countd(d, 'status');
      assert.equal(r.code, 1);
      assert.ok(isOneCleanLine(r.stderr), r.stderr);
      assert.match(r.stderr, /format version 2/);
    });

    it('--debug adds the stack trace', async () => {
      const r = await countd(path.join(dir, 'nope'), 'status', '--debug');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^countd: .*does not exist\n/);
      assert.match(r.stderr, /\n\s+at /);
    });

    it('a missing commit log: exit 2', async () => {
      const d = await fresh();
      await fsp.writeFile(path.join(d, 'COUNTD'), JSON.stringify({ format: 'countd', version: 1, keyspaceSize: 256, keySize: 256, created: '2026-01-01T00:00:00Z' }));
      const r = await countd(d, 'commitlog', '7');
      assert.equal(r.code, 2);
      assert.ok(isOneCleanLine(r.stderr), r.stderr);
      assert.match(r.stderr, /0000000007 does not exist/);
    });
  });

  describe('with a daemon', () => {
    let dir: string;
    let daemon: Daemon;

    before(async () => {
      dir = await fresh();
      ({ daemon } = await startDaemon(dir));
    });

    after(async () => {
      await daemon.stop();
    });

    it('write exits 0 on WIN; dump shows it once applied, in rank order, exact past 2^53 and with escaped keys', async () => {
      for (const args of [
        ['write', 'pages', 'home', '7'],
        ['write', 'pages', 'about'],
        ['write', 'pages', 'big', String(BIG)],
        ['write', 'pages', NON_UTF8_KEY, '3'],
        ['write', 'pages', 'tab\\there', '-2'],
      ]) {
        const r = await countd(dir, ...args);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, '');
      }
      const r = await pollOutput(() => countd(dir, 'dump', 'pages'), (out) => out.split('\n').length === 6);
      assert.equal(r.stdout, `big\t${BIG}\nhome\t7\n${NON_UTF8_KEY}\t3\nabout\t1\ntab\\there\t-2\n`);
    });

    it('set and delete exit 0 once durable: a count set, a key deleted, a keyspace deleted', async () => {
      for (const args of [
        ['write', 'life', 'a', '5'],
        ['write', 'life', 'b', '2'],
        ['write', 'gone', 'x', '1'],
        ['set', 'life', 'a', '-9'],
        ['set', 'life', 'c', '0'],
        ['delete', 'life', 'b'],
        ['delete', 'gone'],
      ]) {
        const r = await countd(dir, ...args);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stdout, '');
      }
      const r = await pollOutput(() => countd(dir, 'dump', 'life'), (out) => out === 'c\t0\na\t-9\n');
      assert.equal(r.stdout, 'c\t0\na\t-9\n');
      const ks = await pollOutput(() => countd(dir, 'keyspaces'), (out) => !out.includes('gone'));
      assert.doesNotMatch(ks.stdout, /gone/);
      const bad = await countd(dir, 'set', 'life', 'a', '1.5');
      assert.notEqual(bad.code, 0);
      assert.ok(isOneCleanLine(bad.stderr), bad.stderr);
      assert.match(bad.stderr, /count must be an integer/);
      // The other tests of this daemon expect only `pages`.
      assert.equal((await countd(dir, 'delete', 'life')).code, 0);
      await pollOutput(() => countd(dir, 'keyspaces'), (out) => !out.includes('life'));
    });

    it('create --op max: writes keep the best; a second create refuses without --replace; --replace starts over', async () => {
      assert.equal((await countd(dir, 'create', 'board', '--op', 'max')).code, 0);
      for (const v of ['7', '12', '3']) assert.equal((await countd(dir, 'write', 'board', 'ann', v)).code, 0);
      const r = await pollOutput(() => countd(dir, 'dump', 'board'), (out) => out === 'ann\t12\n');
      assert.equal(r.stdout, 'ann\t12\n');
      const again = await countd(dir, 'create', 'board', '--op', 'min');
      assert.notEqual(again.code, 0);
      assert.ok(isOneCleanLine(again.stderr), again.stderr);
      assert.match(again.stderr, /keyspace board exists; --replace/);
      const badOp = await countd(dir, 'create', 'board', '--op', 'avg');
      assert.notEqual(badOp.code, 0);
      assert.ok(isOneCleanLine(badOp.stderr), badOp.stderr);
      assert.equal((await countd(dir, 'create', 'board', '--op', 'min', '--replace')).code, 0);
      for (const v of ['7', '12', '3']) assert.equal((await countd(dir, 'write', 'board', 'ann', v)).code, 0);
      await pollOutput(() => countd(dir, 'dump', 'board'), (out) => out === 'ann\t3\n');
      assert.equal((await countd(dir, 'delete', 'board')).code, 0);
      await pollOutput(() => countd(dir, 'keyspaces'), (out) => !out.includes('board'));
    });

    it('dump --json writes exact counts and escaped keys', async () => {
      const r = await countd(dir, 'dump', 'pages', '--json');
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines[0], `{"key": "big", "count": ${BIG}}`);
      assert.equal(JSON.parse(lines[2]!).key, NON_UTF8_KEY);
      assert.equal(JSON.parse(lines[4]!).key, 'tab\\there');
    });

    it('read pages by --offset and --length', async () => {
      const r = await countd(dir, 'read', 'pages', '--offset', '1', '--length', '2');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `home\t7\n${NON_UTF8_KEY}\t3\n`);
    });

    it('get, rank and around', async () => {
      const g = await countd(dir, 'get', 'pages', NON_UTF8_KEY);
      assert.equal(g.stdout, `${NON_UTF8_KEY}\t3\n`);
      const r = await countd(dir, 'rank', 'pages', 'about', '--json');
      assert.equal(r.stdout, '{"rank": 3, "key": "about", "count": 1}\n');
      const a = await countd(dir, 'around', 'pages', 'home', '--n', '3');
      assert.equal(a.stdout, `0\tbig\t${BIG}\n1\thome\t7\n2\t${NON_UTF8_KEY}\t3\n`);
      const missing = await countd(dir, 'get', 'pages', 'nope');
      assert.equal(missing.code, 1);
      assert.ok(isOneCleanLine(missing.stderr), missing.stderr);
    });

    it('keyspaces lists names and sizes', async () => {
      const r = await countd(dir, 'keyspaces');
      assert.equal(r.stdout, 'pages\t5\n', r.stderr);
      const j = await countd(dir, 'keyspaces', '--json');
      assert.equal(j.stdout, '{"keyspace": "pages", "keys": 5}\n', j.stderr);
    });

    it('status --json reports the daemon, its ports, the commit logs and the keyspaces', async () => {
      const rec = await daemon.record();
      const r = await countd(dir, 'status', '--json');
      assert.equal(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout) as {
        daemon: { running: boolean; pid: number; writePort: number; readPort: number };
        commitLogs: { logs: number; clean: number; dirty: number; locked: number; backlogFrames: number };
        keyspaces: number;
        worker: { state: string; since: number; failures: number; code: string };
      };
      assert.equal(s.daemon.running, true);
      assert.deepEqual({ ...s.worker, message: undefined }, { state: 'applying', since: 0, failures: 0, code: '', message: undefined });
      assert.equal(s.daemon.pid, daemon.pid);
      assert.equal(s.daemon.writePort, rec.writePort);
      assert.equal(s.daemon.readPort, rec.readPort);
      assert.ok(s.commitLogs.logs >= 1);
      assert.equal(s.commitLogs.clean + s.commitLogs.dirty <= s.commitLogs.logs, true);
      assert.equal(typeof s.commitLogs.backlogFrames, 'number');
      assert.equal(s.keyspaces, 1);
      const text = await countd(dir, 'status');
      assert.match(text.stdout, new RegExp(`daemon: +running \\(pid ${daemon.pid}`));
      assert.match(text.stdout, /^worker: +applying$/m);
    });

    it('the daemon can be named by --listen and --read-port instead of daemon.json', async () => {
      const rec = await daemon.record();
      const other = await fresh(); // no daemon.json there
      const r = await run(['get', 'pages', 'home', '--data-dir', other, '--listen', '127.0.0.1', '--read-port', String(rec.readPort)]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'home\t7\n');
    });

    it('a second countd start on the same data directory refuses, naming the PID', async () => {
      const r = await countd(dir, 'start', '--write-port', '0', '--read-port', '0');
      assert.equal(r.code, 1);
      assert.ok(isOneCleanLine(r.stderr), r.stderr);
      assert.match(r.stderr, new RegExp(`already running on .* \\(pid ${daemon.pid}\\)`));
    });

    it('countd-read on the held database says to use countd start', async () => {
      const r = await run(['--data-dir', dir, '--port', '0'], { bin: 'countd-read' });
      assert.equal(r.code, 1);
      assert.ok(isOneCleanLine(r.stderr, 'countd-read'), r.stderr);
      assert.match(r.stderr, /held by another process; run `countd start` \(or countd-worker --read-port\)/);
    });

    it('after SIGTERM (exit 0), the same answers come from the database directly', async () => {
      const before = await countd(dir, 'dump', 'pages', '--json');
      assert.equal(before.code, 0, before.stderr);
      const exit = await daemon.stop('SIGTERM');
      assert.deepEqual(exit, { code: 0, signal: null });
      const files = await fsp.readdir(dir);
      assert.ok(!files.includes('daemon.json'), files.join(' '));
      assert.ok(!files.includes('daemon.lock'), files.join(' '));
      const logs = await fsp.readdir(path.join(dir, 'commitlog'));
      assert.deepEqual(logs.filter((f) => f.startsWith('lock-') || f.startsWith('owner-')), []);

      const after = await countd(dir, 'dump', 'pages', '--json');
      assert.equal(after.code, 0, after.stderr);
      assert.equal(after.stdout, before.stdout);
      const text = await countd(dir, 'dump', 'pages');
      assert.equal(text.stdout, `big\t${BIG}\nhome\t7\n${NON_UTF8_KEY}\t3\nabout\t1\ntab\\there\t-2\n`);
      const rank = await countd(dir, 'rank', 'pages', NON_UTF8_KEY);
      assert.equal(rank.stdout, `2\t${NON_UTF8_KEY}\t3\n`);
      const status = await countd(dir, 'status', '--json');
      const s = JSON.parse(status.stdout) as { daemon: { running: boolean }; commitLogs: { locked: number; dirty: number }; keyspaces: number };
      assert.equal(s.daemon.running, false);
      assert.equal(s.commitLogs.locked, 0);
      assert.equal(s.keyspaces, 1);
      const w = await countd(dir, 'write', 'pages', 'home');
      assert.equal(w.code, 1);
      assert.match(w.stderr, /no countd daemon is running/);
    });
  });

  describe('commitlog (logs written by countd-write alone, no worker to apply them)', () => {
    let dir: string;
    let log: string;

    before(async () => {
      dir = await fresh();
      const writer = startRole('countd-write', ['--data-dir', dir, '--port', '0', '--handover-ms', '60000']);
      const port = await waitFor('countd-write to listen', () => /running: write port (\d+)/.exec(writer.out.stderr)?.[1]);
      const client = new Client({ writePort: Number(port) });
      // One at a time: each increment is its own record in the log.
      await client.increment('pages', 'home', 7);
      await client.increment('pages', Buffer.from([0x6b, 0xff, 0x01]), 3);
      await client.increment('pages', 'big', BIG);
      await client.close();
      writer.proc.kill('SIGTERM');
      assert.equal((await writer.exited).code, 0, writer.out.stderr);
      const logs = (await fsp.readdir(path.join(dir, 'commitlog'))).filter((f) => /^\d{10}$/.test(f));
      assert.deepEqual(logs, ['0000000000']);
      log = path.join(dir, 'commitlog', logs[0]!);
    });

    it('prints every record of an intact log, exit 0', async () => {
      const r = await countd(dir, 'commitlog', '0');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^countd: log 0000000000 \(dirty\): generation \d+, 3 records, 3 frames, sealed/);
      const lines = r.stdout.trim().split('\n').map((l) => l.split('\t').slice(1).join('\t'));
      assert.deepEqual(lines, ['pages\thome\t7', 'pages\tk\\xff\\x01\t3', `pages\tbig\t${BIG}`]);
      const j = await countd(dir, 'commitlog', '0000000000', '--json');
      assert.match(j.stdout, new RegExp(`"key": "big", "increment": ${BIG}}`));
    });

    it('reports damage with its byte offset, exit 1', async () => {
      await fsp.chmod(log, 0o600);
      // A byte of the first record's payload (after the header block and the record header).
      await flipByte(log, HEADER_SIZE + RECORD_HEADER_SIZE + 2);
      await fsp.chmod(log, 0o400);
      const r = await countd(dir, 'commitlog', '0');
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`damage at byte offset ${HEADER_SIZE}: .*\\(\\d+ bytes dropped\\)`));
      assert.doesNotMatch(r.stdout, /\thome\t/);
      assert.match(r.stdout, /\tbig\t/);
    });
  });

  describe('role binaries', () => {
    it('countd-write and countd-worker --read-port serve a data directory together; SIGTERM exits 0', async function () {
      // Both create a new data directory and LevelDB with fsyncs: slow when the disk is busy.
      this.timeout(90_000);
      const dir = await fresh();
      const writer = startRole('countd-write', ['--data-dir', dir, '--port', '0', '--handover-ms', '50']);
      const worker = startRole('countd-worker', ['--data-dir', dir, '--read-port', '0']);
      try {
        const started = (what: string, role: RoleProcess, re: RegExp) =>
          waitFor(what, () => re.exec(role.out.stderr)?.[1], 40_000).catch((err: Error) => {
            throw new Error(`${err.message}; its stderr: ${role.out.stderr}`);
          });
        const writePort = await started('countd-write', writer, /running: write port (\d+)/);
        const readPort = await started('countd-worker', worker, /running: read port (\d+)/);
        const client = new Client({ writePort: Number(writePort), readPort: Number(readPort) });
        await client.increment('roles', 'k', 42);
        const count = await waitFor('the worker to apply', async () => await client.get('roles', 'k'));
        assert.equal(count, 42n);
        await client.close();
        // The store is held by the worker: countd-read refuses, pointing at the combined roles.
        const read = await run(['--data-dir', dir, '--port', '0'], { bin: 'countd-read' });
        assert.equal(read.code, 1);
        assert.match(read.stderr, /held by another process/);
      } finally {
        writer.proc.kill('SIGTERM');
        worker.proc.kill('SIGTERM');
      }
      assert.equal((await writer.exited).code, 0, writer.out.stderr);
      assert.equal((await worker.exited).code, 0, worker.out.stderr);
      const logs = await fsp.readdir(path.join(dir, 'commitlog'));
      assert.deepEqual(logs.filter((f) => f.startsWith('lock-')), []);
    });

    it('countd-worker caps its V8 heap from --store-memory in a child process, which stops on SIGTERM to it and when it is killed -9', async function () {
      this.timeout(60_000);
      const dir = await fresh();
      const start = (): RoleProcess => startRole('countd-worker', ['--data-dir', dir, '--store-memory', '512MiB']);
      const childOf = async (pid: number): Promise<number> => {
        const children = (await fsp.readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean);
        assert.equal(children.length, 1, `children of countd-worker: ${children.join(' ')}`);
        return Number(children[0]);
      };
      const alive = (pid: number): boolean => isAlive({ pid, start: '' });
      const expected = `--max-old-space-size=${storeChildSettingsFor(512 * 1024 * 1024).heapLimit / (1024 * 1024)}`;

      // SIGTERM to countd-worker: its child stops the role, both exit 0.
      const first = start();
      await waitFor('countd-worker to run', () => (/countd-worker running/.test(first.out.stderr) ? true : undefined), 40_000);
      const child = await childOf(first.proc.pid!);
      const argv = (await fsp.readFile(`/proc/${child}/cmdline`, 'utf8')).split('\0');
      assert.deepEqual(argv.filter((a) => a.startsWith('--max-old-space-size')), [expected]);
      const environ = await fsp.readFile(`/proc/${child}/environ`, 'utf8');
      assert.match(environ, /(^|\0)MALLOC_ARENA_MAX=2\0/);
      assert.match(environ, /(^|\0)MALLOC_MMAP_THRESHOLD_=65536\0/);
      assert.match(environ, /(^|\0)MALLOC_TRIM_THRESHOLD_=1048576\0/);
      first.proc.kill('SIGTERM');
      assert.deepEqual(await first.exited, { code: 0, signal: null }, first.out.stderr);
      assert.ok(!alive(child), 'the child exited with countd-worker');

      // kill -9 countd-worker: its child sees the channel close and stops, releasing the database.
      const second = start();
      await waitFor('countd-worker to run again', () => (/countd-worker running/.test(second.out.stderr) ? true : undefined), 40_000);
      const orphan = await childOf(second.proc.pid!);
      second.proc.kill('SIGKILL');
      await second.exited;
      await waitFor('the orphaned child to stop', () => (alive(orphan) ? undefined : true), 20_000);
      const third = start();
      await waitFor('a new countd-worker to open the database', () => (/countd-worker running/.test(third.out.stderr) ? true : /error|countd-worker:/.test(third.out.stderr) ? third.out.stderr : undefined), 40_000);
      assert.doesNotMatch(third.out.stderr, /held by another process/);
      third.proc.kill('SIGINT');
      assert.deepEqual(await third.exited, { code: 0, signal: null }, third.out.stderr);
    });

    it('role binaries have --help and reject bad flags with one line', async () => {
      const [help, bad] = await Promise.all([run(['--help'], { bin: 'countd-worker' }), run(['--port', 'x'], { bin: 'countd-write' })]);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /--read-port/);
      assert.equal(bad.code, 2);
      assert.ok(isOneCleanLine(bad.stderr, 'countd-write'), bad.stderr);
    });
  });
});
