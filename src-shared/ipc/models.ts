/**
 * The `models:` domain: installed model packages, and the long tasks that add or check them
 * (import a local checkpoint, pull one from the hub, verify checksums).
 */
import type { ProviderReport } from '../engine.ts';
import type { SerializedError } from '../errors.ts';
import { MAX_REPO_CHARS } from '../limits.ts';
import { v } from '../validate.ts';
import type { Infer } from '../validate.ts';
import { defineDomain, event, invoke } from './define.ts';
import type { EngineStatus } from './engine.ts';
import { modelId, opaqueId } from './fields.ts';

/** Opaque id of a long model task (import, pull, verify). */
export type TaskId = string;

/** Weight precision of a model component. */
export type ModelQuantization = 'fp32' | 'fp16' | 'int8' | 'int4';

/** What is known about a package's checksums. */
export interface ModelVerification {
  /** `verified`: every file matched its manifest checksum; `unverified`: not checked yet; `failed`: a file is missing or altered. */
  state: 'verified' | 'unverified' | 'failed';
  /** The failure, naming the file, when `failed`. */
  error: SerializedError | null;
}

/** An installed model package. */
export interface InstalledModel {
  id: string;
  name: string;
  family: string;
  /** Bytes of all the package's files. */
  sizeBytes: number;
  /** Weight precision per component; `null` (like the fields below) when the manifest is unreadable. */
  quantization: { vision: ModelQuantization; llm: ModelQuantization; embed: ModelQuantization } | null;
  /** The form it was made in (`cpu`, `gpu`, `reference`, or `custom` for other precisions). */
  preset: ModelPreset | 'custom' | null;
  /** Where it came from: the checkpoint's weight format. */
  sourceFormat: string | null;
  converterVersion: string | null;
  /** ISO 8601 time of conversion. */
  createdAt: string | null;
  /** Context length of the language model. */
  contextLength: number | null;
  verification: ModelVerification;
  /** True for the package in settings (`activeModelId`). */
  active: boolean;
  /** The execution provider last used to run it in this session, if it was loaded. */
  provider: ProviderReport | null;
}

/** Package name: shown, never a path. */
const packageName = v.string({ min: 1, max: 200, pattern: /^[^/\\\0]+$/, patternName: 'a name without slashes' });

/**
 * The forms a checkpoint can be converted into: `cpu` ("laptop": 4-bit language model, 8-bit
 * vision), `gpu-int4` (4-bit language model, 16-bit vision, the GPU decoder: 6–8 GB cards), `gpu`
 * (16-bit, the GPU decoder), `reference` (full precision, float32). The converter's presets
 * (models/quant/plan.ts).
 */
export type ModelPreset = 'cpu' | 'gpu-int4' | 'gpu' | 'reference';
/** Every {@link ModelPreset}, smallest first. */
export const MODEL_PRESETS: readonly ModelPreset[] = ['cpu', 'gpu-int4', 'gpu', 'reference'];
const preset = v.enum(MODEL_PRESETS);

/** How fast answers come in one form on this machine, in three steps. */
export type SpeedClass = 'fast' | 'medium' | 'slow';

/** One form a model can be made in, with what it costs on this machine. */
export interface ModelFormChoice {
  preset: ModelPreset;
  /** `Laptop`, `Small GPU`, `GPU`, `Full precision`. */
  title: string;
  /** What it is: `4-bit language model, 8-bit vision`. */
  summary: string;
  /** The model's name in this form (`mPLUG-Owl2 7B · 4-bit`). */
  name: string;
  /** The package on disk. */
  diskBytes: number;
  /** Free disk the conversion needs. */
  convertBytes: number;
  /** Memory it takes running on the processor. */
  memoryBytes: number;
  /** Memory it takes on a graphics card. */
  gpuMemoryBytes: number;
  /** Where it would run here. */
  runsOn: 'cpu' | 'gpu';
  speed: SpeedClass;
  /** The speed in words, for this machine. */
  speedText: string;
  /** False when this machine lacks the memory or the disk for it ({@link problem} says which). */
  fits: boolean;
  problem: string | null;
}

/** What the recommendation knew about this machine. */
export interface MachineSummary {
  totalMemoryBytes: number;
  /** Free disk where models are kept. */
  freeDiskBytes: number;
  /** The graphics card the engine can use, when known (its memory when that is known too). */
  gpu: { name: string; memoryBytes: number | null } | null;
}

/** The forms of a checkpoint with the one recommended for this machine, and why. */
export interface ModelForms {
  /** The model the sizes are for (`mPLUG-Owl2 7B`). */
  model: string;
  machine: MachineSummary;
  /** Smallest first. */
  choices: ModelFormChoice[];
  recommended: ModelPreset;
  /** Why, in a sentence or two. */
  reason: string;
}

/** A checkpoint folder chosen in the dialog and read (not converted yet). */
export interface ChosenCheckpoint {
  /** Names the folder in {@link modelsApi} `import` (the renderer never sees its path). */
  checkpointId: string;
  /** The folder's own name. */
  folderName: string;
  /** Its weight format. */
  format: 'safetensors' | 'pytorch';
  forms: ModelForms;
}

const importRequest = v.object({
  /** The folder chosen with `chooseCheckpoint`. */
  checkpointId: opaqueId,
  /** Which form to make (default: the one recommended for this machine). */
  preset: v.optional(preset),
  /** Package name (default: the model's name in that form, e.g. `mPLUG-Owl2 7B · 4-bit`). */
  name: v.optional(packageName),
  /** Weight format to read when the folder holds both. */
  prefer: v.optional(v.enum(['safetensors', 'pytorch'] as const)),
});
/** Convert a checkpoint folder chosen with `chooseCheckpoint`. */
export type ImportModelRequest = Infer<typeof importRequest>;

const pullRequest = v.object({
  /** Hub repository, `owner/name`. */
  repo: v.string({ max: MAX_REPO_CHARS, pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/, patternName: 'a hub repository id (owner/name)' }),
  /** Branch, tag or commit (default `main`). */
  revision: v.optional(v.string({ max: 200, pattern: /^[A-Za-z0-9][A-Za-z0-9._/-]*$/, patternName: 'a branch, tag or commit' })),
  name: v.optional(packageName),
  /** Which form to make once downloaded (default: the one recommended for this machine). */
  preset: v.optional(preset),
});
/** Download a checkpoint from the model hub and convert it. Refused in offline mode. */
export type PullModelRequest = Infer<typeof pullRequest>;

/** Kinds of long model tasks. */
export type ModelTaskKind = 'import' | 'pull' | 'verify';

/** A long model task and its progress; sent as `models:task` events and listed by `models.tasks`. */
export interface ModelTask {
  taskId: TaskId;
  kind: ModelTaskKind;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  /** What it is doing now (`downloading`, `hashing-source`, `writing-graphs`, …). */
  phase: string;
  /** Progress in `unit`s within the current phase; `total` is `null` when unknown. */
  done: number;
  total: number | null;
  unit: 'bytes' | 'tensors' | 'files';
  /** A label for the UI: the folder's or repository's name. */
  label: string;
  /** The package it produced or works on, once known. */
  modelId: string | null;
  error: SerializedError | null;
  startedAt: number;
  /** Increments with every event of the task. */
  seq: number;
}

const byId = v.object({ id: modelId });

/** `window.owlery.models`. */
export const modelsApi = defineDomain({
  /** Installed model packages. */
  list: invoke(v.none()).returns<InstalledModel[]>(),
  /** The forms of the official 7B model and the one recommended for this machine (for a download). */
  forms: invoke(v.none()).returns<ModelForms>(),
  /** Opens the folder dialog and reads the checkpoint chosen: its forms, sized for it (`null` when cancelled). */
  chooseCheckpoint: invoke(v.none()).returns<ChosenCheckpoint | null>(),
  /** Converts a checkpoint chosen with `chooseCheckpoint` into the form asked for. */
  import: invoke(importRequest).returns<{ taskId: TaskId }>(),
  /** Downloads and converts a checkpoint from the hub (`OFFLINE` in offline mode). */
  pull: invoke(pullRequest).returns<{ taskId: TaskId }>(),
  /** Re-checks every checksum of a package (a task: progress as events). */
  verify: invoke(byId).returns<{ taskId: TaskId }>(),
  /** Deletes a package (not the active one while it generates). */
  delete: invoke(byId).returns<null>(),
  /** Renames a package (the name shown everywhere; its id stays). */
  rename: invoke(v.object({ id: modelId, name: packageName })).returns<InstalledModel>(),
  /** Makes a package the active one and loads it in the engine. */
  select: invoke(byId).returns<EngineStatus>(),
  /** Tasks running or finished in this session. */
  tasks: invoke(v.none()).returns<ModelTask[]>(),
  cancelTask: invoke(v.object({ taskId: opaqueId })).returns<{ cancelled: boolean }>(),
  /** Model task progress (import, pull, verify). */
  onTask: event('models:task').carries<ModelTask>(),
  /** The installed model list changed (a package was added, deleted or selected). */
  onChange: event('models:changed').carries<{ ids: string[] }>(),
});
