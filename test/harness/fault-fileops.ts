// FileOps layers for tests (lib/commitlog/fileops.ts):
//
//   FaultFileOps.fail/stall  make chosen operations fail with an errno (EIO,
//                            ENOSPC), or never settle (an fdatasync the power
//                            cut interrupts); with `landed`, a pwritev first
//                            writes its bytes (an O_DSYNC write whose sync
//                            failed, or that the power cut interrupted);
//   FaultFileOps.powerLoss() (legacy, data only) undoes every write that no
//                            fsync/fdatasync of its file has covered, keeping
//                            an optional prefix of the newest (a torn write);
//   FaultFileOps.cutAfter(n) + cut()
//                            the full power-cut model below.
//
// The power-cut model (what survives a power cut on a POSIX file system):
//
//   file data   a write survives only once an fsync or fdatasync of its inode
//               (through any fd) has completed, or once it returned on a fd
//               opened with O_DSYNC (its own bytes). Unsynced data survives or not
//               per 512-byte sector, at random: sectors are the unit a disk
//               writes atomically, so a torn write is some sectors new, some
//               old. A file that grew shrinks back to its synced size (or not).
//   file mode   a chmod survives only once an fsync (not fdatasync: the mode
//               is not needed to read the data) of the inode has completed.
//   names       link, unlink, rename and open(O_CREAT) of a new name survive
//               only once the directory has been fsynced (fsyncDir). Each
//               such event survives or not at random; a rename survives
//               whole or not at all (as on ext4/xfs).
//
// With `survive: 0` nothing unsynced survives (the worst case); the default
// 0.5 explores mixed states. After cutAfter(n), the n-th operation and every
// later one never settle (the machine is off); cut() then waits for the
// operations already running in the kernel, closes every fd, and rewrites
// the directories, modes and bytes to one state a reboot could find. The
// layer stays dead: recover with a fresh FileOps (or the real one).
// simulateReboot() makes owner files name a previous boot, as after a real
// reboot (the test process itself survives the simulated cut).

import fs from 'node:fs';
import path from 'node:path';
import { FileOps, realFileOps } from '../../lib/commitlog/fileops.js';

type OpName = keyof FileOps;

interface Fault {
  op: OpName;
  code: string;
  /** Only operations on paths matching this (fd-based operations use the path the fd was opened with). */
  path?: RegExp;
  /** How many times to fail (default 1); Infinity for always. */
  times: number;
  /** Instead of failing, never settle. */
  stall?: boolean;
  /** Run the operation first (its bytes reach the file), then fail or stall. */
  landed?: boolean;
}

interface Undo {
  path: string;
  position: number;
  old: Buffer;
  oldSize: number;
  newBytes: number;
}

const SECTOR = 512;

/** Unsynced state of one inode. */
interface InodeState {
  /** Synced content of each sector written since the last sync. */
  sectors: Map<number, Buffer>;
  /** Size at the last sync (when a write may have grown it). */
  syncedSize?: number;
  /** Mode at the last fsync (when a chmod happened since). */
  syncedMode?: number;
}

type DirEvent =
  | { kind: 'add'; name: string; ino: number }
  | { kind: 'remove'; name: string }
  | { kind: 'rename'; from: string; to: string };

interface DirState {
  /** Names made durable by the last fsyncDir (or present when the layer first saw the directory). */
  durable: Map<string, number>;
  /** Name changes since. */
  events: DirEvent[];
}

export interface CutOptions {
  /** [0, 1) source deciding what survives; default Math.random. */
  random?: () => number;
  /** Probability that each unsynced sector, mode change or name event survives. Default 0.5; 0 = worst case. */
  survive?: number;
}

export interface CutReport {
  sectorsReverted: number;
  sectorsKept: number;
  modesReverted: number;
  namesReverted: number;
  namesKept: number;
}

export class FaultFileOps implements FileOps {
  private readonly base: FileOps;
  private readonly faults: Fault[] = [];
  private readonly fdPaths = new Map<number, string>();
  private readonly fdInodes = new Map<number, number>();
  /** Fds opened with O_DSYNC: a write on them is durable once it returns. */
  private readonly fdDsync = new Set<number>();
  private undo: Undo[] = [];
  private readonly inodes = new Map<number, InodeState>();
  private readonly dirs = new Map<string, DirState>();
  private readonly shadowDir: string | undefined;
  private readonly running = new Set<Promise<unknown>>();
  private opsLeft = Infinity;
  private dead = false;
  private deadResolve!: () => void;
  /** Resolves when the power goes off (cutAfter's count reached). */
  readonly died: Promise<void>;
  /** Calls seen per operation (for assertions such as "one write, one fdatasync per append"). */
  readonly calls = new Map<OpName, number>();
  /** Every fault injected so far: operation, errno and path. */
  readonly injected: Array<{ op: OpName; code: string; file: string | undefined }> = [];
  /** Called synchronously as each fault is injected (to look at the files at that very moment). */
  onFault: ((fault: { op: OpName; code: string; file: string | undefined }) => void) | undefined;

  /**
   * `shadowDir` turns on the model of names and modes used by cut(): a
   * directory on the same file system as the files (hard links to every
   * inode the layer may have to restore are kept there), outside the
   * directories under test. Without it only file data is modelled.
   */
  constructor(base: FileOps = realFileOps, options: { shadowDir?: string } = {}) {
    this.base = base;
    this.shadowDir = options.shadowDir;
    if (this.shadowDir !== undefined) fs.mkdirSync(this.shadowDir, { recursive: true });
    this.died = new Promise((resolve) => (this.deadResolve = resolve));
  }

  /** Fail the next `times` calls of `op` (on paths matching `path`) with errno `code`; `landed`: after running it. */
  fail(op: OpName, code: string, options: { path?: RegExp; times?: number; landed?: boolean } = {}): void {
    this.faults.push({ op, code, path: options.path, times: options.times ?? 1, landed: options.landed });
  }

  /** Make the next call of `op` never settle (e.g. power is cut during fdatasync); `landed`: after running it. */
  stall(op: OpName, options: { path?: RegExp; landed?: boolean } = {}): void {
    this.faults.push({ op, code: '', path: options.path, times: 1, stall: true, landed: options.landed });
  }

  /** Stop failing (faults not yet triggered are dropped). */
  clearFaults(): void {
    this.faults.length = 0;
  }

  count(op: OpName): number {
    return this.calls.get(op) ?? 0;
  }

  /** Total operations seen so far. */
  get totalCalls(): number {
    let n = 0;
    for (const v of this.calls.values()) n += v;
    return n;
  }

  get isDead(): boolean {
    return this.dead;
  }

  /** Power goes off at the n-th operation from now (1 = the next one): it and all later ones never settle. */
  cutAfter(n: number): void {
    this.opsLeft = n;
  }

  /** Power off now: every later operation never settles. */
  powerOff(): void {
    if (this.dead) return;
    this.dead = true;
    this.deadResolve();
  }

  /**
   * Simulate a power cut (data only; names and modes are treated as durable
   * at once): undo every write not yet covered by a sync of its file, newest
   * first. With `keepPrefix`, the newest unsynced write keeps its first
   * `keepPrefix` bytes (a torn write).
   */
  powerLoss(keepPrefix = 0): void {
    const pending = this.undo;
    this.undo = [];
    this.inodes.clear();
    for (let i = pending.length - 1; i >= 0; i--) {
      const u = pending[i]!;
      const keep = i === pending.length - 1 ? Math.min(keepPrefix, u.newBytes) : 0;
      if (!fs.existsSync(u.path)) continue; // renamed or removed since: names are not modelled here
      const fd = fs.openSync(u.path, 'r+');
      try {
        fs.writeSync(fd, u.old, keep, u.old.length - keep, u.position + keep);
        if (fs.fstatSync(fd).size > u.oldSize) fs.ftruncateSync(fd, Math.max(u.oldSize, u.position + keep));
      } finally {
        fs.closeSync(fd);
      }
    }
  }

  /**
   * The full power cut (see the file comment). Powers off if not yet off,
   * waits for operations already in the kernel, then leaves on disk one
   * state a reboot could find.
   */
  async cut(options: CutOptions = {}): Promise<CutReport> {
    if (this.shadowDir === undefined) throw new Error('cut() needs a FaultFileOps made with a shadowDir');
    this.powerOff();
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
    const random = options.random ?? Math.random;
    const survive = options.survive ?? 0.5;
    const keep = (): boolean => survive > 0 && random() < survive;
    const report: CutReport = { sectorsReverted: 0, sectorsKept: 0, modesReverted: 0, namesReverted: 0, namesKept: 0 };
    for (const fd of this.fdPaths.keys()) {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
    }
    this.fdPaths.clear();
    this.fdInodes.clear();
    this.fdDsync.clear();
    this.undo = [];

    // 1. Names. Every inode still named gets a shadow link first, so that any
    //    name can be restored from it whatever is unlinked meanwhile.
    for (const [dir, state] of this.dirs) {
      for (const [name, ino] of currentNames(dir)) this.shadowLink(path.join(dir, name), ino);
      const durable = new Map(state.durable);
      for (const e of state.events) {
        const kept = keep();
        if (kept) report.namesKept++;
        else report.namesReverted++;
        if (!kept) continue;
        if (e.kind === 'add') durable.set(e.name, e.ino);
        else if (e.kind === 'remove') durable.delete(e.name);
        else {
          const ino = durable.get(e.from);
          durable.delete(e.from);
          if (ino !== undefined) durable.set(e.to, ino);
          else durable.delete(e.to);
        }
      }
      const now = currentNames(dir);
      for (const [name, ino] of now) {
        if (durable.get(name) !== ino) fs.unlinkSync(path.join(dir, name));
      }
      for (const [name, ino] of durable) {
        if (now.get(name) === ino) continue;
        const source = this.shadowPath(ino);
        if (source !== undefined && fs.existsSync(source)) fs.linkSync(source, path.join(dir, name));
      }
      state.durable = durable;
      state.events = [];
    }

    // 2. Modes and 3. bytes, per inode, through its shadow link.
    for (const [ino, st] of this.inodes) {
      const file = this.shadowPath(ino);
      if (file === undefined || !fs.existsSync(file)) continue;
      if (st.syncedMode !== undefined && !keep()) {
        fs.chmodSync(file, st.syncedMode);
        report.modesReverted++;
      }
      if (st.sectors.size === 0 && st.syncedSize === undefined) continue;
      const fd = fs.openSync(file, 'r+');
      try {
        for (const [sector, old] of st.sectors) {
          if (keep()) {
            report.sectorsKept++;
            continue;
          }
          fs.writeSync(fd, old, 0, old.length, sector * SECTOR);
          report.sectorsReverted++;
        }
        if (st.syncedSize !== undefined && fs.fstatSync(fd).size > st.syncedSize && !keep()) fs.ftruncateSync(fd, st.syncedSize);
      } finally {
        fs.closeSync(fd);
      }
    }
    this.inodes.clear();
    return report;
  }

  // ---- bookkeeping ---------------------------------------------------------------

  private dirState(dir: string): DirState {
    if (this.shadowDir === undefined) return { durable: new Map(), events: [] };
    let s = this.dirs.get(dir);
    if (!s) {
      s = { durable: currentNames(dir), events: [] };
      this.dirs.set(dir, s);
    }
    return s;
  }

  private inode(ino: number): InodeState {
    let s = this.inodes.get(ino);
    if (!s) {
      s = { sectors: new Map() };
      this.inodes.set(ino, s);
    }
    return s;
  }

  private shadowPath(ino: number): string | undefined {
    return this.shadowDir === undefined ? undefined : path.join(this.shadowDir, String(ino));
  }

  /** Keep the inode reachable from the shadow directory. */
  private shadowLink(file: string, ino: number): void {
    if (this.shadowDir === undefined) return;
    const target = path.join(this.shadowDir, String(ino));
    if (fs.existsSync(target)) return;
    try {
      fs.linkSync(file, target);
    } catch {
      // the name went meanwhile
    }
  }

  /** Before a name is removed or replaced: keep its inode reachable. */
  private beforeRemove(file: string): void {
    this.dirState(path.dirname(file));
    try {
      const st = fs.lstatSync(file);
      if (st.isFile()) this.shadowLink(file, st.ino);
    } catch {
      // nothing there
    }
  }

  private note(file: string, event: DirEvent): void {
    this.dirState(path.dirname(file)).events.push(event);
  }

  /** Save the synced content of the sectors a write is about to change (read through a fd of our own: the caller's may be write-only). */
  private beforeWrite(fd: number, file: string, total: number, position: number): void {
    const ino = this.fdInodes.get(fd);
    if (ino === undefined || total === 0) return;
    if (this.shadowDir !== undefined) {
      this.dirState(path.dirname(file));
      this.shadowLink(file, ino);
    }
    const rfd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(rfd).size;
      const st = this.inode(ino);
      if (st.syncedSize === undefined && position + total > size) st.syncedSize = size;
      const first = Math.floor(position / SECTOR);
      const last = Math.floor((position + total - 1) / SECTOR);
      for (let s = first; s <= last; s++) {
        if (st.sectors.has(s)) continue;
        const old = Buffer.alloc(SECTOR);
        const n = fs.readSync(rfd, old, 0, SECTOR, s * SECTOR);
        // Past the synced end there is no old content: the truncation to syncedSize undoes that part.
        st.sectors.set(s, old.subarray(0, n));
      }
      // Legacy powerLoss() bookkeeping.
      const old = Buffer.alloc(total);
      fs.readSync(rfd, old, 0, total, position);
      this.undo.push({ path: file, position, old, oldSize: size, newBytes: total });
    } finally {
      fs.closeSync(rfd);
    }
  }

  private synced(fd: number, withMode: boolean): void {
    const file = this.fdPaths.get(fd);
    this.undo = this.undo.filter((u) => u.path !== file);
    const ino = this.fdInodes.get(fd);
    if (ino === undefined) return;
    const st = this.inodes.get(ino);
    if (!st) return;
    st.sectors.clear();
    st.syncedSize = undefined;
    if (withMode) st.syncedMode = undefined;
    if (st.syncedMode === undefined) this.inodes.delete(ino);
  }

  /**
   * The bytes of a completed write on an O_DSYNC fd are durable: forget the
   * synced content of its sectors (they hold the new bytes now).
   */
  private syncedRange(fd: number, position: number, bytes: number): void {
    const file = this.fdPaths.get(fd);
    this.undo = this.undo.filter((u) => !(u.path === file && u.position >= position && u.position + u.newBytes <= position + bytes));
    const ino = this.fdInodes.get(fd);
    const st = ino === undefined ? undefined : this.inodes.get(ino);
    if (!st || bytes <= 0) return;
    for (let s = Math.floor(position / SECTOR); s <= Math.floor((position + bytes - 1) / SECTOR); s++) st.sectors.delete(s);
    if (st.syncedSize !== undefined) st.syncedSize = Math.max(st.syncedSize, position + bytes);
  }

  /** Run one operation: count it, apply faults, and track it while the kernel runs it (cut() waits for those). */
  private async run<T>(op: OpName, file: string | undefined, body: () => Promise<T>): Promise<T> {
    this.calls.set(op, (this.calls.get(op) ?? 0) + 1);
    if (!this.dead && --this.opsLeft <= 0) this.powerOff();
    if (this.dead) return new Promise<never>(() => {});
    const i = this.faults.findIndex((f) => f.op === op && (!f.path || (file !== undefined && f.path.test(file))));
    if (i >= 0) {
      const f = this.faults[i]!;
      if (--f.times <= 0) this.faults.splice(i, 1);
      if (f.landed) await body();
      if (f.stall) return new Promise<never>(() => {});
      this.injected.push({ op, code: f.code, file });
      this.onFault?.({ op, code: f.code, file });
      throw Object.assign(new Error(`${f.code}: injected fault in ${op} ${file ?? ''}`), { code: f.code });
    }
    const p = body();
    this.running.add(p);
    try {
      const result = await p;
      // The power went off while the kernel ran it: nobody hears back.
      if (this.dead) return new Promise<never>(() => {});
      return result;
    } finally {
      this.running.delete(p);
    }
  }

  // ---- FileOps -------------------------------------------------------------------------

  open = (file: string, flags: number, mode?: number): Promise<number> =>
    this.run('open', file, async () => {
      const creates = (flags & fs.constants.O_CREAT) !== 0 && !fs.existsSync(file);
      if (creates) this.dirState(path.dirname(file));
      const fd = await this.base.open(file, flags, mode);
      const ino = fs.fstatSync(fd).ino;
      this.fdPaths.set(fd, file);
      this.fdInodes.set(fd, ino);
      if ((flags & fs.constants.O_DSYNC) === fs.constants.O_DSYNC) this.fdDsync.add(fd);
      else this.fdDsync.delete(fd);
      if (creates) this.note(file, { kind: 'add', name: path.basename(file), ino });
      return fd;
    });
  close = (fd: number): Promise<void> =>
    this.run('close', this.fdPaths.get(fd), async () => {
      this.fdPaths.delete(fd);
      this.fdInodes.delete(fd);
      this.fdDsync.delete(fd);
      await this.base.close(fd);
    });
  pwritev = async (fd: number, buffers: Buffer[], position: number, inline?: boolean): Promise<number> => {
    const file = this.fdPaths.get(fd);
    const written = await this.run('pwritev', file, async () => {
      if (file !== undefined) {
        let total = 0;
        for (const b of buffers) total += b.length;
        this.beforeWrite(fd, file, total, position);
      }
      return this.base.pwritev(fd, buffers, position, inline);
    });
    // Only a write that returned is durable; one that failed or never returned may be torn.
    if (this.fdDsync.has(fd)) this.syncedRange(fd, position, written);
    return written;
  };
  pread = (fd: number, target: Buffer, offset: number, length: number, position: number): Promise<number> =>
    this.run('pread', this.fdPaths.get(fd), () => this.base.pread(fd, target, offset, length, position));
  fdatasync = (fd: number): Promise<void> =>
    this.run('fdatasync', this.fdPaths.get(fd), async () => {
      await this.base.fdatasync(fd);
      this.synced(fd, false);
    });
  fsync = (fd: number): Promise<void> =>
    this.run('fsync', this.fdPaths.get(fd), async () => {
      await this.base.fsync(fd);
      this.synced(fd, true);
    });
  readFile = (file: string): Promise<Buffer> => this.run('readFile', file, () => this.base.readFile(file));
  stat = (file: string) => this.run('stat', file, () => this.base.stat(file));
  link = (a: string, b: string): Promise<void> =>
    this.run('link', b, async () => {
      this.dirState(path.dirname(b));
      await this.base.link(a, b);
      this.note(b, { kind: 'add', name: path.basename(b), ino: fs.lstatSync(b).ino });
    });
  unlink = (file: string): Promise<void> =>
    this.run('unlink', file, async () => {
      this.beforeRemove(file);
      await this.base.unlink(file);
      this.note(file, { kind: 'remove', name: path.basename(file) });
    });
  chmod = (file: string, mode: number): Promise<void> =>
    this.run('chmod', file, async () => {
      const st = fs.statSync(file);
      this.dirState(path.dirname(file));
      this.shadowLink(file, st.ino);
      const ino = this.inode(st.ino);
      ino.syncedMode ??= st.mode & 0o7777;
      await this.base.chmod(file, mode);
    });
  rename = (a: string, b: string): Promise<void> =>
    this.run('rename', b, async () => {
      this.beforeRemove(b);
      this.beforeRemove(a);
      const ino = fs.lstatSync(a).ino;
      await this.base.rename(a, b);
      if (path.dirname(a) === path.dirname(b)) this.note(b, { kind: 'rename', from: path.basename(a), to: path.basename(b) });
      else {
        this.note(a, { kind: 'remove', name: path.basename(a) });
        this.note(b, { kind: 'add', name: path.basename(b), ino });
      }
    });
  readdir = (dir: string): Promise<string[]> =>
    this.run('readdir', dir, () => this.base.readdir(dir));
  mkdir = (dir: string): Promise<void> => this.run('mkdir', dir, () => this.base.mkdir(dir));
  realpath = (file: string): Promise<string> => this.run('realpath', file, () => this.base.realpath(file));
  fsyncDir = (dir: string): Promise<void> =>
    this.run('fsyncDir', dir, async () => {
      const state = this.dirState(dir);
      const events = state.events.length;
      await this.base.fsyncDir(dir);
      // Everything noted before the fsync began is durable now.
      const done = state.events.splice(0, events);
      for (const e of done) {
        if (e.kind === 'add') state.durable.set(e.name, e.ino);
        else if (e.kind === 'remove') state.durable.delete(e.name);
        else {
          const ino = state.durable.get(e.from);
          state.durable.delete(e.from);
          if (ino !== undefined) state.durable.set(e.to, ino);
          else state.durable.delete(e.to);
        }
      }
    });
}

/** Regular files (and their inodes) directly in `dir`. */
function currentNames(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      const st = fs.lstatSync(path.join(dir, name));
      if (st.isFile()) out.set(name, st.ino);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * After a simulated cut the test process is still alive, so owner files it
 * wrote would name a live process. A real reboot changes the kernel boot id:
 * rewrite every owner file in `poolDir` (and every owner record of a claim
 * or release that was under way) to name another boot.
 */
export function simulateReboot(poolDir: string): number {
  let n = 0;
  for (const name of fs.readdirSync(poolDir)) {
    if (!/^owner-\d{10}(\.tmp-\d+)?$/.test(name)) continue;
    const file = path.join(poolDir, name);
    try {
      const o = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
      o.boot = 'before-the-power-cut';
      fs.writeFileSync(file, JSON.stringify(o));
      n++;
    } catch {
      // torn or empty: reads as no owner already
    }
  }
  return n;
}
