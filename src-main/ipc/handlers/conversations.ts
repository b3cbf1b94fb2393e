/** Handlers of the `conversations:` channels: the sidebar, the thread on screen, the trash, search. */
import { OwleryError } from '../../../src-shared/errors.ts';
import type { Services } from '../../services/composition.ts';
import type { DomainHandlers } from '../dispatch.ts';

/** Every `conversations:` channel. */
export function conversationHandlers(services: Services): DomainHandlers<'conversations'> {
  const { store, events } = services;
  return {
    'conversations:list': (req) => (req.trash ? store.listTrash(req) : store.listConversations(req)),
    'conversations:get': (req) => store.getThread(req.id, req.leafId),
    'conversations:create': (req) => {
      const c = store.createConversation({
        title: req.title,
        titleSetByUser: Boolean(req.title?.trim()),
        modelId: req.modelId === undefined ? services.settings.get().activeModelId : req.modelId,
      });
      events.emit('conversations:changed', { reason: 'created', ids: [c.id] });
      return c;
    },
    'conversations:rename': (req) => {
      const c = store.renameConversation(req.id, req.title);
      events.emit('conversations:changed', { reason: 'updated', ids: [c.id] });
      return c;
    },
    'conversations:pin': (req) => {
      const c = store.setPinned(req.id, req.pinned);
      events.emit('conversations:changed', { reason: 'updated', ids: [c.id] });
      return c;
    },
    'conversations:set-options': (req) => {
      const c = store.setConversationOptions(req.id, req.options);
      events.emit('conversations:changed', { reason: 'updated', ids: [c.id] });
      return c;
    },
    'conversations:delete': (req) => {
      const c = store.deleteConversation(req.id);
      events.emit('conversations:changed', { reason: 'deleted', ids: [c.id] });
      return c;
    },
    'conversations:restore': (req) => {
      const c = store.restoreConversation(req.id);
      events.emit('conversations:changed', { reason: 'restored', ids: [c.id] });
      return c;
    },
    'conversations:purge': (req) => {
      const c = store.getConversation(req.id);
      if (c.deletedAt === null) {
        throw new OwleryError('INVALID_ARGUMENT', 'Move the conversation to the trash before deleting it for good.', { id: req.id });
      }
      store.purgeConversation(req.id);
      events.emit('conversations:changed', { reason: 'purged', ids: [req.id] });
      return null;
    },
    'conversations:empty-trash': () => {
      const purged = store.purgeTrash();
      events.emit('conversations:changed', { reason: 'purged', ids: [] });
      return { purged };
    },
    'conversations:select-branch': (req) => store.selectBranch(req.messageId),
    'conversations:search': (req) => store.search(req.query, req.limit === undefined ? {} : { limit: req.limit }),
  };
}
