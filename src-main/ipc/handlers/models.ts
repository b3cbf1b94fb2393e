/** Handlers of the `models:` channels. */
import type { Services } from '../../services/composition.ts';
import type { DomainHandlers } from '../dispatch.ts';

/** Every `models:` channel. */
export function modelHandlers(services: Services): DomainHandlers<'models'> {
  const { models, dialogs } = services;
  return {
    'models:list': () => models.list(),
    'models:import': async (req) => {
      const dir = await dialogs.chooseFolder('checkpoint');
      return dir === null ? null : { taskId: models.importCheckpoint(dir, req) };
    },
    'models:pull': (req) => ({ taskId: models.pull(req) }),
    'models:verify': (req) => ({ taskId: models.verify(req.id) }),
    'models:delete': async (req) => {
      await models.delete(req.id);
      return null;
    },
    'models:select': (req) => models.select(req.id),
    'models:tasks': () => models.listTasks(),
    'models:cancel-task': (req) => ({ cancelled: models.cancel(req.taskId) }),
  };
}
