/**
 * Named presets: instructions, temperature and answer length saved under a name, to apply to any
 * chat (applying copies the values into the chat: changing or deleting a preset later does not
 * change chats). Names are unique regardless of case. Runs inside the {@link Store} facade's error
 * guard (see `context.ts`).
 */
import { OwleryError } from '../../src-shared/errors.ts';
import { DEFAULT_CHAT_OPTIONS } from '../../src-shared/domain.ts';
import type { ChatOptions, Preset } from '../../src-shared/domain.ts';
import { MAX_PRESET_NAME_CHARS, MAX_PRESETS } from '../../src-shared/limits.ts';
import { requireChange } from './context.ts';
import type { StoreContext } from './context.ts';
import { checkChatOptions, optionParams } from './conversations.ts';
import { toPreset } from './rows.ts';
import type { PresetRow } from './rows.ts';

/** Input of `Store.savePreset`: a new preset, or (with `id`) a change to one. */
export interface PresetInput extends Partial<ChatOptions> {
  id?: number;
  name: string;
}

/** The presets table. */
export class Presets {
  constructor(private readonly ctx: StoreContext) {}

  /** Every preset, by name. */
  list(): Preset[] {
    return (this.ctx.stmt('listPresets').all() as PresetRow[]).map(toPreset);
  }

  /** A preset by id. Throws `NOT_FOUND`. */
  get(id: number): Preset {
    const row = this.ctx.stmt('getPreset').get(id) as PresetRow | undefined;
    if (!row) throw new OwleryError('NOT_FOUND', `There is no preset ${id}.`, { presetId: id });
    return toPreset(row);
  }

  /** Adds a preset, or changes the one with `input.id`; a name already used by another is refused. */
  save(input: PresetInput): Preset {
    const name = checkName(input.name);
    return this.ctx.write(() => {
      const base = input.id === undefined ? DEFAULT_CHAT_OPTIONS : this.get(input.id);
      const options = checkChatOptions({
        instructions: input.instructions ?? base.instructions,
        temperature: input.temperature === undefined ? base.temperature : input.temperature,
        maxNewTokens: input.maxNewTokens === undefined ? base.maxNewTokens : input.maxNewTokens,
      });
      const clash = this.list().find((p) => p.name.toLowerCase() === name.toLowerCase() && p.id !== input.id);
      if (clash) throw new OwleryError('INVALID_ARGUMENT', `There is already a preset named “${clash.name}”.`, { presetId: clash.id });
      const params = { name, ...optionParams(options), now: this.ctx.now() };
      if (input.id !== undefined) {
        requireChange(this.ctx.stmt('updatePreset').run({ ...params, id: input.id }), 'preset', input.id);
        return this.get(input.id);
      }
      const { n } = this.ctx.stmt('countPresets').get() as { n: number };
      if (n >= MAX_PRESETS) throw new OwleryError('INVALID_ARGUMENT', `Owlery keeps at most ${MAX_PRESETS} presets; delete one first.`);
      return this.get(Number(this.ctx.stmt('insertPreset').run(params).lastInsertRowid));
    });
  }

  /** Deletes a preset (chats it was applied to keep their options). */
  delete(id: number): void {
    requireChange(this.ctx.stmt('deletePreset').run(id), 'preset', id);
  }
}

function checkName(name: string): string {
  const clean = typeof name === 'string' ? name.replace(/[\p{Cc}\s]+/gu, ' ').trim() : '';
  if (!clean) throw new OwleryError('INVALID_ARGUMENT', 'A preset needs a name.');
  if (clean.length > MAX_PRESET_NAME_CHARS) throw new OwleryError('INVALID_ARGUMENT', `A preset name can be at most ${MAX_PRESET_NAME_CHARS} characters long.`);
  return clean;
}
