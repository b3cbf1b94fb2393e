// The log files (src-main/logging/logger.ts): JSON lines a person or "Copy diagnostics" can read,
// rotated by size, and never an exception into the caller when the disk refuses.
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwleryError } from '../../src-shared/errors.ts';
import { createLogger, readRecentLogs } from '../../src-main/logging/logger.ts';
import type { LogRecord } from '../../src-main/logging/logger.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'owlery-logger-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const lines = async (file: string): Promise<LogRecord[]> => (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as LogRecord);

describe('logger', () => {
  it('writes one JSON line per record at or above its level, with the error code and no home folder', async () => {
    const dir = join(work, 'a', 'logs');
    const log = createLogger({ dir, name: 'main' });
    log.debug('not written at info');
    log.info('model loaded', { provider: 'cpu', ms: 812 });
    log.error('load failed', new OwleryError('PACKAGE_INVALID', `${homedir()}/models/x: decoder.onnx is truncated`));
    const records = await lines(join(dir, 'main.log'));
    expect(records.map((r) => r.msg)).toEqual(['model loaded', 'load failed']);
    expect(records[0]).toMatchObject({ level: 'info', name: 'main', pid: process.pid, data: { provider: 'cpu', ms: 812 } });
    expect(records[1].err).toMatchObject({ code: 'PACKAGE_INVALID', message: '~/models/x: decoder.onnx is truncated' });
    expect(JSON.stringify(records)).not.toContain(homedir());
  });

  it('rotates by size, keeping the newest archives', async () => {
    const dir = join(work, 'b');
    const log = createLogger({ dir, name: 'engine', maxBytes: 400, keep: 2 });
    for (let i = 0; i < 40; i++) log.info(`step ${i}`, { i });
    const files = (await readdir(dir)).sort();
    expect(files).toEqual(['engine.1.log', 'engine.2.log', 'engine.log']);
    for (const f of files) expect((await readFile(join(dir, f))).length).toBeLessThanOrEqual(400);
    const newest = await lines(join(dir, 'engine.log'));
    expect(newest.at(-1)!.msg).toBe('step 39');
    // Nothing in between is lost across the current file and the first archive.
    const kept = [...(await lines(join(dir, 'engine.2.log'))), ...(await lines(join(dir, 'engine.1.log'))), ...newest].map((r) => r.data!.i as number);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, k) => 40 - kept.length + k));
  });

  it('never throws when the folder cannot be written: it says so once on stderr and goes on', async () => {
    // A folder that cannot be created (a file is in the way): refused for every user, root included.
    await writeFile(join(work, 'not-a-folder'), 'x');
    const dir = join(work, 'not-a-folder', 'logs');
    const said: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      said.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      const log = createLogger({ dir, name: 'main' });
      expect(() => {
        log.info('one');
        log.error('two', new Error('boom'));
      }).not.toThrow();
    } finally {
      process.stderr.write = write;
    }
    expect(said.filter((s) => s.includes('cannot write the log'))).toHaveLength(1);
  });

  it('reads back the recent warnings and errors of several logs, oldest first', async () => {
    const dir = join(work, 'c');
    let t = Date.parse('2026-12-04T10:00:00Z');
    const now = () => new Date((t += 1000));
    const main = createLogger({ dir, name: 'main', now });
    const engine = createLogger({ dir, name: 'engine', now });
    main.warn('settings file quarantined');
    engine.error('session failed', new Error('out of memory'));
    main.info('ignored');
    main.error('IPC handler failed', new Error('disk full'));
    const recent = readRecentLogs(dir, ['main', 'engine']);
    expect(recent.map((r) => `${r.name}:${r.msg}`)).toEqual(['main:settings file quarantined', 'engine:session failed', 'main:IPC handler failed']);
    expect(readRecentLogs(dir, ['main', 'engine'], { count: 1 }).map((r) => r.msg)).toEqual(['IPC handler failed']);
  });
});
