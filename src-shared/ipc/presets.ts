/**
 * The `presets:` domain: named sets of chat instructions, temperature and answer length. Applying
 * one to a chat is `conversations.setOptions` with its values (the chat keeps a copy).
 */
import type { Preset } from '../domain.ts';
import { MAX_PRESET_NAME_CHARS } from '../limits.ts';
import { v } from '../validate.ts';
import { defineDomain, invoke } from './define.ts';
import { chatOptionsPatch, rowId } from './fields.ts';

const saveRequest = v.object({
  /** Omitted: a new preset; given: a change to that one. */
  id: v.optional(rowId),
  name: v.string({ min: 1, max: MAX_PRESET_NAME_CHARS }),
  options: chatOptionsPatch,
});

/** `window.owlery.presets`. */
export const presetsApi = defineDomain({
  /** Every preset, by name. */
  list: invoke(v.none()).returns<Preset[]>(),
  /** Adds a preset or changes one; a name already used (in any case) is refused. */
  save: invoke(saveRequest).returns<Preset>(),
  /** Deletes a preset (chats it was applied to keep their options). */
  delete: invoke(v.object({ id: rowId })).returns<null>(),
});
