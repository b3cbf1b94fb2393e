/**
 * Handlers of the `chat:` channels. Photos arrive as hashes of stored images only (the renderer
 * never names a file); sampling comes from settings, then the request's overrides.
 */
import type { ChatImageInput } from '../../../src-shared/chat.ts';
import type { GenerationOverrides, ImageAttachmentRef } from '../../../src-shared/ipc/index.ts';
import { generationFor } from '../../chat/generation.ts';
import type { Services } from '../../services/composition.ts';
import type { DomainHandlers } from '../dispatch.ts';

function stored(images: ImageAttachmentRef[] | undefined): ChatImageInput[] | undefined {
  return images?.map((i) => ({ kind: 'stored', sha256: i.sha256, name: i.name ?? null }));
}

/** `chat:send`, `chat:regenerate`, `chat:edit`, `chat:continue`, `chat:cancel`. */
export function chatHandlers(services: Services): DomainHandlers<'chat'> {
  const { chat, events, store } = services;
  /** Settings, then the chat's own, then the request's overrides, for a request about `messageId`. */
  const generation = (messageId: number, overrides: GenerationOverrides | undefined) =>
    generationFor(services.settings.get(), overrides, store.getConversation(store.getMessage(messageId).conversationId).options);
  return {
    'chat:send': async (req) => {
      await services.engine.ensureModel();
      const isNew = req.conversationId === undefined || req.conversationId === null;
      const own = isNew ? (req.chatOptions ?? null) : store.getConversation(req.conversationId!).options;
      const started = await chat.send({
        conversationId: req.conversationId ?? null,
        ...(req.parentId !== undefined ? { parentId: req.parentId } : {}),
        text: req.text,
        images: stored(req.images),
        ...(isNew && req.chatOptions ? { chatOptions: req.chatOptions } : {}),
        ...generationFor(services.settings.get(), req.overrides, own),
      });
      events.emit('conversations:changed', { reason: isNew ? 'created' : 'updated', ids: [started.conversationId] });
      return started;
    },
    'chat:regenerate': async (req) => {
      await services.engine.ensureModel();
      return chat.regenerate({ messageId: req.messageId, ...generation(req.messageId, req.overrides) });
    },
    'chat:edit': async (req) => {
      await services.engine.ensureModel();
      const started = await chat.edit({ messageId: req.messageId, text: req.text, images: stored(req.images), ...generation(req.messageId, req.overrides) });
      // An edited first message may have retitled the conversation.
      events.emit('conversations:changed', { reason: 'updated', ids: [started.conversationId] });
      return started;
    },
    'chat:continue': async (req) => {
      await services.engine.ensureModel();
      return chat.continue({ messageId: req.messageId, ...generation(req.messageId, req.overrides) });
    },
    'chat:cancel': (req) => ({ cancelled: chat.cancel(req.requestId) }),
  };
}
