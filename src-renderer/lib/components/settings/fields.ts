/**
 * What the Settings screen says about each setting: labels, explanations, units and the choices
 * of the enumerated ones. Bounds and types come from the shared schema (`src-shared/settings.ts`),
 * never from here.
 */
import type { AspectMode, ExecutionProviderName } from '../../../../src-shared/engine.ts';
import type { SettingKey, Theme } from '../../../../src-shared/settings.ts';

/** Settings edited in a number field. */
export type NumericSettingKey = 'threads' | 'temperature' | 'topP' | 'topK' | 'repetitionPenalty' | 'maxNewTokens' | 'fontSize';

/** Every numeric setting, in screen order. */
export const NUMERIC_KEYS: readonly NumericSettingKey[] = ['threads', 'temperature', 'topP', 'topK', 'repetitionPenalty', 'maxNewTokens', 'fontSize'];

/** Label and explanation of each setting. */
export const SETTING_TEXT: Readonly<Record<SettingKey, { label: string; help: string }>> = {
  activeModelId: { label: 'Active model', help: 'Chosen on the Models screen.' },
  executionProvider: {
    label: 'Run the model on',
    help: 'Automatic tries this computer’s graphics card first and falls back to the processor (CPU).',
  },
  threads: { label: 'Processor threads', help: '0 lets Owlery choose. Only used when the model runs on the processor.' },
  fasterStart: {
    label: 'Faster start on the processor',
    help: 'Keeps a copy of the active model prepared for this computer’s processor: it loads in about half the time and answers faster, but takes about twice the model’s size of extra disk space (8–9 GB for a 7B model). The first load after turning it on takes longer while the copy is made.',
  },
  temperature: { label: 'Temperature', help: 'Higher gives more varied answers, lower more predictable ones. 0 always picks the most likely word.' },
  topP: { label: 'Top-p', help: 'Only words among the most likely ones, adding up to this share, can be picked. 1 turns it off.' },
  topK: { label: 'Top-k', help: 'Only the k most likely words can be picked. 0 turns it off.' },
  repetitionPenalty: { label: 'Repetition penalty', help: 'Above 1, the model avoids repeating itself. 1 turns it off.' },
  maxNewTokens: { label: 'Longest answer', help: 'The most tokens (roughly ¾ of a word each) one answer may have.' },
  aspectMode: { label: 'Non-square photos', help: 'The model sees photos as squares. How should Owlery make one?' },
  theme: { label: 'Theme', help: '' },
  fontSize: { label: 'Chat text size', help: 'The size of the messages and the message box, in pixels. The rest of the window keeps its size (use the browser zoom, Ctrl + and Ctrl −, for everything).' },
  sidebarCollapsed: { label: 'Collapse the conversation list', help: 'Shows a narrow bar instead of the conversation list.' },
  offlineMode: {
    label: 'Offline mode',
    help: 'Owlery never uses the network. Turn it off only to download a model from the hub.',
  },
};

/** Units shown after a number field. */
export const SETTING_UNITS: Partial<Record<NumericSettingKey, string>> = { maxNewTokens: 'tokens', fontSize: 'px' };

/** Step of each number field (what the arrow keys add). */
export const SETTING_STEPS: Readonly<Record<NumericSettingKey, number>> = {
  threads: 1,
  temperature: 0.05,
  topP: 0.05,
  topK: 1,
  repetitionPenalty: 0.05,
  maxNewTokens: 1,
  fontSize: 1,
};

/** Execution providers in words. */
export const PROVIDER_LABELS: Readonly<Record<ExecutionProviderName, string>> = {
  auto: 'Automatic (best available)',
  cpu: 'Processor (CPU)',
  cuda: 'NVIDIA graphics card (CUDA)',
  dml: 'Graphics card on Windows (DirectML)',
  coreml: 'Apple Neural Engine / GPU (Core ML)',
  webgpu: 'WebGPU',
};

/** Aspect modes, explained. */
export const ASPECT_TEXT: Readonly<Record<AspectMode, { label: string; help: string }>> = {
  resize: {
    label: 'Resize',
    help: 'Squeeze the whole photo into a square. Nothing is cut off, but shapes look stretched. This is how the model was evaluated.',
  },
  pad: {
    label: 'Pad',
    help: 'Fit the whole photo inside a square and fill the empty sides with a plain colour. Nothing is cut or stretched; the photo is smaller.',
  },
  crop: {
    label: 'Crop',
    help: 'Keep the middle square of the photo. Details near the long edges are cut off.',
  },
};

/** Themes in words. */
export const THEME_LABELS: Readonly<Record<Theme, string>> = { light: 'Light', dark: 'Dark', system: 'Same as the system' };
