/** Words and numbers the chat shows: phases, answer statistics, file sizes, dates. */
import type { ChatPhase } from '../../src-shared/chat.ts';
import type { GenerationStats, LoadPhase } from '../../src-shared/engine.ts';

/** What Owlery is doing, in the user's words, for each phase of a request. */
export const PHASE_LABELS: Readonly<Record<ChatPhase, string>> = {
  queued: 'Waiting for the model…',
  'decode-image': 'Reading photo…',
  'encode-image': 'Looking at photo…',
  prefill: 'Thinking…',
  generate: 'Writing…',
};

/** The phase in words, with how many photos it works on when there are several ("Looking at 3 photos…"). */
export function phaseLabel(phase: ChatPhase | null, images = 0): string {
  if (images > 1 && phase === 'decode-image') return `Reading ${images} photos…`;
  if (images > 1 && phase === 'encode-image') return `Looking at ${images} photos…`;
  return PHASE_LABELS[phase ?? 'queued'];
}

/** Where a model runs, in a word or two: `CPU`, `NVIDIA CUDA`, `DirectML`. */
export function providerLabel(provider: string): string {
  return ({ cpu: 'CPU', cuda: 'NVIDIA CUDA', dml: 'DirectML', coreml: 'Core ML', webgpu: 'WebGPU' } as Record<string, string>)[provider] ?? provider.toUpperCase();
}

/** What a model load is doing, in the user's words. */
export function loadLabel(phase: LoadPhase | null | undefined): string {
  return phase === 'checking-files' ? 'Checking the model’s files…' : 'Loading the model…';
}

/** `340 ms`, `2.4 s`, `1 min 5 s`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** `12.3 tok/s`. */
export function formatRate(perSecond: number): string {
  return Number.isFinite(perSecond) && perSecond > 0 ? `${perSecond.toFixed(perSecond < 10 ? 1 : 0)} tok/s` : '–';
}

/** `1.5 MB`, `320 KB`, `12 bytes`. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} bytes`;
  if (n < 1_000_000) return `${Math.round(n / 1000)} KB`;
  if (n < 1_000_000_000) return `${(n / 1_000_000).toFixed(1)} MB`;
  return `${(n / 1_000_000_000).toFixed(2)} GB`;
}

/** One labelled figure of an answer's statistics. */
export interface StatItem {
  label: string;
  value: string;
}

/** The figures shown under an answer: photo encoding, time to first token, speed, context used. */
export function statItems(stats: GenerationStats): StatItem[] {
  const items: StatItem[] = [];
  if (stats.imageCount > 0) {
    const cached = stats.imagesFromCache > 0 ? ` (${stats.imagesFromCache} cached)` : '';
    items.push({ label: 'Photo encoding', value: `${formatDuration(stats.imageEncodeMs)}${cached}` });
  }
  items.push({ label: 'First token', value: formatDuration(stats.timeToFirstTokenMs) });
  items.push({ label: 'Speed', value: formatRate(stats.decodeTokensPerSecond) });
  const used = stats.promptTokens + stats.outputTokens;
  const pct = stats.contextLimit > 0 ? ` (${Math.round((used / stats.contextLimit) * 100)}%)` : '';
  items.push({ label: 'Context', value: `${used.toLocaleString('en')} of ${stats.contextLimit.toLocaleString('en')} tokens${pct}` });
  items.push({ label: 'Device', value: stats.adapter ? `${stats.provider} on ${stats.adapter}` : stats.provider });
  if (stats.providerNote) items.push({ label: 'Note', value: stats.providerNote });
  if (stats.speculation && stats.speculation.drafted > 0) {
    items.push({ label: 'Lookahead', value: `${stats.speculation.accepted} of ${stats.speculation.drafted} drafted tokens accepted` });
  }
  return items;
}

/** `Today 14:05`, `Yesterday`, or a short date, for the sidebar. */
export function formatWhen(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  const today = new Date(now);
  const sameDay = d.toDateString() === today.toDateString();
  if (sameDay) return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  const yesterday = new Date(now - 86_400_000);
  if (d.toDateString() === yesterday.toDateString()) return 'Yesterday';
  return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric', ...(d.getFullYear() !== today.getFullYear() ? { year: 'numeric' } : {}) });
}

/** Midnight (local time) of the day `ms` falls on. */
function startOfDay(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/**
 * The sidebar's date group of a time: `Today`, `Yesterday`, `Previous 7 days`, `Previous 30 days`,
 * then the month (`March`, or `March 2024` in another year). Local time.
 */
export function dateGroup(ms: number, now = Date.now()): string {
  const today = startOfDay(now);
  const day = startOfDay(ms);
  const days = Math.round((today - day) / 86_400_000);
  if (days <= 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (days < 7) return 'Previous 7 days';
  if (days < 30) return 'Previous 30 days';
  const d = new Date(ms);
  return d.toLocaleDateString(undefined, { month: 'long', ...(d.getFullYear() !== new Date(now).getFullYear() ? { year: 'numeric' } : {}) });
}

/** Items in runs of the same group (the list is already in order), each run with its label. */
export function groupRuns<T>(items: readonly T[], groupOf: (item: T) => string): { label: string; items: T[] }[] {
  const runs: { label: string; items: T[] }[] = [];
  for (const item of items) {
    const label = groupOf(item);
    const last = runs[runs.length - 1];
    if (last && last.label === label) last.items.push(item);
    else runs.push({ label, items: [item] });
  }
  return runs;
}

/** A message's time: `14:05` today, `Mon 14:05` this week, else a short date with the time. */
export function formatMessageTime(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  const time = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  const days = Math.round((startOfDay(now) - startOfDay(ms)) / 86_400_000);
  if (days <= 0) return time;
  if (days < 7) return `${d.toLocaleDateString(undefined, { weekday: 'short' })} ${time}`;
  return `${d.toLocaleDateString(undefined, { day: 'numeric', month: 'short', ...(d.getFullYear() !== new Date(now).getFullYear() ? { year: 'numeric' } : {}) })} ${time}`;
}

/** The full date and time, for a tooltip (`Tuesday, 4 March 2026, 14:05:33`). */
export function formatFullTime(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
