/**
 * Hardening round two, the data folder (issue 12, defects 6 and 7):
 *
 * - one services instance per data folder: a lock file (`owlery.lock`) held while the services run;
 *   a second instance, in this process or another, is refused with a clear error naming the first
 *   one's process, and the first keeps working; a lock left by a process that is gone is taken over;
 * - at start, the services remove what killed processes left in the data folder: conversion staging
 *   folders, unpacking folders, temporary files of the image store and settings; what belongs to a
 *   live process stays.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname, uptime } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { OwleryError } from '../../src-shared/errors.ts';
import { createServices } from '../../src-main/services/composition.ts';
import { LOCK_FILE } from '../../src-main/services/data-lock.ts';
import { deadPid, removeDir, tempDir } from '../helpers/chat-env.ts';
import { thrownBy } from './helpers/errors.ts';
import { Figures } from './helpers/summary.ts';

const figures = new Figures('data-folder');
const run = promisify(execFile);

let work: string;

beforeAll(async () => {
  work = await tempDir('owlery-data-folder-');
});

afterAll(async () => {
  figures.write();
  await removeDir(work);
});

describe('one services instance per data folder', () => {
  const CATEGORY = 'second instance on one data folder';
  let injected = 0;
  let survived = 0;
  afterAll(() => figures.add(CATEGORY, { faultsInjected: injected, faultsSurvived: survived }));

  it('a second instance in this process is refused, the first keeps working; after it closes, the next one opens', async () => {
    const dataDir = join(work, 'same-process');
    const first = createServices({ dataDir, autoLoadModel: false });
    first.store.createConversation({ title: 'Kept' });
    injected++;
    const err = thrownBy(() => createServices({ dataDir, autoLoadModel: false }));
    expect(err).toBeInstanceOf(OwleryError);
    expect(err).toMatchObject({ code: 'DB_LOCKED', message: expect.stringContaining(`process ${process.pid}`) });
    expect((err as Error).message).toContain(dataDir);
    expect(first.store.listConversations().items.map((c) => c.title)).toEqual(['Kept']);
    first.settings.set({ offlineMode: false });
    await first.close();
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
    const second = createServices({ dataDir, autoLoadModel: false });
    try {
      expect(second.settings.get().offlineMode).toBe(false);
      expect(second.store.listConversations().items.map((c) => c.title)).toEqual(['Kept']);
    } finally {
      await second.close();
    }
    survived++;
  });

  it('a second instance in another process is refused with the first one\'s process id', async () => {
    const dataDir = join(work, 'other-process');
    const first = createServices({ dataDir, autoLoadModel: false });
    injected++;
    try {
      const script = `import { createServices } from ${JSON.stringify(resolve('src-main/services/composition.ts'))};
        try { createServices({ dataDir: ${JSON.stringify(dataDir)}, autoLoadModel: false }); console.log('opened'); process.exit(0); }
        catch (e) { console.log(e.code + ': ' + e.message); process.exit(3); }`;
      const out = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]).then(
        (r) => ({ code: 0, stdout: r.stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
      );
      expect(out.code, out.stdout).toBe(3);
      expect(out.stdout).toContain('DB_LOCKED');
      expect(out.stdout).toContain(`process ${process.pid}`);
      expect(first.store.listConversations().items).toEqual([]);
      survived++;
    } finally {
      await first.close();
    }
  });

  it('a lock left by a process that is gone (killed, crashed) is taken over', async () => {
    const dataDir = join(work, 'stale-lock');
    mkdirSync(dataDir, { recursive: true });
    const pid = deadPid();
    writeFileSync(join(dataDir, LOCK_FILE), JSON.stringify({ pid, hostname: hostname(), bootTime: Date.now() - uptime() * 1000, startedAt: new Date().toISOString(), token: 'x' }));
    injected++;
    const services = createServices({ dataDir, autoLoadModel: false });
    try {
      expect(JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    } finally {
      await services.close();
    }
    survived++;
    // A damaged (empty) lock file is taken over too.
    writeFileSync(join(dataDir, LOCK_FILE), '');
    const again = createServices({ dataDir, autoLoadModel: false });
    await again.close();
  });
});

describe('start-up clean-up of what killed processes left', () => {
  it('staging and temporary folders of dead processes go, those of live processes stay', async () => {
    const dataDir = join(work, 'leftovers');
    const dead = deadPid();
    const live = process.pid;
    const made = {
      deadStaging: join(dataDir, 'models', '.staging-abc123'),
      deadPartial: join(dataDir, 'models', `.mplug-owl2-0123456789abcdef.partial-${dead}-0badc0de`),
      livePartial: join(dataDir, 'models', `.mplug-owl2-fedcba9876543210.partial-${live}-600dc0de`),
      deadDeleting: join(dataDir, 'models', '.deleting-mplug-owl2-0123456789abcdef-0a0b0c0d'),
      deadPrepacked: join(dataDir, 'cache', 'prepacked', `.building-key1-${dead}`),
    };
    for (const dir of Object.values(made)) mkdirSync(join(dir, 'inner'), { recursive: true });
    mkdirSync(join(dataDir, 'images', 'ab'), { recursive: true });
    const deadImageTmp = join(dataDir, 'images', 'ab', `${'ab'.repeat(32)}.png.${dead}-0badc0de.tmp`);
    const liveImageTmp = join(dataDir, 'images', 'ab', `${'cd'.repeat(32)}.png.${live}-600dc0de.tmp`);
    const deadSettingsTmp = join(dataDir, `settings.json.${dead}.tmp`);
    for (const f of [deadImageTmp, liveImageTmp, deadSettingsTmp]) writeFileSync(f, 'x');
    const services = createServices({ dataDir, autoLoadModel: false });
    try {
      const removed = await services.startupCleanup;
      for (const gone of [made.deadStaging, made.deadPartial, made.deadDeleting, made.deadPrepacked, deadImageTmp, deadSettingsTmp]) {
        expect(existsSync(gone), gone).toBe(false);
      }
      for (const kept of [made.livePartial, liveImageTmp]) expect(existsSync(kept), kept).toBe(true);
      // (The faster-start cache, when that setting is off, goes as a whole: models-service.)
      expect(removed.sort()).toEqual([made.deadStaging, made.deadPartial, made.deadDeleting, deadImageTmp, deadSettingsTmp].sort());
      expect(readdirSync(join(dataDir, 'models')).sort()).toEqual([`.mplug-owl2-fedcba9876543210.partial-${live}-600dc0de`]);
    } finally {
      await services.close();
    }
    figures.add('start-up clean-up', { faultsInjected: 6, faultsSurvived: 6 });
  });
});
