/**
 * The web test harness: serves the built renderer on 127.0.0.1 and implements `window.owlery`
 * in the page over a WebSocket to the real services, through the same dispatch table the Electron
 * wiring uses (only the transport differs). Playwright drives a real browser against it.
 *
 * - Binds 127.0.0.1 only; requests whose `Host` is not the harness's own are refused (DNS
 *   rebinding), and so are WebSocket upgrades and test endpoints from other origins.
 * - The renderer build folder is configurable (default `out/renderer`); without a build a small
 *   placeholder page is served. `index.html` gets the client script (`/__harness/client.js`,
 *   bundled from `client-entry.ts` on first request) injected before the renderer's own scripts,
 *   and every page is served with the app's Content Security Policy.
 * - Images are served at `/owlery-image/…` (the `owlery-image:` protocol's paths);
 *   `AppInfo.imageBase` points there.
 * - File dialogs are scripted: `POST /__test/choose-files` with
 *   `{ "dialog": "images" | "photos-folder" | "checkpoint-folder" | "save" | "import", "paths": [...] }`
 *   queues the answer of the next dialog of that kind (`"paths": []` or none queued: cancelled).
 *
 * Run standalone: `npx tsx test/harness/server.ts --data-dir <dir> [--renderer-dir <dir>] [--port <n>]`.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { OwleryError } from '../../src-shared/errors.ts';
import { CONTENT_SECURITY_POLICY } from '../../src-main/app/csp.ts';
import { mimeOf, resolveRendererFile } from '../../src-main/app/renderer-files.ts';
import { createDispatcher } from '../../src-main/ipc/dispatch.ts';
import type { Dispatch } from '../../src-main/ipc/dispatch.ts';
import { createHandlers } from '../../src-main/ipc/handlers/index.ts';
import { createSenderCheck } from '../../src-main/ipc/trust.ts';
import type { Dialogs } from '../../src-main/services/dialogs.ts';
import { serveImage } from '../../src-main/services/image-serving.ts';
import { createServices } from '../../src-main/services/composition.ts';
import type { Services, ServicesOptions } from '../../src-main/services/composition.ts';
import { HARNESS_SOCKET_PATH } from './client.ts';
import { decode, encode } from './codec.ts';
import type { WireRequest } from './codec.ts';

/** The loopback address the harness binds (and nothing else). */
export const HARNESS_HOST = '127.0.0.1';
/** Default renderer build folder. */
export const DEFAULT_RENDERER_DIR = fileURLToPath(new URL('../../out/renderer/', import.meta.url));
/** Largest WebSocket message (a 50 MiB image, base64, plus framing). */
export const MAX_MESSAGE_BYTES = 72 * 1024 * 1024;

/** Dialog kinds a test script can answer. */
export type ScriptedDialog = 'images' | 'photos-folder' | 'checkpoint-folder' | 'save' | 'import';
const DIALOGS: readonly ScriptedDialog[] = ['images', 'photos-folder', 'checkpoint-folder', 'save', 'import'];

/** Options of {@link startHarness}. */
export interface HarnessOptions {
  /** The data folder for the services (default: a new temporary folder). */
  dataDir?: string;
  /** The renderer build to serve (default `out/renderer`; a placeholder page when it is missing). */
  rendererDir?: string;
  /** Port (default 0: any free port). */
  port?: number;
  /** Further service options (hub endpoint, exporter, chat tuning…). */
  services?: Omit<ServicesOptions, 'dataDir' | 'dialogs' | 'imageBase'>;
}

/** A running harness. */
export interface Harness {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly services: Services;
  /** The dispatch function the WebSocket calls (the same table as the app). */
  readonly dispatch: Dispatch;
  /** Queues the answer of the next dialog of a kind (what `POST /__test/choose-files` does). */
  choose(dialog: ScriptedDialog, paths: string[]): void;
  /** Folders the page asked main to show in the file manager (the logs folder). */
  readonly shownFolders: readonly string[];
  /** Stops the server and the services. */
  close(): Promise<void>;
}

/** Dialog answers queued by the test script. */
class ScriptedDialogs implements Dialogs {
  private readonly queues = new Map<ScriptedDialog, string[][]>();

  push(dialog: ScriptedDialog, paths: string[]): void {
    const q = this.queues.get(dialog) ?? [];
    q.push(paths);
    this.queues.set(dialog, q);
  }

  private next(dialog: ScriptedDialog): string[] {
    return this.queues.get(dialog)?.shift() ?? [];
  }

  async chooseImages(): Promise<string[]> {
    return this.next('images');
  }
  async chooseFolder(purpose: 'photos' | 'checkpoint'): Promise<string | null> {
    return this.next(purpose === 'photos' ? 'photos-folder' : 'checkpoint-folder')[0] ?? null;
  }
  async chooseSavePath(): Promise<string | null> {
    return this.next('save')[0] ?? null;
  }
  async chooseImportFile(): Promise<string | null> {
    return this.next('import')[0] ?? null;
  }
  /** Folders the page asked to show in the file manager (there is none here: not shown). */
  readonly shownFolders: string[] = [];
  async showFolder(path: string): Promise<boolean> {
    this.shownFolders.push(path);
    return false;
  }
}

const PLACEHOLDER = (dir: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Owlery (harness)</title></head>
<body><h1>Owlery test harness</h1><p>No renderer build at <code>${dir.replace(/[<>&]/g, '')}</code>; <code>window.owlery</code> is available.</p></body></html>
`;

let clientBundle: Promise<string> | undefined;

/** The page client, bundled for the browser (IIFE) with Vite, once per process. */
export function harnessClientBundle(): Promise<string> {
  clientBundle ??= (async () => {
    const { build } = await import('vite');
    const out = await build({
      configFile: false,
      logLevel: 'silent',
      root: fileURLToPath(new URL('.', import.meta.url)),
      build: {
        write: false,
        minify: false,
        emptyOutDir: false,
        lib: { entry: fileURLToPath(new URL('./client-entry.ts', import.meta.url)), formats: ['iife'], name: 'OwleryHarnessClient', fileName: () => 'client.js' },
      },
    });
    const outputs = (Array.isArray(out) ? out : [out]) as { output: { type: string; code?: string }[] }[];
    const chunk = outputs.flatMap((o) => o.output).find((o) => o.type === 'chunk');
    if (!chunk?.code) throw new Error('the harness client did not bundle');
    return chunk.code;
  })();
  return clientBundle;
}

function send(res: ServerResponse, status: number, body: string | Uint8Array, type: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'x-content-type-options': 'nosniff', 'cache-control': 'no-store', ...extra });
  res.end(body);
}

async function readBody(req: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) throw new OwleryError('INVALID_ARGUMENT', 'request body too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts the harness; see the module comment. */
export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'owlery-harness-')));
  const rendererDir = resolve(opts.rendererDir ?? DEFAULT_RENDERER_DIR);
  const dialogs = new ScriptedDialogs();
  const server = createServer();
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, HARNESS_HOST, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `http://${HARNESS_HOST}:${port}`;
  const allowedHosts = new Set([`${HARNESS_HOST}:${port}`, `localhost:${port}`]);

  const services = createServices({
    ...opts.services,
    dataDir,
    dialogs,
    imageBase: `${origin}/owlery-image/`,
    app: { name: 'Owlery', version: '0.0.0-harness', platform: 'browser', versions: { node: process.versions.node }, harness: true, ...opts.services?.app },
  });
  const isTrustedSender = createSenderCheck({ origins: [origin] });
  const dispatch = createDispatcher(createHandlers(services), {
    isTrustedSender,
    includeStacks: true,
    onException: (channel, err) => console.error(`harness: ${channel} failed unexpectedly`, err),
  });

  const hasBuild = existsSync(join(rendererDir, 'index.html'));
  const sameOrigin = (req: IncomingMessage) => req.headers.origin === undefined || req.headers.origin === origin;

  server.on('request', (req, res) => {
    void (async () => {
      if (!allowedHosts.has(req.headers.host ?? '')) return send(res, 421, 'wrong host', 'text/plain');
      const url = new URL(req.url ?? '/', origin);
      if (url.pathname === '/__harness/client.js') return send(res, 200, await harnessClientBundle(), 'text/javascript; charset=utf-8');
      if (url.pathname === '/__test/choose-files') {
        if (req.method !== 'POST' || !sameOrigin(req)) return send(res, 405, 'POST from the harness page or a script only', 'text/plain');
        const body = JSON.parse(await readBody(req, 1 << 20)) as { dialog?: unknown; paths?: unknown };
        const dialog = body.dialog ?? 'images';
        const paths = body.paths ?? [];
        if (!DIALOGS.includes(dialog as ScriptedDialog)) return send(res, 400, `dialog must be one of ${DIALOGS.join(', ')}`, 'text/plain');
        if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string' && isAbsolute(p))) {
          return send(res, 400, 'paths must be a list of absolute paths', 'text/plain');
        }
        dialogs.push(dialog as ScriptedDialog, paths as string[]);
        return send(res, 200, '{"queued":true}', 'application/json');
      }
      if (url.pathname.startsWith('/owlery-image/')) {
        try {
          const image = await serveImage(services, url.pathname.slice('/owlery-image/'.length));
          const body = 'bytes' in image ? image.bytes : await readFile(image.path);
          return send(res, 200, body, image.mime);
        } catch {
          return send(res, 404, 'Not found', 'text/plain');
        }
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'Method not allowed', 'text/plain');
      const headers = { 'content-security-policy': CONTENT_SECURITY_POLICY };
      if (!hasBuild) {
        if (url.pathname !== '/' && url.pathname !== '/index.html') return send(res, 404, 'Not found', 'text/plain');
        return send(res, 200, injectClient(PLACEHOLDER(rendererDir)), 'text/html; charset=utf-8', headers);
      }
      const file = resolveRendererFile(rendererDir, url.pathname);
      if (!file || !(await stat(file).catch(() => null))?.isFile()) return send(res, 404, 'Not found', 'text/plain');
      const body = await readFile(file);
      if (file.endsWith('index.html')) return send(res, 200, injectClient(body.toString('utf8')), 'text/html; charset=utf-8', headers);
      return send(res, 200, body, mimeOf(file), headers);
    })().catch((err: unknown) => {
      if (!res.headersSent) send(res, err instanceof OwleryError || err instanceof SyntaxError ? 400 : 500, String((err as Error).message), 'text/plain');
      else res.destroy();
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const clients = new Set<WebSocket>();
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname !== HARNESS_SOCKET_PATH || !allowedHosts.has(req.headers.host ?? '') || req.headers.origin !== origin) {
      socket.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const senderUrl = req.headers.origin ?? null;
      clients.add(ws);
      ws.on('close', () => clients.delete(ws));
      ws.on('message', (data) => {
        let msg: WireRequest;
        try {
          msg = decode(String(data)) as WireRequest;
          if (typeof msg?.id !== 'number') throw new Error('no id');
        } catch {
          ws.close(1003, 'malformed message');
          return;
        }
        void dispatch(msg.channel, msg.payload, { url: senderUrl }).then((result) => {
          if (ws.readyState === ws.OPEN) ws.send(encode({ id: msg.id, result }));
        });
      });
    });
  });
  const unsubscribe = services.events.subscribe((event) => {
    const text = encode({ event });
    for (const ws of clients) if (ws.readyState === ws.OPEN) ws.send(text);
  });

  let closing: Promise<void> | undefined;
  return {
    url: origin,
    port,
    dataDir,
    services,
    dispatch,
    choose: (dialog, paths) => dialogs.push(dialog, paths),
    shownFolders: dialogs.shownFolders,
    close() {
      closing ??= (async () => {
        unsubscribe();
        for (const ws of clients) ws.terminate();
        wss.close();
        await new Promise<void>((ok) => server.close(() => ok()));
        server.closeAllConnections();
        await services.close();
      })();
      return closing;
    },
  };
}

/** Puts the client script first in `<head>`, so `window.owlery` exists before the renderer runs. */
export function injectClient(html: string): string {
  const tag = '<script src="/__harness/client.js"></script>';
  const m = /<head[^>]*>/i.exec(html);
  return m ? `${html.slice(0, m.index + m[0].length)}${tag}${html.slice(m.index + m[0].length)}` : `${tag}${html}`;
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const harness = await startHarness({ dataDir: arg('--data-dir'), rendererDir: arg('--renderer-dir'), port: Number(arg('--port') ?? 0) });
  console.log(`Owlery harness on ${harness.url} (data ${harness.dataDir})`);
  const stop = () => void harness.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
