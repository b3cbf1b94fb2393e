/**
 * Named presets of chat options (instructions, temperature, answer length): listed, saved, changed
 * and deleted through `presets:`. Applying one to a chat copies its values into the chat
 * (`ChatManager.setOptions`), so a later change to the preset does not change the chat.
 */
import type { ChatOptions, Preset } from '../../../src-shared/domain.ts';
import type { OwleryClient } from '../../../src-shared/ipc/index.ts';
import { describeError } from '../errors.ts';

/** The presets, and saving them. */
export class PresetsManager {
  items = $state<Preset[]>([]);
  error = $state<string | null>(null);

  constructor(private readonly client: Pick<OwleryClient, 'presets'>) {}

  /** Loads the list. */
  async load(): Promise<void> {
    try {
      this.items = await this.client.presets.list();
      this.error = null;
    } catch (err) {
      this.error = describeError(err);
    }
  }

  /** Saves `options` as a new preset named `name` (or changes preset `id`); resolves to it, or `null` with {@link error} set. */
  async save(name: string, options: ChatOptions, id?: number): Promise<Preset | null> {
    try {
      const preset = await this.client.presets.save({ ...(id === undefined ? {} : { id }), name, options });
      await this.load();
      return preset;
    } catch (err) {
      this.error = describeError(err);
      return null;
    }
  }

  /** Deletes a preset. */
  async remove(id: number): Promise<void> {
    try {
      await this.client.presets.delete({ id });
      await this.load();
    } catch (err) {
      this.error = describeError(err);
    }
  }
}
