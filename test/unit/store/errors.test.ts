import { describe, expect, it } from 'vitest';
import { OwleryError } from '../../../src-shared/errors.ts';
import { classifyCode, toStoreError } from '../../../src-main/store/errors.ts';

describe('store error classification', () => {
  it('maps every variant of a SQLite or errno code to its kind', () => {
    const table: [string, string | undefined][] = [
      ['SQLITE_CORRUPT', 'DB_CORRUPT'],
      ['SQLITE_CORRUPT_INDEX', 'DB_CORRUPT'],
      ['SQLITE_NOTADB', 'DB_CORRUPT'],
      ['SQLITE_BUSY', 'DB_LOCKED'],
      ['SQLITE_BUSY_SNAPSHOT', 'DB_LOCKED'],
      ['SQLITE_LOCKED_SHAREDCACHE', 'DB_LOCKED'],
      ['SQLITE_READONLY', 'DB_READONLY'],
      ['SQLITE_READONLY_DBMOVED', 'DB_READONLY'],
      ['SQLITE_CANTOPEN', 'DB_READONLY'],
      ['EROFS', 'DB_READONLY'],
      ['SQLITE_FULL', 'DISK_FULL'],
      ['ENOSPC', 'DISK_FULL'],
      ['SQLITE_CONSTRAINT_CHECK', undefined],
      ['SQLITE_ERROR', undefined],
      ['ENOENT', undefined],
    ];
    for (const [code, kind] of table) expect(classifyCode(code), code).toBe(kind);
    expect(classifyCode(undefined)).toBeUndefined();
  });

  it('wraps known failures with a message naming the file, and leaves bugs alone', () => {
    const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    const err = toStoreError(full, '/home/me/.config/owlery/history.sqlite') as OwleryError;
    expect(err).toBeInstanceOf(OwleryError);
    expect(err.code).toBe('DISK_FULL');
    expect(err.message).toMatch(/history\.sqlite/);
    expect(err.details).toMatchObject({ cause: 'SQLITE_FULL' });
    const bug = new TypeError('x is undefined');
    expect(toStoreError(bug, 'f')).toBe(bug);
    const own = new OwleryError('NOT_FOUND', 'gone');
    expect(toStoreError(own, 'f')).toBe(own);
  });
});
