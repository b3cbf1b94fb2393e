/**
 * The checks a conversion makes before any work (`convertFromReader` calls {@link checkConversionInputs}
 * first): the model size config.json implies against the weights present, and `tokenizer.model`
 * parsed in full against config.json. The sizes in config.json are bounded when it is parsed
 * (`owl2/config.ts`), the weights' storages when the checkpoint is opened
 * (`checkpoint/bounded-inflate.ts`). Each refusal names the file.
 */
import { readFile } from 'node:fs/promises';
import { OwleryError } from '../src-shared/errors.ts';
import type { CheckpointReader } from './checkpoint/types.ts';
import type { Owl2Config } from './owl2/config.ts';
import { checkImpliedModelSize } from './owl2/config.ts';
import { checkTokenizerModel } from './owl2/tokenizer-check.ts';

/** What {@link checkConversionInputs} looks at. */
export interface ConversionInputs {
  config: Owl2Config;
  /** The tensors the config needs, with their shapes (`expectedCheckpointTensors(config).required`). */
  required: ReadonlyMap<string, readonly number[]>;
  reader: Pick<CheckpointReader, 'tensors'>;
  /** `tokenizer.model`: its path, or its bytes. */
  tokenizer: string | Uint8Array;
  /** `config.json`: its path, or its bytes (named in messages). */
  configFile?: string | Uint8Array;
}

/** Refuses a conversion whose config.json does not describe these weights or whose tokenizer.model is not the model's. */
export async function checkConversionInputs(inputs: ConversionInputs): Promise<void> {
  const present = new Map<string, number>();
  for (const [name, info] of inputs.reader.tensors) present.set(name, info.shape.reduce((a, b) => a * b, 1));
  checkImpliedModelSize(inputs.config, inputs.required, present, typeof inputs.configFile === 'string' ? inputs.configFile : 'config.json');
  let bytes: Uint8Array;
  const file = typeof inputs.tokenizer === 'string' ? inputs.tokenizer : 'tokenizer.model';
  try {
    bytes = typeof inputs.tokenizer === 'string' ? await readFile(inputs.tokenizer) : inputs.tokenizer;
  } catch (err) {
    throw new OwleryError('TOKENIZER_INVALID', `${file} cannot be read: ${(err as Error).message}`, { file });
  }
  checkTokenizerModel(bytes, file, inputs.config.llm);
}
