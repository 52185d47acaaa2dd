/**
 * A static file server for the benchmark on http://127.0.0.1: the built page, the models, and the
 * ONNX Runtime wasm files transformers.js fetches. It sends COOP/COEP so that the page is
 * cross-origin isolated (SharedArrayBuffer: ONNX Runtime's wasm may use threads), and no caching
 * headers, so every page load refetches (cold starts stay cold apart from the browser's GPU caches).
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { CACHE } from './models';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
};

/** URL prefix → folder. The first match wins. */
const ROOTS: [string, string][] = [
  ['/models/', join(CACHE, 'models')],
  ['/ort14/', 'node_modules/@xenova/transformers/node_modules/onnxruntime-web/dist'],
  ['/ort/', 'node_modules/onnxruntime-web/dist'],
  ['/', join(CACHE, 'site')],
];

export function startServer(port: number): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const [prefix, dir] = ROOTS.find(([p]) => path.startsWith(p))!;
    const root = resolve(dir);
    let file = normalize(join(root, path.slice(prefix.length)));
    if (!file.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`not found: ${path}`);
      return;
    }
    res.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Length': statSync(file).size,
      'Cache-Control': 'no-store',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
    });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      ok({ server, url: `http://127.0.0.1:${actual}` });
    });
  });
}
