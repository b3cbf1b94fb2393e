/**
 * Test environment for the chat service and exporters: a temporary data folder with a real
 * SQLite store and image store, the seeded tiny model converted to a package, and synthetic photos.
 */
import { fork, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { convertCheckpoint } from '../../models/convert.ts';
import { Store } from '../../src-main/store/store.ts';
import { ImageStore } from '../../src-main/store/images.ts';
import { ensureTinyCheckpoint, REPO_ROOT } from './tiny-model.ts';
import { VERIFY } from './verify.ts';

/** A small synthetic photo (PNG): a colour gradient with a disc, different per seed. */
export async function makePhoto(seed: number, w: number, h: number, format: 'png' | 'jpeg' = 'png'): Promise<Uint8Array> {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      const inDisc = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (Math.min(w, h) / 3) ** 2;
      data[i] = (x * 255) / w;
      data[i + 1] = inDisc ? (seed * 97) % 256 : (y * 255) / h;
      data[i + 2] = (seed * 53 + x + y) % 256;
    }
  }
  const img = sharp(data, { raw: { width: w, height: h, channels: 3 } });
  return new Uint8Array(await (format === 'png' ? img.png() : img.jpeg()).toBuffer());
}

/** Makes a temporary folder; remove it with `rm(dir, { recursive: true, force: true })`. */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * Converts the seeded tiny checkpoint into a model package under `dir` and returns its path.
 * `config` overrides parts of the tiny `config.json` (e.g. `{ max_position_embeddings: 300 }`).
 */
export async function tinyPackage(dir: string, seed = 1, config?: Record<string, unknown>): Promise<string> {
  const ckpt = await ensureTinyCheckpoint({ seed, config });
  const pkg = join(dir, config ? 'tiny-package-custom' : 'tiny-package');
  await convertCheckpoint(ckpt, pkg, { verify: VERIFY });
  return pkg;
}

/** A store and image store on a data folder. */
export interface StoreEnv {
  dataDir: string;
  dbFile: string;
  store: Store;
  images: ImageStore;
  close(): void;
}

/** Opens (creating) the history database and image store in `dataDir`. */
export function openStoreEnv(dataDir: string): StoreEnv {
  const dbFile = join(dataDir, 'owlery.sqlite');
  const { store } = Store.open(dbFile);
  const images = new ImageStore(store, dataDir);
  return { dataDir, dbFile, store, images, close: () => store.close() };
}

/** Removes a folder made by {@link tempDir}. */
export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}

/** The id of a process that has exited (for leftovers and locks "of a dead process"). */
export function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout.trim());
}

/** Whether process `pid` still exists (signal 0 probes without touching it). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A helper script of test/helpers run in its own process (for killing it), with what it printed. */
export interface TestChild<M> {
  child: ChildProcess;
  /** How it ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Its stdout and stderr so far, for failure messages. */
  output(): string;
  /**
   * Resolves with the first message `pick` returns a value for; rejects on an `error` message, or
   * when the child exits first (with its output).
   */
  message<T>(pick: (m: M) => T | undefined): Promise<T>;
}

/** Starts `script` (a path under test/, e.g. `helpers/chat-crash-child.ts`) with tsx, from the repository root. */
export function forkTestChild<M extends { type: string }>(script: string, args: string[]): TestChild<M> {
  const child = fork(join(REPO_ROOT, 'test', script), args, { cwd: REPO_ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    exited,
    output: () => output,
    message: (pick) =>
      new Promise((resolve, reject) => {
        child.on('message', (m: M) => {
          if (m.type === 'error') reject(new Error(`${(m as { message?: string }).message}\n${output}`));
          const value = pick(m);
          if (value !== undefined) resolve(value);
        });
        void exited.then((e) => reject(new Error(`the child exited early (${e.code ?? e.signal})\n${output}`)));
      }),
  };
}
