/**
 * The lock on the data folder: while services run on a folder they hold `owlery.lock` in it (the
 * owner's process id, host, boot time and a token), so a second instance, in this process or
 * another, is refused with a clear `DB_LOCKED` naming the first one's process instead of opening the
 * same history and settings beside it (writes would interleave safely, but settings would go stale
 * between the two). The app also holds Electron's single-instance lock, which focuses the first
 * window; this one guards the services themselves (the CLI, the web harness, a second build).
 *
 * The file is created complete or not at all (written under a temporary name, then hard-linked
 * into place, which fails if it exists). A lock whose process is gone (killed, crashed, from before
 * a reboot) is taken over; one from another host is honoured, and the message says which host.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname, uptime } from 'node:os';
import { join } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { processAlive } from '../../models/package/stale.ts';
import { toStoreError } from '../store/errors.ts';

/** The lock file's name in the data folder. */
export const LOCK_FILE = 'owlery.lock';

/** What the lock file says. */
export interface LockOwner {
  pid: number;
  hostname: string;
  /** When the owner's machine booted (ms since 1970), to tell a reused process id after a reboot. */
  bootTime: number;
  startedAt: string;
  token: string;
}

/** A held lock. */
export interface DataLock {
  readonly file: string;
  /** Removes the lock file if it is still ours (safe to call twice). */
  release(): void;
}

/** Locks held by this process, by file (a second services instance in one process is refused too). */
const heldHere = new Set<string>();

function bootTime(): number {
  return Date.now() - uptime() * 1000;
}

function readOwner(file: string): LockOwner | null {
  try {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockOwner>;
    if (typeof raw.pid !== 'number' || typeof raw.hostname !== 'string' || typeof raw.bootTime !== 'number') return null;
    return raw as LockOwner;
  } catch {
    return null;
  }
}

/** Whether the owner of a lock may still be running. */
function ownerAlive(owner: LockOwner, file: string): boolean {
  if (owner.hostname !== hostname()) return true; // cannot tell from here
  if (Math.abs(owner.bootTime - bootTime()) > 5 * 60_000) return false; // from before a reboot
  if (owner.pid === process.pid) return heldHere.has(file);
  return processAlive(owner.pid);
}

/**
 * Takes the lock on `dataDir` (which must exist). Throws `DB_LOCKED` when services of another live
 * process, or of this one, hold it.
 */
export function acquireDataLock(dataDir: string): DataLock {
  try {
    return lock(dataDir);
  } catch (err) {
    // A read-only or full disk: the same words as the store would use.
    throw toStoreError(err, join(dataDir, LOCK_FILE), 'the data folder');
  }
}

function lock(dataDir: string): DataLock {
  const file = join(dataDir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, hostname: hostname(), bootTime: bootTime(), startedAt: new Date().toISOString(), token: randomBytes(8).toString('hex') };
  const tmp = `${file}.${process.pid}-${me.token}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, `${JSON.stringify(me)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, file);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw err;
      }
      const owner = readOwner(file);
      if (owner && ownerAlive(owner, file)) {
        const where = owner.hostname === me.hostname ? '' : ` on ${owner.hostname}`;
        throw new OwleryError('DB_LOCKED',
          `Owlery is already running with the data folder ${dataDir} (process ${owner.pid}${where}, since ${owner.startedAt}). ` +
          `Switch to that window, or close it first.${where ? ` If that computer no longer runs Owlery, delete ${file}.` : ''}`,
          { file, pid: owner.pid, hostname: owner.hostname });
      }
      // Gone (or unreadable): take it over. Renaming it away first means only one taker wins; if
      // what was renamed is not the lock judged stale (another taker's fresh one), it goes back.
      const stale = `${file}.stale-${process.pid}-${me.token}`;
      try {
        renameSync(file, stale);
        if (readOwner(stale)?.token !== owner?.token) linkSync(stale, file);
      } catch {
        // Another instance took it over first: look again.
      }
      rmSync(stale, { force: true });
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  heldHere.add(file);
  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      heldHere.delete(file);
      if (readOwner(file)?.token === me.token) rmSync(file, { force: true });
    },
  };
}
