/**
 * Downscaling on import: how long the image store takes to store a photo over the pixel limit
 * (a 12000×12000 JPEG, PNG and TIFF, an 11000×11000 WebP — libwebp would not encode a noisy 12000² one to make the source — and a 16000×12000 JPEG) as its 4096 px copy, its peak
 * memory doing so (each import runs in a fresh child process: `maxRSS` is that import's), and how
 * long importing the same original again takes (found by the original's hash, nothing decoded).
 * Prints a table and saves JSON to `bench/results/downscale-<date>.json`.
 *
 *   npx tsx bench/downscale-bench.ts
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { ImageStore } from '../src-main/store/images.ts';
import { Store } from '../src-main/store/store.ts';

interface Result {
  file: string;
  bytes: number;
  from: string;
  to: string;
  storedBytes: number;
  importMs: number;
  againMs: number;
  peakRssMb: number;
}

async function child(file: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'owlery-downscale-'));
  try {
    const { store } = Store.open(join(dir, 'history.sqlite'));
    const images = new ImageStore(store, dir);
    const bytes = new Uint8Array(readFileSync(file));
    const t0 = performance.now();
    const rec = await images.put(bytes, { name: file });
    const t1 = performance.now();
    await images.put(bytes, { name: file });
    const t2 = performance.now();
    const result: Result = {
      file: file.split('/').pop()!,
      bytes: bytes.length,
      from: `${rec.downscaledFrom?.width}×${rec.downscaledFrom?.height}`,
      to: `${rec.width}×${rec.height}`,
      storedBytes: rec.byteSize,
      importMs: Math.round(t1 - t0),
      againMs: Math.round((t2 - t1) * 10) / 10,
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    };
    store.close();
    process.send!(result);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'owlery-downscale-src-'));
  try {
    // A noisy source, upscaled smoothly for the lossy formats (photo-like work for their encoders)
    // and in blocks for the lossless ones (a smooth 144 MP PNG or TIFF passes the 256 MiB file limit).
    const base = await sharp({ create: { width: 300, height: 300, channels: 3, background: { r: 0, g: 0, b: 0 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).png().toBuffer();
    const make = async (name: string, w: number, h: number, fmt: 'jpeg' | 'png' | 'webp' | 'tiff'): Promise<string> => {
      const file = join(work, name);
      const img = sharp(base).resize(w, h, { kernel: fmt === 'png' || fmt === 'tiff' ? 'nearest' : 'cubic' });
      await (fmt === 'jpeg' ? img.jpeg({ quality: 90 }) : fmt === 'png' ? img.png() : fmt === 'webp' ? img.webp({ quality: 85 }) : img.tiff({ compression: 'lzw' })).toFile(file);
      return file;
    };
    const files = [
      await make('12000x12000.jpg', 12000, 12000, 'jpeg'),
      await make('12000x12000.png', 12000, 12000, 'png'),
      await make('11000x11000.webp', 11000, 11000, 'webp'),
      await make('12000x12000.tif', 12000, 12000, 'tiff'),
      await make('16000x12000.jpg', 16000, 12000, 'jpeg'),
    ];
    const results: Result[] = [];
    for (const file of files) {
      results.push(await new Promise<Result>((resolve, reject) => {
        const p = fork(fileURLToPath(import.meta.url), ['--child', file], { execArgv: process.execArgv });
        p.once('message', (m) => resolve(m as Result));
        p.once('error', reject);
        p.once('exit', (code) => code !== 0 && reject(new Error(`child exited ${code}`)));
      }));
    }
    console.log(`downscale on import (${cpus().length} × ${cpus()[0]?.model ?? 'cpu'})`);
    console.log('file                  size MB  from         to          stored MB  import ms  again ms  peak RSS MB');
    for (const r of results) {
      console.log(
        `${r.file.padEnd(20)} ${(r.bytes / 1e6).toFixed(1).padStart(8)}  ${r.from.padEnd(11)}  ${r.to.padEnd(10)}  ${(r.storedBytes / 1e6).toFixed(1).padStart(9)}  ${String(r.importMs).padStart(9)}  ${String(r.againMs).padStart(8)}  ${String(r.peakRssMb).padStart(11)}`,
      );
    }
    const out = join(import.meta.dirname, 'results');
    mkdirSync(out, { recursive: true });
    const path = join(out, `downscale-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.json`);
    writeFileSync(path, `${JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, results }, null, 2)}\n`);
    console.log(`saved ${path}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3]!);
else await main();
