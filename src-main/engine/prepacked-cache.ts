/**
 * The opt-in "faster start" cache: `decoder.onnx` as onnxruntime saves it after packing its
 * weights for this CPU (`session.save_external_prepacked_constant_initializers`), so later loads
 * map the packed weights from disk instead of packing ~4 GB in one thread (7B `cpu` package:
 * decoder session creation 4.7 → 2.6 s, docs/performance.md).
 *
 * The cost is disk: the saved data holds the original and the packed weights (8.6 GB for the 7B's
 * 4.2 GB decoder), so the cache is off unless the user turns it on, keeps one entry (the model
 * loaded last), and is skipped when the disk has not room for it. An entry is keyed by everything
 * the packed form depends on (package and decoder checksum, onnxruntime version, CPU model,
 * architecture, graph optimization level), is written to a temporary folder and renamed when
 * complete, and is deleted and rebuilt when onnxruntime cannot load it.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, rename, rm, statfs, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { isFile } from '../../models/package/files.ts';
import type { PackageManifest } from '../../models/package/manifest.ts';
import { humanBytes } from '../../models/package/summary.ts';
import { firstLine } from './providers.ts';

/** Where the decoder came from, for the engine's load report. */
export type DecoderSource =
  | { from: 'package'; cacheSkipped?: string }
  | { from: 'prepacked-cache'; built: boolean; dir: string };

const COMPLETE = 'complete.json';

/** Free bytes the build needs, as a multiple of the package's decoder data (original + packed + slack). */
const SPACE_FACTOR = 2.3;

/** The cache entry key for a package under these session options. */
export function prepackedKey(manifest: PackageManifest, so: ort.InferenceSession.SessionOptions): string {
  const files = manifest.files.filter((f) => f.path === manifest.graphs.decoder.file || f.path === manifest.graphs.decoder.data);
  const parts = [
    manifest.id, ...files.map((f) => `${f.path}:${f.sha256}`), ort.env.versions.common ?? '', process.arch,
    cpus()[0]?.model ?? '', String(so.graphOptimizationLevel ?? ''),
  ];
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 24);
}

/**
 * Creates the decoder session through the cache in `cacheDir`: from a complete entry when there is
 * one, else builds the entry (one slower load) and loads from it. Falls back to the package's own
 * decoder when the entry cannot be built or loaded, saying why in the returned source.
 */
export async function createDecoderSession(
  manifest: PackageManifest, packageDecoder: string, cacheDir: string, so: ort.InferenceSession.SessionOptions,
): Promise<{ session: ort.InferenceSession; source: DecoderSource }> {
  const key = prepackedKey(manifest, so);
  const dir = join(cacheDir, key);
  const cached = join(dir, 'decoder.onnx');
  let built = false;
  if (!(await isFile(join(dir, COMPLETE)))) {
    const why = await build(manifest, packageDecoder, cacheDir, key, so);
    if (why) return { session: await ort.InferenceSession.create(packageDecoder, so), source: { from: 'package', cacheSkipped: why } };
    built = true;
  }
  try {
    return { session: await ort.InferenceSession.create(cached, so), source: { from: 'prepacked-cache', built, dir } };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    const why = `the saved form could not be loaded and was deleted (${firstLine(err)})`;
    return { session: await ort.InferenceSession.create(packageDecoder, so), source: { from: 'package', cacheSkipped: why } };
  }
}

/** Builds entry `key`; returns why not when it could not. Other entries are removed first. */
async function build(manifest: PackageManifest, packageDecoder: string, cacheDir: string, key: string, so: ort.InferenceSession.SessionOptions): Promise<string | undefined> {
  await mkdir(cacheDir, { recursive: true });
  for (const name of await readdir(cacheDir)) {
    if (name !== key) await rm(join(cacheDir, name), { recursive: true, force: true });
  }
  const dataFile = manifest.files.find((f) => f.path === manifest.graphs.decoder.data);
  const need = Math.ceil((dataFile?.size ?? 0) * SPACE_FACTOR);
  const fs = await statfs(cacheDir);
  const free = fs.bavail * fs.bsize;
  if (free < need) return `not enough disk space for the faster-start copy (${humanBytes(need)} needed, ${humanBytes(free)} free)`;
  const tmp = join(cacheDir, `.building-${key}-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  try {
    const session = await ort.InferenceSession.create(packageDecoder, {
      ...so,
      optimizedModelFilePath: join(tmp, 'decoder.onnx'),
      extra: {
        ...(so.extra ?? {}),
        session: {
          ...((so.extra as { session?: Record<string, unknown> } | undefined)?.session ?? {}),
          optimized_model_external_initializers_file_name: 'decoder.onnx.data',
          optimized_model_external_initializers_min_size_in_bytes: '1024',
          save_external_prepacked_constant_initializers: '1',
        },
      },
    });
    await session.release();
    await writeFile(join(tmp, COMPLETE), JSON.stringify({ package: manifest.id, onnxruntime: ort.env.versions.common, createdAt: new Date().toISOString() }));
    await rename(tmp, join(cacheDir, key));
    return undefined;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    return `the faster-start copy could not be written (${firstLine(err)})`;
  }
}

