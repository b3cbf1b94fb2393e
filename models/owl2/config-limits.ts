/**
 * Upper bounds for the sizes in an mPLUG-Owl2 `config.json`, and a check of the model size the
 * config implies against the weights actually present: a config.json from outside is refused
 * before any work (building tensor lists, reading weights) instead of after minutes and gigabytes.
 *
 * The bounds are what real LLaMA and ViT checkpoints use, with headroom: LLaMA-3.1-405B has 126
 * layers, hidden 16,384, MLP 53,248, vocab 128,256 and 131,072 positions; the largest ViTs have 48
 * layers and hidden 1,664 at 224–1,024 px.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import type { Owl2Config } from './config.ts';

/** One bounded field: where it is in config.json, its upper bound, and its parsed value. */
interface Bound {
  field: string;
  max: number;
  value: (c: Owl2Config) => number;
}

const LAYERS = 256;
const HIDDEN = 65_536;
const MLP = 262_144;
const HEADS = 1_024;

/** Every size field of config.json with its upper bound, in the order they are checked. */
export const CONFIG_BOUNDS: readonly Bound[] = [
  { field: 'hidden_size', max: HIDDEN, value: (c) => c.llm.hiddenSize },
  { field: 'num_hidden_layers', max: LAYERS, value: (c) => c.llm.numLayers },
  { field: 'num_attention_heads', max: HEADS, value: (c) => c.llm.numHeads },
  { field: 'num_key_value_heads', max: HEADS, value: (c) => c.llm.numKvHeads },
  { field: 'intermediate_size', max: MLP, value: (c) => c.llm.intermediateSize },
  { field: 'vocab_size', max: 1_000_000, value: (c) => c.llm.vocabSize },
  { field: 'max_position_embeddings', max: 1_048_576, value: (c) => c.llm.maxPositions },
  { field: 'visual_model.hidden_size', max: HIDDEN, value: (c) => c.vision.hiddenSize },
  { field: 'visual_model.num_hidden_layers', max: LAYERS, value: (c) => c.vision.numLayers },
  { field: 'visual_model.num_attention_heads', max: HEADS, value: (c) => c.vision.numHeads },
  { field: 'visual_model.intermediate_size', max: MLP, value: (c) => c.vision.intermediateSize },
  { field: 'visual_model.image_size', max: 4_096, value: (c) => c.vision.imageSize },
  { field: 'visual_model.patch_size', max: 4_096, value: (c) => c.vision.patchSize },
  { field: 'visual_abstractor.hidden_size', max: HIDDEN, value: (c) => c.abstractor.hiddenSize },
  { field: 'visual_abstractor.encoder_hidden_size', max: HIDDEN, value: (c) => c.abstractor.encoderHiddenSize },
  { field: 'visual_abstractor.num_hidden_layers', max: LAYERS, value: (c) => c.abstractor.numLayers },
  { field: 'visual_abstractor.num_attention_heads', max: HEADS, value: (c) => c.abstractor.numHeads },
  { field: 'visual_abstractor.intermediate_size', max: MLP, value: (c) => c.abstractor.intermediateSize },
  { field: 'visual_abstractor.num_learnable_queries', max: 4_096, value: (c) => c.abstractor.numQueries },
];

/** Refuses a parsed config with a size beyond {@link CONFIG_BOUNDS} (`CHECKPOINT_INVALID` naming config.json and the field). */
export function checkConfigLimits(c: Owl2Config): void {
  for (const b of CONFIG_BOUNDS) {
    const v = b.value(c);
    if (v > b.max) {
      throw new OwleryError('CHECKPOINT_INVALID',
        `config.json: ${b.field} is ${v}, more than any real checkpoint uses (at most ${b.max.toLocaleString('en')} is accepted)`, { field: b.field, value: v });
    }
  }
  const vitHeads = c.vision.hiddenSize % c.vision.numHeads === 0;
  const absHeads = c.abstractor.hiddenSize % c.abstractor.numHeads === 0;
  if (!vitHeads) throw new OwleryError('CHECKPOINT_INVALID', 'config.json: visual_model.hidden_size is not a multiple of visual_model.num_attention_heads', { field: 'visual_model.num_attention_heads' });
  if (!absHeads) throw new OwleryError('CHECKPOINT_INVALID', 'config.json: visual_abstractor.hidden_size is not a multiple of visual_abstractor.num_attention_heads', { field: 'visual_abstractor.num_attention_heads' });
}

function millions(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} billion` : `${(n / 1e6).toFixed(2)} million`;
}

/**
 * Refuses a config whose model is more than twice as large, or less than half as large, as the
 * weights present (`required`: the tensors it needs, with their shapes; `present`: element count
 * of each tensor the checkpoint holds). Close calls are left to the per-tensor check, whose
 * messages name the tensor. `file` names config.json in the message.
 */
export function checkImpliedModelSize(c: Owl2Config, required: ReadonlyMap<string, readonly number[]>, present: ReadonlyMap<string, number>, file = 'config.json'): void {
  let implied = 0;
  let held = 0;
  for (const [name, shape] of required) {
    implied += shape.reduce((a, b) => a * b, 1);
    held += present.get(name) ?? 0;
  }
  if (implied <= 2 * held && held <= 2 * implied) return;
  const l = c.llm;
  throw new OwleryError('CHECKPOINT_INVALID',
    `${file} describes a model of ${millions(implied)} parameters (num_hidden_layers ${l.numLayers}, hidden_size ${l.hiddenSize}, ` +
    `intermediate_size ${l.intermediateSize}, vocab_size ${l.vocabSize}; visual_model.num_hidden_layers ${c.vision.numLayers}, ` +
    `visual_model.hidden_size ${c.vision.hiddenSize}), but the weights it should describe hold ${millions(held)}: ` +
    'this config.json does not belong to these weights', { path: file, implied, held });
}
