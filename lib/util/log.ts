// Logging for every role: one line per event on stderr, either
// `[role] message key=value ...` (text) or a JSON object per line (json).
// Roles take a Logger; they never write to the console themselves.

export type LogFormat = 'text' | 'json';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | bigint | boolean | null | undefined>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger for a sub-role, e.g. logger.child('worker'). */
  child(role: string): Logger;
}

export interface LoggerOptions {
  role: string;
  format?: LogFormat;
  /** Where lines go; default process.stderr. */
  write?: (line: string) => void;
  debug?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const format = options.format ?? 'text';
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const make = (role: string): Logger => {
    const emit = (level: LogLevel, message: string, fields?: LogFields): void => {
      if (level === 'debug' && !options.debug) return;
      write(formatLine(format, role, level, message, fields));
    };
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (sub) => make(sub),
    };
  };
  return make(options.role);
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};

export function formatLine(format: LogFormat, role: string, level: LogLevel, message: string, fields?: LogFields): string {
  if (format === 'json') {
    const obj: Record<string, unknown> = { time: new Date().toISOString(), level, role, msg: message };
    for (const [k, v] of Object.entries(fields ?? {})) {
      if (v !== undefined) obj[k] = typeof v === 'bigint' ? v.toString() : v;
    }
    return JSON.stringify(obj) + '\n';
  }
  let line = `[${role}] ${level === 'info' ? '' : level + ': '}${message}`;
  for (const [k, v] of Object.entries(fields ?? {})) {
    if (v === undefined) continue;
    const s = String(v);
    line += ` ${k}=${/[\s"=]/.test(s) ? JSON.stringify(s) : s}`;
  }
  return line + '\n';
}
