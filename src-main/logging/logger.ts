/**
 * Logs people can find: one JSON object per line in `<data folder>/logs/<name>.log` (`main`,
 * `engine`, `cli`), rotated by size (`<name>.1.log` … `<name>.<keep>.log`, oldest dropped), written
 * by the same code in the Electron main process, the engine process and the `owlery` command.
 *
 * Why not electron-log or pino: the three writers are plain Node as much as Electron (the engine
 * is a utility process or a fork, the CLI has no Electron at all), and what they need is small —
 * levels, size rotation with a few archives, JSON lines the "Copy diagnostics" action can read
 * back. A hundred lines of ours cover it without a dependency in every process.
 *
 * Writing is synchronous and best effort: a line is appended before the call returns (so a crash
 * right after it keeps it), and a full or read-only disk never throws into the caller — the logger
 * then stops writing and says so once on stderr. Message text and photos never go into a log:
 * callers log what happened, not what was said.
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Severity, least to most. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** One line of a log file. */
export interface LogRecord {
  /** ISO time. */
  t: string;
  level: LogLevel;
  /** Which process wrote it (`main`, `engine`, `cli`). */
  name: string;
  pid: number;
  msg: string;
  /** An error's code and name, and its stack (first lines). */
  err?: { name: string; code?: string; message: string; stack?: string };
  /** Small structured facts (ids, sizes, timings): never message text. */
  data?: Record<string, unknown>;
}

/** What callers log through. */
export interface Logger {
  debug(msg: string, data?: Record<string, unknown>): void;
  info(msg: string, data?: Record<string, unknown>): void;
  warn(msg: string, data?: Record<string, unknown>, err?: unknown): void;
  error(msg: string, err?: unknown, data?: Record<string, unknown>): void;
  /** The file written to, if any. */
  readonly file: string | null;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** The `logs` folder (created when the first line is written); unset: no file. */
  dir?: string | null;
  /** File name without `.log`, and the `name` of each record. */
  name: string;
  /** Lowest level written (default `info`). */
  level?: LogLevel;
  /** Also print lines at or above this level to stderr (default: none). */
  echo?: LogLevel | null;
  /** Size at which the file is rotated (default 2 MiB). */
  maxBytes?: number;
  /** Archives kept (default 3). */
  keep?: number;
  /** Clock (tests). */
  now?: () => Date;
}

/** A logger that writes nothing (tests, and code that runs before the data folder is known). */
export const SILENT: Logger = { debug() {}, info() {}, warn() {}, error() {}, file: null };

/** The log file of `name` in `dir`. */
export function logFile(dir: string, name: string): string {
  return join(dir, `${name}.log`);
}

/** See the module comment. */
export function createLogger(opts: LoggerOptions): Logger {
  const min = LEVELS.indexOf(opts.level ?? 'info');
  const echo = opts.echo ? LEVELS.indexOf(opts.echo) : Infinity;
  const maxBytes = opts.maxBytes ?? 2 * 1024 * 1024;
  const keep = Math.max(0, opts.keep ?? 3);
  const now = opts.now ?? (() => new Date());
  const file = opts.dir ? logFile(opts.dir, opts.name) : null;
  let size = -1;
  let broken = false;

  const rotate = (): void => {
    if (!file || !opts.dir) return;
    rmSync(join(opts.dir, `${opts.name}.${keep}.log`), { force: true });
    for (let i = keep - 1; i >= 1; i--) {
      try {
        renameSync(join(opts.dir, `${opts.name}.${i}.log`), join(opts.dir, `${opts.name}.${i + 1}.log`));
      } catch {
        // That archive does not exist yet.
      }
    }
    if (keep > 0) renameSync(file, join(opts.dir, `${opts.name}.1.log`));
    else rmSync(file, { force: true });
    size = 0;
  };

  const write = (level: LogLevel, msg: string, data?: Record<string, unknown>, err?: unknown): void => {
    const rank = LEVELS.indexOf(level);
    if (rank < min && rank < echo) return;
    const record: LogRecord = { t: now().toISOString(), level, name: opts.name, pid: process.pid, msg };
    if (err !== undefined) record.err = errorFacts(err);
    if (data && Object.keys(data).length > 0) record.data = data;
    const line = `${JSON.stringify(record)}\n`;
    if (rank >= echo) process.stderr.write(`owlery ${level}: ${msg}${record.err ? `: ${record.err.message}` : ''}\n`);
    if (!file || broken || rank < min) return;
    try {
      if (size < 0) {
        mkdirSync(opts.dir!, { recursive: true });
        size = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
      }
      if (size > 0 && size + line.length > maxBytes) rotate();
      appendFileSync(file, line);
      size += Buffer.byteLength(line);
    } catch (e) {
      broken = true;
      process.stderr.write(`owlery: cannot write the log ${file} (${(e as Error).message}); logging to it stops\n`);
    }
  };

  return {
    debug: (msg, data) => write('debug', msg, data),
    info: (msg, data) => write('info', msg, data),
    warn: (msg, data, err) => write('warn', msg, data, err),
    error: (msg, err, data) => write('error', msg, data, err),
    file,
  };
}

/** An error's name, code, message and the top of its stack, with the home folder shortened to `~`. */
export function errorFacts(err: unknown): NonNullable<LogRecord['err']> {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      name: err.name,
      ...(typeof code === 'string' ? { code } : {}),
      message: redactHome(err.message),
      ...(err.stack ? { stack: redactHome(err.stack.split('\n').slice(0, 8).join('\n')) } : {}),
    };
  }
  return { name: typeof err, message: redactHome(String(err)) };
}

/** Replaces the user's home folder with `~` (paths say who the user is). */
export function redactHome(text: string): string {
  const home = homedir();
  return home && home.length > 1 ? text.split(home).join('~') : text;
}

/**
 * The last `count` records at `level` or above from the logs in `dir` (current files and their
 * newest archives), newest last. Unreadable lines are skipped.
 */
export function readRecentLogs(dir: string, names: readonly string[], opts: { level?: LogLevel; count?: number } = {}): LogRecord[] {
  const min = LEVELS.indexOf(opts.level ?? 'warn');
  const out: LogRecord[] = [];
  for (const name of names) {
    for (const f of [join(dir, `${name}.1.log`), logFile(dir, name)]) {
      let text: string;
      try {
        text = readFileSync(f, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        if (!line) continue;
        try {
          const r = JSON.parse(line) as LogRecord;
          if (LEVELS.indexOf(r.level) >= min) out.push(r);
        } catch {
          // A line cut by a crash or edited by hand.
        }
      }
    }
  }
  out.sort((a, b) => a.t.localeCompare(b.t));
  return out.slice(-(opts.count ?? 20));
}

/**
 * The app's data folder, where the desktop app keeps its history, models and `logs/` (Electron's
 * `userData` for the product name Owlery), for code that runs without Electron (the CLI):
 * `OWLERY_DATA_DIR` when set, else `%APPDATA%\Owlery`, `~/Library/Application Support/Owlery` or
 * `$XDG_CONFIG_HOME/Owlery` (default `~/.config/Owlery`).
 */
export function appDataDir(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): string {
  if (env.OWLERY_DATA_DIR) return env.OWLERY_DATA_DIR;
  if (platform === 'win32') return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'Owlery');
  if (platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'Owlery');
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'Owlery');
}
