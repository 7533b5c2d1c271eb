// The settings and the delay curve of flow control (flow.ts), apart from
// it so that the command line can check the settings without loading the
// metrics. README "Operations: flow control".

import { invalidArgument } from '../../errors.js';

const MiB = 1024 * 1024;
export const DEFAULT_BACKLOG_SOFT = 64 * MiB;
export const DEFAULT_BACKLOG_HARD = 128 * MiB;
/** Each bound is at least this many commit logs: below it, hand-overs by time alone would stall writes. */
export const MIN_BACKLOG_LOGS = 4;
/** The backlog is scanned at most this often (and before each new log). */
export const FLOW_POLL_MS = 100;
/** Longest hold of one batch's WINs: beyond it, the hard bound does the rest. */
export const MAX_ACK_DELAY_MS = 1000;
/** The delayed rate at the hard bound is the rate at the soft bound divided by this. */
export const RATE_SPAN = 64;

export interface FlowBounds {
  soft: number;
  hard: number;
  /** Bytes per second admitted at the soft bound (delayedRate); hard - soft when absent. */
  rate?: number;
}

/**
 * Default --backlog-ms, in seconds: the hard bound in seconds of applying
 * at the drain rate measured (flow-drain.ts), the soft bound half of it; the
 * byte bounds still cap both. 0 turns it off (bytes only).
 */
export const DEFAULT_BACKLOG_SECONDS = 1;
/**
 * Least logs of the bounds in time. While the worker applies one log the
 * writer fills the next and a third may be handed over: with fewer, every
 * hand-over would delay or stop the writer even though the worker keeps up
 * (measured: soft at one log and hard at two cut acknowledgements 3x).
 */
export const MIN_TIMED_SOFT_LOGS = 2;
export const MIN_TIMED_HARD_LOGS = 3;

/**
 * The bounds in force: the byte bounds, or, once a drain rate is measured
 * and `seconds` > 0, `seconds` of draining (hard) and half of it (soft),
 * within the byte bounds and never under MIN_TIMED_*_LOGS logs; at the
 * soft bound the writer is then slowed to the drain rate (not to hard -
 * soft per second, which at a few logs would be far below it).
 */
export function timedBounds(bytes: FlowBounds, seconds: number, drainRate: number | undefined, logSize: number): FlowBounds {
  if (!(seconds > 0) || drainRate === undefined) return bytes;
  const hard = Math.min(bytes.hard, Math.max(MIN_TIMED_HARD_LOGS * logSize, Math.floor(drainRate * seconds)));
  const soft = Math.min(bytes.soft, Math.max(MIN_TIMED_SOFT_LOGS * logSize, Math.floor(hard / 2)));
  if (soft === bytes.soft && hard === bytes.hard) return bytes;
  const h = Math.max(hard, soft + logSize);
  return { soft, hard: h, rate: Math.max(h - soft, drainRate) };
}

/** --backlog-seconds: a finite number, 0 (off) to 3600. */
export function checkBacklogSeconds(seconds: number | undefined): number {
  if (seconds === undefined) return DEFAULT_BACKLOG_SECONDS;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0 || seconds > 3600) throw invalidArgument(`backlog seconds must be a number from 0 to 3600, got ${String(seconds)}`);
  return seconds;
}

/**
 * The bounds from the settings (undefined: default), checked together:
 * each an integer, soft at least MIN_BACKLOG_LOGS logs, hard above soft.
 * A default follows an explicit other bound (hard: at least twice soft;
 * soft: at most half of hard) and the log size.
 */
export function checkFlowBounds(soft: number | undefined, hard: number | undefined, logSize: number): FlowBounds {
  const least = MIN_BACKLOG_LOGS * logSize;
  for (const [what, v] of [['backlog soft bound', soft], ['backlog hard bound', hard]] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v <= 0)) throw invalidArgument(`${what} must be a positive integer of bytes, got ${String(v)}`);
  }
  const s = soft ?? Math.max(least, hard === undefined ? DEFAULT_BACKLOG_SOFT : Math.min(DEFAULT_BACKLOG_SOFT, Math.floor(hard / 2)));
  const h = hard ?? Math.max(DEFAULT_BACKLOG_HARD, 2 * s);
  if (s < least) throw invalidArgument(`backlog soft bound ${s} is below ${MIN_BACKLOG_LOGS} commit logs of ${logSize} bytes (${least})`);
  if (h <= s) throw invalidArgument(`backlog hard bound ${h} must be above the soft bound ${s}`);
  return { soft: s, hard: h };
}

/** Bytes per second admitted at `backlog`: Infinity below soft, b.rate (default hard - soft) at soft, falling geometrically to (hard - soft) / RATE_SPAN at hard. */
export function delayedRate(backlog: number, b: FlowBounds): number {
  if (backlog < b.soft) return Infinity;
  const gap = b.hard - b.soft;
  const f = Math.min(1, (backlog - b.soft) / gap);
  return (b.rate ?? gap) * RATE_SPAN ** -f;
}

/** How long the WINs of a batch of `batchBytes` are held at `backlog`, in ms (0 below soft). */
export function ackDelayMs(batchBytes: number, backlog: number, b: FlowBounds): number {
  const rate = delayedRate(backlog, b);
  if (rate === Infinity || batchBytes <= 0) return 0;
  return Math.min(MAX_ACK_DELAY_MS, (1000 * batchBytes) / rate);
}

