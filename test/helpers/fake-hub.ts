/**
 * Pieces of a Hugging Face compatible hub for pull tests (served by a local `node:http` server).
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';

/**
 * Answers `/api/models/<repo>/tree/main` with the listing of `files` (name, size, LFS sha256) and
 * returns true; returns false for any other path.
 */
export function serveHubTree(path: string, repo: string, files: ReadonlyMap<string, Buffer>, res: ServerResponse): boolean {
  if (path !== `/api/models/${repo}/tree/main`) return false;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify([...files].map(([name, data]) => ({
    type: 'file',
    path: name,
    size: data.length,
    lfs: { oid: createHash('sha256').update(data).digest('hex'), size: data.length },
  }))));
  return true;
}
