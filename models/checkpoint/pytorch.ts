/**
 * Reader for PyTorch `.bin` checkpoints (`torch.save` zip format). Work in progress.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import type { TensorFile } from './io.ts';

/** An open PyTorch zip checkpoint file. */
export class PytorchFile {
  /** Opens a `torch.save` zip file (not implemented yet). */
  static async open(path: string, _displayName?: string): Promise<TensorFile> {
    throw new OwleryError('CHECKPOINT_UNSUPPORTED', `${path}: reading PyTorch .bin checkpoints is not implemented yet`);
  }
}
