/**
 * The real engine in headless Chromium: an in-process static server on 127.0.0.1 (a secure context, so WebGPU is
 * exposed) serves a one-line page, page.mjs, the built library (dist/) and the model folder; Playwright drives the
 * page. Chromium is Debian's (/usr/bin/chromium) or CHROMIUM_PATH, launched with the flags of playwright.config.ts.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import playwrightConfig from '../../playwright.config';
import type { ExitCriterion } from '../../src/exit';
import { EvalError, PageError } from './errors';
import type { PageAnswer, PageBatch, PageInput, PageModelInfo } from './types';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
};

const PAGE = `<!doctype html><meta charset="utf-8"><title>ponder-web eval</title>
<script type="module" src="/eval/page.mjs"></script>`;

/** Serves `mounts` (URL prefix → folder) and the page at '/'. Only files under a mount are reachable. */
function startServer(mounts: Record<string, string>): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    let path: string;
    try {
      path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replaceAll(
        '\\',
        '/',
      );
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'content-type': TYPES['.html']! }).end(PAGE);
      return;
    }
    for (const [prefix, root] of Object.entries(mounts)) {
      if (!path.startsWith(prefix)) continue;
      const file = join(root, path.slice(prefix.length));
      if (file !== root && !file.startsWith(root.endsWith(sep) ? root : root + sep)) break;
      try {
        const stat = statSync(file);
        if (!stat.isFile()) break;
        res.writeHead(200, {
          'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
          'content-length': stat.size,
        });
        createReadStream(file).pipe(res);
        return;
      } catch {
        break;
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, origin: `http://127.0.0.1:${port}` });
    });
  });
}

export function chromiumPath(): string {
  return (
    process.env.CHROMIUM_PATH ?? playwrightConfig.use?.launchOptions?.executablePath ?? '/usr/bin/chromium'
  );
}

export interface SessionOptions {
  repoRoot: string;
  /** A local model folder to serve at /model/; absent for Hub ids. */
  modelDir?: string;
  /** What loadClassifier receives: '/model/' for a local folder, else the Hub id. */
  modelSource: string;
  maxBatch: number;
  /** Browser console warnings and errors, and page errors. */
  onConsole?: (line: string) => void;
}

export interface EvalSession {
  info: PageModelInfo;
  /** `firstIndex`: the data-set index of inputs[0] (seeds PonderNet's sampled exit). */
  run(inputs: PageInput[], criterion: ExitCriterion | undefined, firstIndex: number): Promise<PageBatch>;
  close(): Promise<void>;
}

function unwrap<T>(answer: PageAnswer<T>): T {
  if ('error' in answer) throw new PageError(answer.error.code, answer.error.message);
  return answer.ok;
}

/** Starts the server and Chromium and loads the model. Throws PageError for a load failure, EvalError otherwise. */
export async function openSession(options: SessionOptions): Promise<EvalSession> {
  const executablePath = chromiumPath();
  if (!existsSync(executablePath)) {
    throw new EvalError(
      `Chromium not found at ${executablePath}: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH`,
      1,
    );
  }
  const mounts: Record<string, string> = {
    '/eval/': join(options.repoRoot, 'scripts', 'eval'),
    '/dist/': join(options.repoRoot, 'dist'),
  };
  if (options.modelDir) mounts['/model/'] = options.modelDir;
  const { server, origin } = await startServer(mounts);
  let browser: Browser | undefined;
  const close = async (): Promise<void> => {
    await browser?.close().catch(() => undefined);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  try {
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: playwrightConfig.use?.launchOptions?.args ?? ['--no-sandbox', '--enable-unsafe-webgpu'],
    });
    const page: Page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => {
      pageErrors.push(error.message);
      options.onConsole?.(`[page error] ${error.message}`);
    });
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') {
        options.onConsole?.(`[browser ${message.type()}] ${message.text()}`);
      }
    });
    await page.goto(`${origin}/`);
    try {
      await page.waitForFunction(
        () => (globalThis as { ponderEvalReady?: boolean }).ponderEvalReady === true,
        null,
        {
          timeout: 60_000,
        },
      );
    } catch (cause) {
      throw new EvalError(
        `the eval page did not start (is dist/ built and loadable?)${pageErrors.length ? `: ${pageErrors.join('; ')}` : ''}`,
        1,
        { cause },
      );
    }
    type Api = {
      load(source: string, maxBatch: number): Promise<PageAnswer<PageModelInfo>>;
      run(
        inputs: PageInput[],
        criterion: ExitCriterion | null,
        first: number,
      ): Promise<PageAnswer<PageBatch>>;
    };
    const info = unwrap(
      await page.evaluate(
        ([source, maxBatch]) =>
          (globalThis as unknown as { ponderEval: Api }).ponderEval.load(source, maxBatch),
        [options.modelSource, options.maxBatch] as const,
      ),
    );
    return {
      info,
      run: async (inputs, criterion, firstIndex) =>
        unwrap(
          await page.evaluate(
            ([batch, c, first]) =>
              (globalThis as unknown as { ponderEval: Api }).ponderEval.run(batch, c, first),
            [inputs, criterion ?? null, firstIndex] as const,
          ),
        ),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
