/**
 * Photo-folder descriptions (issue 14): the data the describe service (src-main/describe) stores,
 * reports and returns — jobs and their progress, per-photo results and errors, descriptions with
 * their provenance, search hits over captions and keywords. Data only: no Node, no Electron, no DOM.
 *
 * Photos are named by absolute path in the main process; the IPC layer maps them to the opaque
 * folder/entry ids the renderer uses. Times are milliseconds since the Unix epoch (UTC).
 */
import type { SerializedError } from './errors.ts';
import type { HighlightedText } from './domain.ts';

/** Row id of a describe job. */
export type DescribeJobId = number;

/**
 * Where a job stands. `queued` waits for the one running job; `running` is being worked on (or was,
 * when the app stopped: it continues at the next start); `paused` waits for `resume`; `done` and
 * `cancelled` are final.
 */
export type DescribeJobState = 'queued' | 'running' | 'paused' | 'done' | 'cancelled';

/** How a sidecar is named: `photo.jpg.xmp` (darktable, digiKam's default) or `photo.xmp` (Lightroom). */
export type SidecarNaming = 'photo.jpg.xmp' | 'photo.xmp';

/** What a job describes, and whether it writes XMP sidecars. */
export interface DescribeJobSpec {
  /** Folders whose photos are described (absolute paths). */
  folders: string[];
  /** Photos chosen one by one (absolute paths), e.g. a selection in the Photos panel. */
  files: string[];
  /** Descend into subfolders of `folders` (default false). */
  recursive: boolean;
  /** Write XMP sidecars next to the photos (opt-in; null: no sidecars). */
  sidecars: { naming: SidecarNaming } | null;
}

/** How far a job is. */
export interface DescribeProgress {
  /** Photos in the job. */
  total: number;
  /** Photos finished: described, skipped (already described) or failed. */
  finished: number;
  described: number;
  /** Photos already described with the same model package, prompt version and content. */
  skipped: number;
  failed: number;
  /** Photos described per minute while the job ran (skipped photos do not count); null before the first. */
  photosPerMinute: number | null;
  /** Seconds left at that rate; null while unknown. */
  etaSeconds: number | null;
  /** The photo being described now (its path), for the progress thumbnail. */
  current: string | null;
}

/** A job as the UI lists it. */
export interface DescribeJob {
  id: DescribeJobId;
  state: DescribeJobState;
  spec: DescribeJobSpec;
  /** Version of the fixed prompts the job describes with. */
  promptVersion: string;
  progress: DescribeProgress;
  createdAt: number;
  updatedAt: number;
  /** When it ended (`done` or `cancelled`). */
  finishedAt: number | null;
}

/** Where one photo of a job stands. */
export type DescribeItemState = 'pending' | 'described' | 'skipped' | 'failed';

/** One photo of a job whose description failed, or whose sidecar could not be written. */
export interface DescribeItemError {
  path: string;
  /** `describe`: no description (the photo is `failed`); `sidecar`: described, but its sidecar was not written. */
  stage: 'describe' | 'sidecar';
  error: Pick<SerializedError, 'code' | 'message'>;
}

/** Who wrote a description, and how. */
export interface DescriptionProvenance {
  /** The model package's id and the sha256 of its manifest. */
  packageId: string;
  modelSha256: string;
  /** Version of the fixed prompts. */
  promptVersion: string;
  /** Decoding settings (greedy, token limits, aspect mode, provider used). */
  settings: DescriptionSettings;
  /** When it was written. */
  describedAt: number;
  /** How long describing the photo took, in ms. */
  ms: number;
}

/** The decoding settings stored with a description. */
export interface DescriptionSettings {
  greedy: true;
  captionMaxTokens: number;
  keywordsMaxTokens: number;
  aspectMode: string;
  /** Execution provider that ran the model (`cpu`, `cuda`, …). */
  provider: string | null;
}

/** A photo's description. */
export interface PhotoDescription {
  /** sha256 of the photo's bytes. */
  sha256: string;
  /** One or two sentences. */
  caption: string;
  /** Lower-case keywords, de-duplicated, at most 15. */
  keywords: string[];
  provenance: DescriptionProvenance;
}

/** A described photo in an export or a folder listing. */
export interface DescribedPhoto extends PhotoDescription {
  path: string;
}

/** One photo found by a description search. */
export interface DescriptionHit {
  sha256: string;
  /** Where the photo was seen (a photo can be in several places). */
  paths: string[];
  /** The caption with the matches marked. */
  caption: HighlightedText;
  keywords: string[];
  /** The keywords that matched the query (or the chip filter). */
  matchedKeywords: string[];
  /** bm25 score (lower is better); 0 when only keyword chips filtered. */
  rank: number;
}

/** A keyword and how many described photos carry it (for the keyword chips). */
export interface KeywordCount {
  keyword: string;
  count: number;
}

/** Events of the describe service. */
export type DescribeEvent =
  | { type: 'job'; job: DescribeJob }
  | { type: 'item'; jobId: DescribeJobId; path: string; state: Exclude<DescribeItemState, 'pending'>; description: PhotoDescription | null; error: DescribeItemError | null };
