/**
 * Describes one photo with the engine: the caption request, then the keywords request (prompts.ts:
 * the same instruction and photo, another question), the model's text parsed into a caption and
 * keywords (text.ts). Shared
 * by the describe service (jobs in the app) and `owlery describe` (the CLI).
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { DescriptionSettings } from '../../src-shared/describe.ts';
import type { GenerationStats } from '../../src-shared/engine.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { MANIFEST_FILE, sha256File } from '../../models/package/index.ts';
import { MAX_IMAGE_FILE_BYTES } from '../../src-shared/limits.ts';
import type { EngineInfo, GenerateRequest, GenerateResult, HostGenerateOptions, ImageInput } from '../engine/index.ts';
import { downscaledForModel } from '../store/images.ts';
import { captionRequest, describeSettings, keywordsRequest } from './prompts.ts';
import { parseCaption, parseKeywords } from './text.ts';

/** What describing needs of the engine: the app's `EngineService`, or an `EngineHost` with a model loaded. */
export interface DescribeEngine {
  generate(request: GenerateRequest, options?: HostGenerateOptions): Promise<GenerateResult>;
  /** The model the engine has loaded now. */
  readonly info: EngineInfo | undefined;
}

/** The model package that writes a description: its id, its manifest's sha256, the provider running it. */
export interface ModelIdentity {
  packageId: string;
  modelSha256: string;
  provider: string | null;
}

const manifestHashes = new Map<string, Promise<string>>();

/** The identity of the loaded model (the manifest's hash is computed once per package folder). */
export async function modelIdentity(info: EngineInfo): Promise<ModelIdentity> {
  let hash = manifestHashes.get(info.dir);
  if (!hash) {
    hash = sha256File(join(info.dir, MANIFEST_FILE));
    manifestHashes.set(info.dir, hash);
    hash.catch(() => manifestHashes.delete(info.dir));
  }
  return { packageId: info.packageId, modelSha256: await hash, provider: info.provider.used ?? null };
}

/** A photo described. */
export interface PhotoDescribed {
  caption: string;
  keywords: string[];
  /** What the model wrote, before parsing. */
  raw: { caption: string; keywords: string };
  settings: DescriptionSettings;
  /** Wall-clock time of both requests, in ms. */
  ms: number;
  /** The two requests' statistics (prefix reuse, prefill and decode speeds). */
  stats: { caption: GenerationStats; keywords: GenerationStats };
}

/**
 * Describes the photo at `path` (whose bytes hash to `sha256`: the engine's embeddings-cache key).
 * A photo over the engine's pixel limit is described from the downscaled copy an import into a
 * chat would store (`downscaledForModel`). Throws the engine's error (`IMAGE_UNREADABLE`,
 * `IMAGE_TOO_LARGE`, `ENGINE_CRASHED`, …), `CANCELLED` when `signal` aborts it, and `EMPTY_ANSWER`
 * when the model wrote no caption.
 */
export async function describePhoto(engine: DescribeEngine, path: string, sha256: string, signal?: AbortSignal): Promise<PhotoDescribed> {
  const t0 = performance.now();
  let image: ImageInput = { path, sha256 };
  const cancelled = () => new OwleryError('CANCELLED', 'Describing the photo was stopped.');
  if (signal?.aborted) throw cancelled();
  const first = await engine.generate(captionRequest(image), { signal }).catch(async (err: unknown) => {
    if (!(err instanceof OwleryError && err.code === 'IMAGE_TOO_LARGE')) throw err;
    const smaller = await shrunkCopy(path, err);
    image = smaller;
    return engine.generate(captionRequest(image), { signal });
  });
  if (first.finish === 'cancelled' || signal?.aborted) throw cancelled();
  const caption = parseCaption(first.text);
  if (!caption) throw new OwleryError('EMPTY_ANSWER', 'The model wrote no caption for this photo.', { raw: first.text.slice(0, 200) });
  const second = await engine.generate(keywordsRequest(image), { signal });
  if (second.finish === 'cancelled' || signal?.aborted) throw cancelled();
  return {
    caption,
    keywords: parseKeywords(second.text),
    raw: { caption: first.text, keywords: second.text },
    settings: describeSettings(first.stats.provider ?? null),
    ms: performance.now() - t0,
    stats: { caption: first.stats, keywords: second.stats },
  };
}

/**
 * The downscaled copy of a photo the engine refused as too large (`refusal`), or `refusal` itself
 * when the photo cannot be downscaled (too large a file to read, not over the pixel limit, an
 * animation, past the largest size Owlery downscales).
 */
async function shrunkCopy(path: string, refusal: OwleryError): Promise<Uint8Array> {
  if ((await stat(path)).size > MAX_IMAGE_FILE_BYTES) throw refusal;
  const copy = await downscaledForModel(new Uint8Array(await readFile(path)), basename(path));
  if (!copy) throw refusal;
  return copy.bytes;
}
