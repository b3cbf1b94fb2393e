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

const importRequest = v.object({
  /** Package name (default: the folder's name). */
  name: v.optional(packageName),
  /** Weight format to read when the folder holds both. */
  prefer: v.optional(v.enum(['safetensors', 'pytorch'] as const)),
});
/** Options of a local checkpoint import (the folder itself comes from a dialog). */
export type ImportModelRequest = Infer<typeof importRequest>;

const pullRequest = v.object({
  /** Hub repository, `owner/name`. */
  repo: v.string({ max: MAX_REPO_CHARS, pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/, patternName: 'a hub repository id (owner/name)' }),
  /** Branch, tag or commit (default `main`). */
  revision: v.optional(v.string({ max: 200, pattern: /^[A-Za-z0-9][A-Za-z0-9._/-]*$/, patternName: 'a branch, tag or commit' })),
  name: v.optional(packageName),
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
  /** Opens the folder dialog and converts the checkpoint chosen (`null` when cancelled). */
  import: invoke(importRequest).returns<{ taskId: TaskId } | null>(),
  /** Downloads and converts a checkpoint from the hub (`OFFLINE` in offline mode). */
  pull: invoke(pullRequest).returns<{ taskId: TaskId }>(),
  /** Re-checks every checksum of a package (a task: progress as events). */
  verify: invoke(byId).returns<{ taskId: TaskId }>(),
  /** Deletes a package (not the active one while it generates). */
  delete: invoke(byId).returns<null>(),
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
