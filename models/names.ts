/**
 * How a model is named to people: its size as releases name it (`7B`) and its form
 * (`mPLUG-Owl2 7B · 4-bit`). The converter names a package so unless told otherwise; the import
 * dialog offers the same names.
 */
import type { Owl2Config } from './owl2/config.ts';
import type { PresetName } from './quant/plan.ts';

/** Parameters of the language model as LLaMA counts them (one K/V branch): what "7B" means. */
export function languageModelParameters(config: Owl2Config): number {
  const c = config.llm;
  const H = c.hiddenSize;
  const perLayer = H * c.numHeads * c.headDim * 2 + H * c.numKvHeads * c.headDim * 2 + 3 * H * c.intermediateSize + 2 * H;
  return c.vocabSize * H * (c.tieWordEmbeddings ? 1 : 2) + c.numLayers * perLayer + H;
}

/** `7B`, `13B`, `350M`: the model's size as releases name it. */
export function sizeLabel(config: Owl2Config): string {
  const n = languageModelParameters(config);
  if (n >= 1e9) return `${Math.round(n / 1e9)}B`;
  if (n >= 1e6) return `${Math.round(n / 1e6)}M`;
  return `${Math.max(1, Math.round(n / 1e3))}K`;
}

/** The words for a preset's precision in a model's name. */
export const FORM_WORDS: Readonly<Record<PresetName, string>> = { cpu: '4-bit', 'gpu-int4': '4-bit GPU', gpu: '16-bit', reference: 'full precision' };

/** The human name of a model in a form: `mPLUG-Owl2 7B · 4-bit`. */
export function modelDisplayName(config: Owl2Config, preset: PresetName | 'custom'): string {
  return `mPLUG-Owl2 ${sizeLabel(config)} · ${preset === 'custom' ? 'custom precision' : FORM_WORDS[preset]}`;
}
