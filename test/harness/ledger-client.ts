// An honest write-protocol client that keeps the Ledger (ledger.ts): it
// pipelines frames over one connection at a time, up to `window` unanswered,
// records every WIN and ERR, and reconnects (with fresh keys) whenever the
// server goes away, until stop().

import net from 'node:net';
import { FieldSizes } from '../../lib/protocol/fields.js';
import { encodeFrame } from '../../lib/protocol/write-frame.js';
import { KeyEntry, Ledger, MAX_FRAMES_PER_KEY } from './ledger.js';
import { Rng } from './rng.js';

export interface LedgerClientOptions {
  ledger: Ledger;
  rng: Rng;
  sizes: FieldSizes;
  /** Where the write server listens now; undefined while there is none. */
  port: () => Promise<number | undefined> | number | undefined;
  /** Unique prefix of this client's key names. */
  name: string;
  keyspaces: readonly string[];
  /** Most unanswered frames. Default 64. */
  window?: number;
  /** Keys written by one connection at a time. Default 4. */
  keysPerSession?: number;
  /** Pause before reconnecting. Default 20 ms. */
  reconnectMs?: number;
}

export interface LedgerClientStats {
  sessions: number;
  wins: number;
  errs: number;
  /** Replies that an honest client must never get (BAD, or bytes that are no reply). */
  protocolErrors: string[];
}

const REPLY_SIZE = 3;

export class LedgerClient {
  readonly stats: LedgerClientStats = { sessions: 0, wins: 0, errs: 0, protocolErrors: [] };
  private readonly o: Required<LedgerClientOptions>;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private socket: net.Socket | undefined;
  private sessionDone: (() => void) | undefined;
  private pending: Array<{ entry: KeyEntry; index: number }> = [];
  private nextKey = 0;

  constructor(options: LedgerClientOptions) {
    this.o = { window: 64, keysPerSession: 4, reconnectMs: 20, ...options };
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stop sending; wait (up to `timeoutMs`) for answers to what was sent, then close. */
  async stop(timeoutMs = 5000): Promise<void> {
    this.stopping = true;
    const socket = this.socket;
    if (socket && this.pending.length > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        const check = (): void => {
          if (this.pending.length === 0 || socket.destroyed) {
            clearTimeout(timer);
            resolve();
          } else setTimeout(check, 10);
        };
        check();
      });
    }
    this.socket?.destroy();
    this.sessionDone?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const port = await this.o.port();
      if (port !== undefined) {
        const socket = await connect(port).catch(() => undefined);
        // stop() may have run while we were connecting: it saw no socket to
        // close, so close this one here instead of waiting on it forever.
        if (socket && this.stopping) socket.destroy();
        else if (socket) await this.session(socket);
      }
      if (!this.stopping) await sleep(this.o.reconnectMs);
    }
  }

  private session(socket: net.Socket): Promise<void> {
    this.stats.sessions++;
    this.socket = socket;
    this.pending = [];
    const keys: KeyEntry[] = [];
    const freshKey = (): KeyEntry => this.o.ledger.newKey(this.o.rng.pick(this.o.keyspaces), `${this.o.name}.${this.nextKey++}`);
    for (let i = 0; i < this.o.keysPerSession; i++) keys.push(freshKey());
    let inbox: Buffer = Buffer.alloc(0);

    const pump = (): void => {
      if (this.stopping || socket.destroyed) return;
      // Bursts of random size, so that group commits of many sizes happen.
      const room = this.o.window - this.pending.length;
      if (room <= 0) return;
      const burst = this.o.rng.int(1, room);
      const frames: Buffer[] = [];
      for (let i = 0; i < burst; i++) {
        const slot = this.o.rng.int(0, keys.length - 1);
        if (keys[slot]!.sent >= MAX_FRAMES_PER_KEY) keys[slot] = freshKey();
        const entry = keys[slot]!;
        const { index, increment } = this.o.ledger.nextFrame(entry);
        this.pending.push({ entry, index });
        frames.push(encodeFrame(increment, entry.keyspace, entry.key, this.o.sizes));
      }
      socket.write(Buffer.concat(frames));
    };

    return new Promise<void>((resolve) => {
      this.sessionDone = resolve;
      socket.on('data', (d: Buffer) => {
        inbox = inbox.length === 0 ? d : Buffer.concat([inbox, d]);
        let at = 0;
        for (; at + REPLY_SIZE <= inbox.length; at += REPLY_SIZE) {
          const reply = inbox.toString('latin1', at, at + REPLY_SIZE);
          const p = this.pending.shift();
          if (!p) {
            this.stats.protocolErrors.push(`reply ${JSON.stringify(reply)} to no frame`);
            continue;
          }
          if (reply === 'WIN') {
            this.o.ledger.win(p.entry, p.index);
            this.stats.wins++;
          } else if (reply === 'ERR') {
            this.o.ledger.err(p.entry, p.index);
            this.stats.errs++;
          } else this.stats.protocolErrors.push(`reply ${JSON.stringify(reply)} to an honest frame`);
        }
        inbox = inbox.subarray(at);
        pump();
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        this.socket = undefined;
        this.sessionDone = undefined;
        resolve();
      });
      pump();
    });
  }
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.off('error', reject);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
