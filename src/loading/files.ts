/**
 * Finding and downloading a model's files: config.json, model.safetensors, tokenizer.json and the
 * optional tokenizer_config.json, from a base URL, a Hugging Face Hub id or local File objects.
 * Downloads report progress and are kept in Cache Storage under a versioned key; a browser without
 * Cache Storage (or a private window that refuses it) still loads, only without the cache.
 */
import { PonderError } from '../errors';

/** Bump when the cached bytes' meaning changes, so old entries are never reused. */
export const CACHE_NAME = 'ponder-web-v1';
export const DEFAULT_HUB_HOST = 'https://huggingface.co';

export type ModelFileName = 'config.json' | 'model.safetensors' | 'tokenizer.json' | 'tokenizer_config.json';

/**
 * Where a model comes from. A string is a URL (it starts with a scheme, '/', './' or '../', or ends
 * with '/') or else a Hub id such as 'user/model'; use the object forms to say which explicitly.
 */
export type ModelSource =
  string | { url: string } | { hub: string; revision?: string } | { files: FileList | Iterable<File> };

export type LoadProgressEvent =
  /** Bytes arrived; `total` is Content-Length (undefined when absent; a compressed response may exceed it). */
  | { status: 'download'; file: ModelFileName; url: string; loaded: number; total: number | undefined }
  /** The file came from Cache Storage, no download. */
  | { status: 'cached'; file: ModelFileName; url: string; bytes: number }
  /** The file is complete (after downloads, cache hits and local reads alike). */
  | { status: 'done'; file: ModelFileName; bytes: number; url?: string };

export type ProgressCallback = (event: LoadProgressEvent) => void;

/** The part of the Cache interface used here (injectable for tests). */
export interface CacheLike {
  match(request: string): Promise<Response | undefined>;
  put(request: string, response: Response): Promise<void>;
}

export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

export interface LoadFilesOptions {
  onProgress?: ProgressCallback;
  /** Defaults to globalThis.fetch. */
  fetch?: FetchLike;
  /** A cache to use, or false for none. Defaults to `caches.open(CACHE_NAME)` when available. */
  cache?: CacheLike | false;
  /** Hub host, e.g. a mirror (default https://huggingface.co). */
  hubHost?: string;
  /** Hub revision when the source does not give one (default 'main'). */
  revision?: string;
  /** Whether tokenizer.json is required (default true; false for callers that pass token ids). */
  requireTokenizer?: boolean;
  signal?: AbortSignal;
  /** Where warnings go (default console.warn). */
  warn?: (message: string) => void;
}

export interface ModelFiles {
  /** Human-readable origin: the base URL, Hub id or 'local files'. */
  origin: string;
  config: string;
  weights: ArrayBuffer;
  tokenizer?: string;
  tokenizerConfig?: string;
}

export type ResolvedSource =
  | { kind: 'remote'; origin: string; urlFor: (file: ModelFileName) => string }
  | { kind: 'local'; origin: string; files: Map<string, File> };

const HUB_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

function isUrlLike(source: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(source) || /^\.{0,2}\//.test(source) || source.endsWith('/');
}

function joinUrl(base: string, file: string): string {
  return base.endsWith('/') ? base + file : `${base}/${file}`;
}

function hubUrls(id: string, revision: string, host: string): ResolvedSource {
  if (!HUB_ID.test(id)) {
    throw new PonderError('invalid-input', `'${id}' is not a Hugging Face Hub id (expected 'user/model')`);
  }
  const base = host.replace(/\/+$/, '');
  const rev = encodeURIComponent(revision);
  return {
    kind: 'remote',
    origin: revision === 'main' ? id : `${id}@${revision}`,
    urlFor: (file) => `${base}/${id}/resolve/${rev}/${file}`,
  };
}

function isIterableOfFiles(value: unknown): value is Iterable<File> {
  return typeof value === 'object' && value !== null && Symbol.iterator in value;
}

/** Turns a source into per-file URLs or a name → File map; fetches nothing. */
export function resolveModelSource(source: ModelSource, options: LoadFilesOptions = {}): ResolvedSource {
  const host = options.hubHost ?? DEFAULT_HUB_HOST;
  const revision = options.revision ?? 'main';
  if (typeof source === 'string') {
    const trimmed = source.trim();
    if (trimmed === '') throw new PonderError('invalid-input', 'The model source is empty');
    if (isUrlLike(trimmed)) return { kind: 'remote', origin: trimmed, urlFor: (f) => joinUrl(trimmed, f) };
    return hubUrls(trimmed, revision, host);
  }
  if ('url' in source) {
    return { kind: 'remote', origin: source.url, urlFor: (f) => joinUrl(source.url, f) };
  }
  if ('hub' in source) return hubUrls(source.hub, source.revision ?? revision, host);
  if ('files' in source && isIterableOfFiles(source.files)) {
    const files = new Map<string, File>();
    // Only the base name counts: a dropped folder gives paths like 'model/config.json'.
    for (const file of source.files) files.set(file.name.split('/').pop() ?? file.name, file);
    return { kind: 'local', origin: 'local files', files };
  }
  throw new PonderError('invalid-input', 'The model source must be a URL, a Hub id or a list of files');
}

let warnedNoCacheStorage = false;

async function openCache(
  options: LoadFilesOptions,
  warn: (m: string) => void,
): Promise<CacheLike | undefined> {
  if (options.cache === false) return undefined;
  if (options.cache) return options.cache;
  const storage = (globalThis as { caches?: CacheStorage }).caches;
  if (!storage) {
    if (!warnedNoCacheStorage) {
      warnedNoCacheStorage = true;
      warn(
        'ponder-web: Cache Storage is not available here (not a secure context?); model files will not be cached',
      );
    }
    return undefined;
  }
  try {
    return await storage.open(CACHE_NAME);
  } catch (error) {
    warn(`ponder-web: could not open Cache Storage (${String(error)}); model files will not be cached`);
    return undefined;
  }
}

async function readBody(response: Response, file: ModelFileName, url: string, onProgress?: ProgressCallback) {
  const header = response.headers.get('Content-Length');
  const parsed = header === null ? NaN : Number(header);
  const total = Number.isSafeInteger(parsed) && parsed >= 0 ? parsed : undefined;
  if (!response.body) {
    const buffer = await response.arrayBuffer();
    onProgress?.({ status: 'download', file, url, loaded: buffer.byteLength, total });
    return buffer;
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  onProgress?.({ status: 'download', file, url, loaded, total });
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    onProgress?.({ status: 'download', file, url, loaded, total });
  }
  const out = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out.buffer;
}

async function fetchFile(
  url: string,
  file: ModelFileName,
  optional: boolean,
  cache: CacheLike | undefined,
  options: LoadFilesOptions,
  warn: (m: string) => void,
): Promise<ArrayBuffer | undefined> {
  const { onProgress } = options;
  if (cache) {
    try {
      const hit = await cache.match(url);
      if (hit) {
        const buffer = await hit.arrayBuffer();
        onProgress?.({ status: 'cached', file, url, bytes: buffer.byteLength });
        onProgress?.({ status: 'done', file, url, bytes: buffer.byteLength });
        return buffer;
      }
    } catch (error) {
      warn(`ponder-web: reading ${url} from Cache Storage failed (${String(error)}); downloading it`);
    }
  }

  const doFetch = options.fetch ?? (globalThis.fetch?.bind(globalThis) as FetchLike | undefined);
  if (!doFetch) throw new PonderError('fetch-failed', `Cannot download ${url}: fetch is not available`);
  let response: Response;
  try {
    response = await doFetch(url, options.signal ? { signal: options.signal } : undefined);
  } catch (cause) {
    throw new PonderError('fetch-failed', `Could not download ${url}: ${String(cause)}`, { cause });
  }
  if (!response.ok) {
    if (optional && response.status === 404) return undefined;
    throw new PonderError(
      'fetch-failed',
      `Could not download ${url}: HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`,
    );
  }
  let buffer: ArrayBuffer;
  try {
    buffer = await readBody(response, file, url, onProgress);
  } catch (cause) {
    throw new PonderError('fetch-failed', `Download of ${url} was interrupted: ${String(cause)}`, { cause });
  }
  if (cache) {
    try {
      const headers = { 'Content-Type': response.headers.get('Content-Type') ?? 'application/octet-stream' };
      await cache.put(url, new Response(buffer.slice(0), { headers }));
    } catch (error) {
      warn(`ponder-web: could not cache ${url} (${String(error)}); continuing without caching it`);
    }
  }
  onProgress?.({ status: 'done', file, url, bytes: buffer.byteLength });
  return buffer;
}

async function readLocal(
  files: Map<string, File>,
  file: ModelFileName,
  optional: boolean,
  onProgress?: ProgressCallback,
): Promise<ArrayBuffer | undefined> {
  const entry = files.get(file);
  if (!entry) {
    if (optional) return undefined;
    const given = [...files.keys()].join(', ') || 'none';
    throw new PonderError('invalid-input', `${file} is not among the chosen files (got: ${given})`);
  }
  const buffer = await entry.arrayBuffer();
  onProgress?.({ status: 'done', file, bytes: buffer.byteLength });
  return buffer;
}

const decoder = new TextDecoder();

/**
 * Fetches (or reads) config.json, model.safetensors, tokenizer.json and tokenizer_config.json.
 * Errors: 'fetch-failed' with the URL and HTTP status; 'invalid-input' for a bad source or a
 * local file set without a required file.
 */
export async function loadModelFiles(
  source: ModelSource,
  options: LoadFilesOptions = {},
): Promise<ModelFiles> {
  const resolved = resolveModelSource(source, options);
  const warn = options.warn ?? ((m: string) => console.warn(m));
  const requireTokenizer = options.requireTokenizer ?? true;

  // One failed file cancels the other downloads (and the caller's signal cancels them all).
  const controller = new AbortController();
  const outer = options.signal;
  if (outer?.aborted) controller.abort(outer.reason);
  outer?.addEventListener('abort', () => controller.abort(outer.reason), { once: true });
  const inner: LoadFilesOptions = { ...options, signal: controller.signal };

  let get: (file: ModelFileName, optional: boolean) => Promise<ArrayBuffer | undefined>;
  if (resolved.kind === 'local') {
    get = (file, optional) => readLocal(resolved.files, file, optional, options.onProgress);
  } else {
    const cache = await openCache(options, warn);
    get = (file, optional) => fetchFile(resolved.urlFor(file), file, optional, cache, inner, warn);
  }

  let results: (ArrayBuffer | undefined)[];
  try {
    results = await Promise.all([
      get('config.json', false),
      get('model.safetensors', false),
      get('tokenizer.json', !requireTokenizer),
      get('tokenizer_config.json', true),
    ]);
  } catch (error) {
    controller.abort();
    throw error;
  }
  const [config, weights, tokenizer, tokenizerConfig] = results;
  const files: ModelFiles = {
    origin: resolved.origin,
    config: decoder.decode(config),
    weights: weights as ArrayBuffer,
  };
  if (tokenizer) files.tokenizer = decoder.decode(tokenizer);
  if (tokenizerConfig) files.tokenizerConfig = decoder.decode(tokenizerConfig);
  return files;
}
