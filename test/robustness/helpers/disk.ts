/**
 * Real small filesystems for fault tests: a tmpfs mounted for the test (Linux, root only; tests
 * skip elsewhere, saying why), filled to the last byte on demand, remounted read-only and back.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, rmdirSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why tmpfs tests cannot run here, or `null` when they can. */
export const TMPFS_UNAVAILABLE: string | null =
  process.platform !== 'linux' ? `tmpfs fault tests need Linux (this is ${process.platform})`
    : process.getuid?.() !== 0 ? 'tmpfs fault tests need root to mount a small filesystem'
      : null;

/** A mounted tmpfs. */
export interface SmallDisk {
  readonly dir: string;
  /** Bytes free now. */
  free(): number;
  /**
   * Fills the disk: writes a filler file until the filesystem refuses more (ENOSPC), leaving
   * `leave` bytes (rounded down to blocks) free. Returns the filler's path; delete it to free space.
   */
  fill(leave?: number, name?: string): string;
  /** Remounts read-only (`true`) or read-write (`false`). */
  readOnly(on: boolean): void;
  /** Unmounts and removes the mount point. */
  unmount(): void;
}

/** Mounts a tmpfs of `bytes` (rounded up to 4 KiB), or returns `null` where that is not possible. */
export function mountSmallDisk(prefix: string, bytes: number): SmallDisk | null {
  if (TMPFS_UNAVAILABLE) return null;
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const kib = Math.ceil(bytes / 4096) * 4;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k,mode=0755`, 'owlery-robustness', dir], { stdio: 'ignore' });
  } catch {
    rmdirSync(dir);
    return null;
  }
  let fillers = 0;
  return {
    dir,
    free: () => {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    },
    fill(leave = 0, name = `.filler-${++fillers}`) {
      const path = join(dir, name);
      const fd = openSync(path, 'w');
      try {
        const bsize = statfsSync(dir).bsize;
        for (let chunk = 1 << 20; chunk >= bsize; ) {
          const s = statfsSync(dir);
          const room = s.bavail * s.bsize - leave;
          if (room < chunk) {
            chunk = Math.floor(chunk / 2);
            continue;
          }
          try {
            writeSync(fd, Buffer.alloc(chunk, 0x55));
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
            chunk = Math.floor(chunk / 2);
          }
        }
      } finally {
        closeSync(fd);
      }
      return path;
    },
    readOnly(on) {
      execFileSync('mount', ['-o', `remount,${on ? 'ro' : 'rw'}`, dir], { stdio: 'ignore' });
    },
    unmount() {
      try {
        execFileSync('umount', [dir], { stdio: 'ignore' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
