/**
 * The models service through IPC, on the seeded tiny mPLUG-Owl2 checkpoint: import (convert) a
 * checkpoint folder chosen in the dialog with progress events, list it with its verification,
 * select it (the real engine loads it), chat with it end to end, verify and detect tampering,
 * refuse deleting the loaded model, cancel a running import, and refuse pulls offline.
 */
import { appendFile, readFile, readdir, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatEvent } from '../../src-shared/chat.ts';
import type { ChannelName, IpcResult, ModelTask, RequestOf, ResponseOf } from '../../src-shared/ipc/index.ts';
import { createDispatcher, createHandlers } from '../../src-main/ipc/index.ts';
import type { Dispatch } from '../../src-main/ipc/index.ts';
import { CANCELLING_DIALOGS } from '../../src-main/services/dialogs.ts';
import { createServices } from '../../src-main/services/composition.ts';
import type { Services } from '../../src-main/services/composition.ts';
import { removeDir, tempDir } from '../helpers/chat-env.ts';
import { serveHubTree } from '../helpers/fake-hub.ts';
import { ensureTinyCheckpoint } from '../helpers/tiny-model.ts';
import { prepackedDir } from '../../src-main/services/engine-service.ts';

let root: string;
let checkpoint: string;
let services: Services;
let dispatch: Dispatch;
const folderAnswers: (string | null)[] = [];
const tasks: ModelTask[] = [];
const chatEvents: ChatEvent[] = [];

async function raw<C extends ChannelName>(channel: C, payload: RequestOf<C>): Promise<IpcResult<ResponseOf<C>>> {
  return (await dispatch(channel, payload, { url: 'app://owlery/index.html' })) as IpcResult<ResponseOf<C>>;
}
async function call<C extends ChannelName>(channel: C, payload: RequestOf<C>): Promise<ResponseOf<C>> {
  const r = await raw(channel, payload);
  if (!r.ok) throw new Error(`${channel}: ${r.error.code} ${r.error.message}`);
  return r.value;
}

beforeAll(async () => {
  root = await tempDir('owlery-models-');
  checkpoint = await ensureTinyCheckpoint({ seed: 1 });
  services = createServices({
    dataDir: join(root, 'data'),
    autoLoadModel: false,
    dialogs: { ...CANCELLING_DIALOGS, chooseFolder: async () => folderAnswers.shift() ?? null },
    chat: { deltaIntervalMs: 0, saveIntervalMs: 0 },
  });
  services.events.subscribe((e) => {
    if (e.type === 'models:task') tasks.push(e.payload);
    if (e.type === 'chat:event') chatEvents.push(e.payload);
  });
  dispatch = createDispatcher(createHandlers(services), { isTrustedSender: (u) => u.startsWith('app://owlery/') });
});

afterAll(async () => {
  await services?.close();
  await removeDir(root);
});

describe('models service', () => {
  let modelId: string;

  it('imports a checkpoint folder chosen in the dialog, with progress events', async () => {
    folderAnswers.push(checkpoint);
    const started = await call('models:import', { name: 'tiny owl' });
    expect(started).not.toBeNull();
    const task = await services.models.settled(started!.taskId);
    expect(task).toMatchObject({ kind: 'import', state: 'done', error: null });
    modelId = task.modelId!;
    expect(modelId).toMatch(/^mplug-owl2-[0-9a-f]{16}$/);

    const mine = tasks.filter((t) => t.taskId === started!.taskId);
    expect(mine[0]!.state).toBe('running');
    expect(mine.at(-1)!.state).toBe('done');
    expect(mine.map((t) => t.seq)).toEqual(mine.map((_, i) => i + 1));
    expect(new Set(mine.map((t) => t.phase))).toContain('writing-graphs');
    // No staging folder is left behind.
    expect((await readdir(services.models.modelsDir)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('lists the package with its size, quantization and verification', async () => {
    const [m] = await call('models:list', undefined);
    expect(m).toMatchObject({
      id: modelId,
      name: 'tiny owl',
      family: 'mplug-owl2',
      quantization: { vision: 'fp32', llm: 'fp32', embed: 'fp32' },
      sourceFormat: 'safetensors',
      verification: { state: 'verified', error: null },
      active: false,
    });
    expect(m!.sizeBytes).toBeGreaterThan(0);
    expect(m!.contextLength).toBeGreaterThan(0);
  });

  it('importing the same checkpoint again keeps the installed package', async () => {
    folderAnswers.push(checkpoint);
    const again = await services.models.settled((await call('models:import', {}))!.taskId);
    expect(again).toMatchObject({ state: 'done', modelId });
    expect((await call('models:list', undefined)).map((m) => m.id)).toEqual([modelId]);
  });

  it('a cancelled import ends cancelled and leaves nothing behind', async () => {
    folderAnswers.push(checkpoint);
    const { taskId } = (await call('models:import', {}))!;
    expect(await call('models:cancel-task', { taskId })).toEqual({ cancelled: true });
    expect(await services.models.settled(taskId)).toMatchObject({ state: 'cancelled' });
    expect(await call('models:cancel-task', { taskId })).toEqual({ cancelled: false });
    expect((await readdir(services.models.modelsDir)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('selecting loads it in the engine and makes it active; chat then works end to end', async () => {
    const status = await call('models:select', { id: modelId });
    expect(status).toMatchObject({ state: 'ready', modelId, error: null });
    expect(status.provider?.used).toBe('cpu');
    expect((await call('settings:get', undefined)).activeModelId).toBe(modelId);
    expect((await call('models:list', undefined))[0]).toMatchObject({ active: true, provider: { used: 'cpu' } });

    const started = await call('chat:send', { text: 'Describe the photo.', overrides: { temperature: 0, maxNewTokens: 4 } });
    const outcome = await services.chat.outcome(started.requestId);
    expect(outcome.type).toBe('done');
    const mine = chatEvents.filter((e) => e.requestId === started.requestId);
    expect(mine[0]).toMatchObject({ type: 'phase', phase: 'queued' });
    expect(mine.at(-1)!.type).toBe('done');
    const thread = await call('conversations:get', { id: started.conversationId });
    expect(thread.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(thread.messages[1]!.settings).toMatchObject({ temperature: 0, maxNewTokens: 4 });
    expect((await call('engine:status', undefined)).state).toBe('ready');
  });

  it('an engine crash is reported, and the next request restarts the engine', async () => {
    const statuses: string[] = [];
    const crashed = new Promise<void>((resolve) => {
      services.events.subscribe((e) => {
        if (e.type !== 'engine:status') return;
        statuses.push(`${e.payload.state}:${e.payload.restarts}`);
        if (e.payload.state === 'crashed') resolve();
      });
    });
    process.kill(services.engine.host.enginePid!, 'SIGKILL');
    await crashed;
    expect(await call('engine:status', undefined)).toMatchObject({ state: 'crashed', error: { code: 'ENGINE_CRASHED' } });

    const started = await call('chat:send', { text: 'Again, please.', overrides: { temperature: 0, maxNewTokens: 2 } });
    expect((await services.chat.outcome(started.requestId)).type).toBe('done');
    expect(await call('engine:status', undefined)).toMatchObject({ state: 'ready', restarts: 1, modelId, error: null });
    expect(statuses).toEqual(['crashed:0', 'generating:1', 'ready:1']);
  });

  it('logs loads, answers and the crash to logs/ (main.log, engine.log), never what was said', async () => {
    const logs = join(services.dataDir, 'logs');
    const records = async (name: string) => (await readFile(join(logs, `${name}.log`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; level: string; data?: Record<string, unknown> });
    const main = await records('main');
    expect(main.map((r) => r.msg)).toEqual(expect.arrayContaining(['model loaded', 'the engine process stopped', 'restarting the engine for a request']));
    expect(main.find((r) => r.msg === 'the engine process stopped')!.level).toBe('error');
    const engine = await records('engine');
    expect(engine.find((r) => r.msg === 'model loaded')!.data).toMatchObject({ provider: 'cpu', packageId: modelId });
    expect(engine.filter((r) => r.msg === 'answer').length).toBeGreaterThanOrEqual(2);
    expect(engine.find((r) => r.msg === 'answer')!.data).toMatchObject({ finish: expect.any(String), outputTokens: expect.any(Number) });
    for (const name of ['main', 'engine']) {
      const text = await readFile(join(logs, `${name}.log`), 'utf8');
      expect(text).not.toContain('Describe the photo.');
      expect(text).not.toContain('Again, please.');
    }
  });

  it('unloads the model on request, and the next question loads it again', async () => {
    expect(await call('engine:unload', undefined)).toMatchObject({ state: 'idle', modelId: null });
    expect(services.engine.info).toBeUndefined();
    const started = await call('chat:send', { text: 'Back?', overrides: { temperature: 0, maxNewTokens: 2 } });
    expect((await services.chat.outcome(started.requestId)).type).toBe('done');
    expect(await call('engine:status', undefined)).toMatchObject({ state: 'ready', modelId });
  });

  it('refuses deleting the loaded model', async () => {
    expect(await raw('models:delete', { id: modelId })).toMatchObject({ ok: false, error: { code: 'ENGINE_BUSY' } });
  });

  it('verify re-hashes every file and detects tampering', async () => {
    const ok = await services.models.settled((await call('models:verify', { id: modelId })).taskId);
    expect(ok).toMatchObject({ state: 'done', kind: 'verify', unit: 'bytes' });
    expect(ok.done).toBe(ok.total);

    await appendFile(join(services.models.dirOf(modelId), 'tokenizer.model'), 'x');
    const bad = await services.models.settled((await call('models:verify', { id: modelId })).taskId);
    expect(bad).toMatchObject({ state: 'failed', error: { code: 'PACKAGE_INVALID' } });
    expect(bad.error?.message).toContain('tokenizer.model');
    expect((await call('models:list', undefined))[0]!.verification).toMatchObject({ state: 'failed', error: { code: 'PACKAGE_INVALID' } });
  });

  it('pulls are refused in offline mode (the default)', async () => {
    expect(await raw('models:pull', { repo: 'MAGAer13/mplug-owl2-llama2-7b' })).toMatchObject({ ok: false, error: { code: 'OFFLINE' } });
  });

  it('unknown ids are NOT_FOUND; the task list keeps finished tasks', async () => {
    expect(await raw('models:verify', { id: 'mplug-owl2-ffffffffffffffff' })).toMatchObject({ ok: true });
    expect(await raw('models:delete', { id: 'mplug-owl2-ffffffffffffffff' })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    const list = await call('models:tasks', undefined);
    expect(list.map((t) => t.kind)).toEqual(expect.arrayContaining(['import', 'verify']));
  });

  it('choosing another model in settings loads it; the previous one can then be deleted', async () => {
    const other = await ensureTinyCheckpoint({ seed: 2 });
    folderAnswers.push(other);
    const task = await services.models.settled((await call('models:import', { name: 'second owl' }))!.taskId);
    const otherId = task.modelId!;
    expect(otherId).not.toBe(modelId);
    const loaded = new Promise<void>((resolve) => {
      services.events.subscribe((e) => {
        if (e.type === 'engine:status' && e.payload.state === 'ready' && e.payload.modelId === otherId) resolve();
      });
    });
    await call('settings:set', { patch: { activeModelId: otherId } });
    await loaded;
    expect(await call('models:delete', { id: modelId })).toBeNull();
    expect((await call('models:list', undefined)).map((m) => [m.id, m.active])).toEqual([[otherId, true]]);
  });

  it('faster start reloads the model through a prepared copy, and turning it off deletes the copy', async () => {
    const dir = prepackedDir(services.dataDir);
    const entries = async () => (await readdir(dir).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));
    const reloaded = () => new Promise<void>((resolve) => {
      const off = services.events.subscribe((e) => {
        if (e.type === 'engine:status' && e.payload.state === 'ready') {
          off();
          resolve();
        }
      });
    });
    expect(await entries()).toEqual([]);
    let ready = reloaded();
    await call('settings:set', { patch: { fasterStart: true } });
    await ready;
    const [entry] = await entries();
    expect(entry).toBeDefined();
    expect((await readdir(join(dir, entry))).sort()).toEqual(['complete.json', 'decoder.onnx', 'decoder.onnx.data']);
    // Answers still come, from the reloaded engine.
    const started = await call('chat:send', { text: 'Hello?', overrides: { temperature: 0, maxNewTokens: 3 } });
    expect((await services.chat.outcome(started.requestId)).type).toBe('done');

    ready = reloaded();
    await call('settings:set', { patch: { fasterStart: false } });
    await ready;
    await expect.poll(() => stat(dir).then(() => true, () => false)).toBe(false);
  });
});

describe('pulling from a hub', () => {
  it('downloads a checkpoint from a Hugging Face compatible endpoint, converts and installs it', async () => {
    const files = new Map<string, Buffer>();
    for (const name of await readdir(checkpoint)) files.set(name, await readFile(join(checkpoint, name)));
    const repo = 'owlery-test/tiny-owl';
    const requests: string[] = [];
    const hub = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      requests.push(path);
      if (serveHubTree(path, repo, files, res)) return;
      const m = new RegExp(`^/${repo}/resolve/main/(.+)$`).exec(path);
      const data = m ? files.get(m[1]!) : undefined;
      if (!data) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length });
      res.end(data);
    });
    await new Promise<void>((ok) => hub.listen(0, '127.0.0.1', () => ok()));
    const pullRoot = await tempDir('owlery-pull-');
    const pulling = createServices({ dataDir: pullRoot, autoLoadModel: false, hubEndpoint: `http://127.0.0.1:${(hub.address() as AddressInfo).port}` });
    try {
      const d = createDispatcher(createHandlers(pulling), { isTrustedSender: () => true });
      const url = { url: 'app://owlery/index.html' };
      expect(await d('models:pull', { repo }, url)).toMatchObject({ ok: false, error: { code: 'OFFLINE' } });
      expect(await d('settings:set', { patch: { offlineMode: false } }, url)).toMatchObject({ ok: true });
      const r = (await d('models:pull', { repo, name: 'pulled owl' }, url)) as IpcResult<{ taskId: string }>;
      if (!r.ok) throw new Error(r.error.message);
      const task = await pulling.models.settled(r.value.taskId);
      expect(task).toMatchObject({ kind: 'pull', state: 'done', label: repo, error: null });
      expect(requests).toContain(`/api/models/${repo}/tree/main`);
      const list = await pulling.models.list();
      expect(list).toMatchObject([{ id: task.modelId, name: 'pulled owl', verification: { state: 'verified' } }]);
      // The download folder is removed once converted.
      expect(await readdir(join(pullRoot, 'downloads'))).toEqual([]);
    } finally {
      await pulling.close();
      await new Promise<void>((ok) => hub.close(() => ok()));
      await removeDir(pullRoot);
    }
  });
});
