import { describe, expect, it } from 'vitest';
import { isPonderError } from '../../src/errors';
import {
  CACHE_NAME,
  loadModelFiles,
  resolveModelSource,
  type CacheLike,
  type FetchLike,
  type LoadProgressEvent,
} from '../../src/loading/files';

const encoder = new TextEncoder();

/** A fake server: path → body; bodies are streamed in chunks of `chunk` bytes. */
function fakeFetch(
  files: Record<string, string | Uint8Array>,
  options: { chunk?: number; contentLength?: boolean; status?: Record<string, number> } = {},
) {
  const calls: string[] = [];
  const fetch: FetchLike = async (url) => {
    calls.push(url);
    const status = options.status?.[url];
    if (status) return new Response('nope', { status, statusText: status === 404 ? 'Not Found' : 'Error' });
    const body = files[url];
    if (body === undefined) return new Response('not found', { status: 404, statusText: 'Not Found' });
    const bytes = typeof body === 'string' ? encoder.encode(body) : body;
    const chunk = options.chunk ?? 4;
    let at = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= bytes.byteLength) {
          controller.close();
          return;
        }
        controller.enqueue(bytes.slice(at, at + chunk));
        at += chunk;
      },
    });
    const headers: Record<string, string> = {};
    if (options.contentLength ?? true) headers['Content-Length'] = String(bytes.byteLength);
    return new Response(stream, { headers });
  };
  return { fetch, calls };
}

class FakeCache implements CacheLike {
  readonly store = new Map<string, Uint8Array>();
  puts = 0;
  async match(url: string): Promise<Response | undefined> {
    const hit = this.store.get(url);
    return hit ? new Response(hit.slice()) : undefined;
  }
  async put(url: string, response: Response): Promise<void> {
    this.puts++;
    this.store.set(url, new Uint8Array(await response.arrayBuffer()));
  }
}

const WEIGHTS = Uint8Array.from({ length: 23 }, (_, i) => i * 7);
const BASE = 'https://models.example/albert-tiny/';
const SERVER = {
  [`${BASE}config.json`]: '{"model_type":"albert"}',
  [`${BASE}model.safetensors`]: WEIGHTS,
  [`${BASE}tokenizer.json`]: '{"model":{}}',
};

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('resolveModelSource', () => {
  it('tells URLs from Hub ids', () => {
    const urlFor = (s: Parameters<typeof resolveModelSource>[0], o = {}) => {
      const r = resolveModelSource(s, o);
      if (r.kind !== 'remote') throw new Error('expected remote');
      return r.urlFor('config.json');
    };
    expect(urlFor('https://x.example/m/')).toBe('https://x.example/m/config.json');
    expect(urlFor('https://x.example/m')).toBe('https://x.example/m/config.json');
    expect(urlFor('/models/tiny/')).toBe('/models/tiny/config.json');
    expect(urlFor('./models/tiny')).toBe('./models/tiny/config.json');
    expect(urlFor('models/tiny/')).toBe('models/tiny/config.json');
    expect(urlFor('user/model')).toBe('https://huggingface.co/user/model/resolve/main/config.json');
    expect(urlFor('albert-base-v2')).toBe('https://huggingface.co/albert-base-v2/resolve/main/config.json');
    expect(urlFor('user/model', { revision: 'v1.0', hubHost: 'https://mirror.example/' })).toBe(
      'https://mirror.example/user/model/resolve/v1.0/config.json',
    );
    expect(urlFor({ hub: 'user/model', revision: 'refs/pr/1' })).toBe(
      'https://huggingface.co/user/model/resolve/refs%2Fpr%2F1/config.json',
    );
    expect(urlFor({ url: 'models/x' })).toBe('models/x/config.json');
  });

  it('rejects an empty source or a malformed Hub id', () => {
    expect(
      isPonderError(
        rejectSync(() => resolveModelSource('  ')),
        'invalid-input',
      ),
    ).toBe(true);
    expect(
      isPonderError(
        rejectSync(() => resolveModelSource('a/b/c')),
        'invalid-input',
      ),
    ).toBe(true);
    expect(
      isPonderError(
        rejectSync(() => resolveModelSource({ hub: 'bad id' })),
        'invalid-input',
      ),
    ).toBe(true);
  });
});

function rejectSync(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('loadModelFiles over HTTP', () => {
  it('downloads the files with progress events, then serves them from the cache', async () => {
    const server = fakeFetch(SERVER, { chunk: 10 });
    const cache = new FakeCache();
    const events: LoadProgressEvent[] = [];
    const files = await loadModelFiles(BASE, {
      fetch: server.fetch,
      cache,
      onProgress: (e) => events.push(e),
    });

    expect(files.origin).toBe(BASE);
    expect(files.config).toBe('{"model_type":"albert"}');
    expect([...new Uint8Array(files.weights)]).toEqual([...WEIGHTS]);
    expect(files.tokenizer).toBe('{"model":{}}');
    expect(files.tokenizerConfig).toBeUndefined(); // optional, 404
    expect(server.calls.sort()).toEqual(
      ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']
        .map((f) => BASE + f)
        .sort(),
    );

    const weightEvents = events.filter((e) => e.file === 'model.safetensors');
    expect(weightEvents).toEqual([
      {
        status: 'download',
        file: 'model.safetensors',
        url: `${BASE}model.safetensors`,
        loaded: 0,
        total: 23,
      },
      {
        status: 'download',
        file: 'model.safetensors',
        url: `${BASE}model.safetensors`,
        loaded: 10,
        total: 23,
      },
      {
        status: 'download',
        file: 'model.safetensors',
        url: `${BASE}model.safetensors`,
        loaded: 20,
        total: 23,
      },
      {
        status: 'download',
        file: 'model.safetensors',
        url: `${BASE}model.safetensors`,
        loaded: 23,
        total: 23,
      },
      { status: 'done', file: 'model.safetensors', url: `${BASE}model.safetensors`, bytes: 23 },
    ]);
    expect(
      events
        .filter((e) => e.status === 'done')
        .map((e) => e.file)
        .sort(),
    ).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    expect(cache.puts).toBe(3);
    expect([...cache.store.get(`${BASE}model.safetensors`)!]).toEqual([...WEIGHTS]);

    // Second load: no downloads of cached files; 'cached' then 'done'.
    const again = fakeFetch(SERVER);
    const events2: LoadProgressEvent[] = [];
    const files2 = await loadModelFiles(BASE, {
      fetch: again.fetch,
      cache,
      onProgress: (e) => events2.push(e),
    });
    expect(again.calls).toEqual([`${BASE}tokenizer_config.json`]); // the absent optional file is asked again
    expect([...new Uint8Array(files2.weights)]).toEqual([...WEIGHTS]);
    expect(events2.filter((e) => e.file === 'model.safetensors')).toEqual([
      { status: 'cached', file: 'model.safetensors', url: `${BASE}model.safetensors`, bytes: 23 },
      { status: 'done', file: 'model.safetensors', url: `${BASE}model.safetensors`, bytes: 23 },
    ]);
    expect(events2.some((e) => e.status === 'download')).toBe(false);
  });

  it('reports total undefined without Content-Length', async () => {
    const server = fakeFetch(SERVER, { contentLength: false, chunk: 100 });
    const events: LoadProgressEvent[] = [];
    await loadModelFiles(BASE, { fetch: server.fetch, cache: false, onProgress: (e) => events.push(e) });
    const downloads = events.filter((e) => e.status === 'download' && e.file === 'model.safetensors');
    expect(downloads.map((e) => (e.status === 'download' ? [e.loaded, e.total] : null))).toEqual([
      [0, undefined],
      [23, undefined],
    ]);
  });

  it('fails with fetch-failed naming the URL and status on HTTP 404 of a required file', async () => {
    const server = fakeFetch({ [`${BASE}config.json`]: '{}', [`${BASE}tokenizer.json`]: '{}' });
    const error = await rejection(loadModelFiles(BASE, { fetch: server.fetch, cache: false }));
    expect(isPonderError(error, 'fetch-failed')).toBe(true);
    expect((error as Error).message).toContain(`${BASE}model.safetensors`);
    expect((error as Error).message).toContain('HTTP 404 Not Found');
  });

  it('fails on a server error even for the optional file, and on a network error', async () => {
    const server = fakeFetch(SERVER, { status: { [`${BASE}tokenizer_config.json`]: 500 } });
    const error = await rejection(loadModelFiles(BASE, { fetch: server.fetch, cache: false }));
    expect(isPonderError(error, 'fetch-failed')).toBe(true);
    expect((error as Error).message).toMatch(/tokenizer_config\.json: HTTP 500/);

    const offline: FetchLike = async () => {
      throw new TypeError('Failed to fetch');
    };
    const error2 = await rejection(loadModelFiles('user/model', { fetch: offline, cache: false }));
    expect(isPonderError(error2, 'fetch-failed')).toBe(true);
    expect((error2 as Error).message).toMatch(
      /huggingface\.co\/user\/model\/resolve\/main\/.*Failed to fetch/,
    );
  });

  it('makes tokenizer.json optional on request', async () => {
    const server = fakeFetch({ [`${BASE}config.json`]: '{}', [`${BASE}model.safetensors`]: WEIGHTS });
    const files = await loadModelFiles(BASE, { fetch: server.fetch, cache: false, requireTokenizer: false });
    expect(files.tokenizer).toBeUndefined();
  });

  it('loads without Cache Storage (warns once) and survives a failing cache', async () => {
    const warnings: string[] = [];
    const server = fakeFetch(SERVER);
    // Node has no globalThis.caches: the default path must warn and continue.
    expect((globalThis as { caches?: unknown }).caches).toBeUndefined();
    const files = await loadModelFiles(BASE, { fetch: server.fetch, warn: (m) => warnings.push(m) });
    expect(files.weights.byteLength).toBe(23);
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatch(/Cache Storage is not available/);

    const broken: CacheLike = {
      match: () => Promise.reject(new Error('SecurityError')),
      put: () => Promise.reject(new Error('QuotaExceededError')),
    };
    const warnings2: string[] = [];
    const files2 = await loadModelFiles(BASE, {
      fetch: fakeFetch(SERVER).fetch,
      cache: broken,
      warn: (m) => warnings2.push(m),
    });
    expect(files2.weights.byteLength).toBe(23);
    expect(warnings2.some((w) => /QuotaExceededError/.test(w))).toBe(true);
    expect(warnings2.some((w) => /SecurityError/.test(w))).toBe(true);
  });

  it('opens the versioned cache from Cache Storage', async () => {
    const opened: string[] = [];
    const cache = new FakeCache();
    const g = globalThis as { caches?: unknown };
    g.caches = { open: async (name: string) => (opened.push(name), cache) };
    try {
      await loadModelFiles(BASE, { fetch: fakeFetch(SERVER).fetch });
    } finally {
      delete g.caches;
    }
    expect(opened).toEqual([CACHE_NAME]);
    expect(CACHE_NAME).toBe('ponder-web-v1');
    expect(cache.store.size).toBe(3);
  });

  it('cancels with the caller signal', async () => {
    const controller = new AbortController();
    controller.abort();
    const abortable: FetchLike = async (_url, init) => {
      if (init?.signal?.aborted) throw new DOMException('aborted', 'AbortError');
      return new Response('{}');
    };
    const error = await rejection(
      loadModelFiles(BASE, { fetch: abortable, cache: false, signal: controller.signal }),
    );
    expect(isPonderError(error, 'fetch-failed')).toBe(true);
  });
});

describe('loadModelFiles from local files', () => {
  it('reads a picked file list by name, ignoring folder paths', async () => {
    const events: LoadProgressEvent[] = [];
    const files = await loadModelFiles(
      {
        files: [
          new File(['{"model_type":"bert"}'], 'config.json'),
          new File([WEIGHTS], 'model.safetensors'),
          new File(['{"t":1}'], 'tokenizer.json'),
          new File(['{"c":1}'], 'tokenizer_config.json'),
          new File(['x'], 'README.md'),
        ],
      },
      { onProgress: (e) => events.push(e) },
    );
    expect(files.origin).toBe('local files');
    expect(files.config).toBe('{"model_type":"bert"}');
    expect([...new Uint8Array(files.weights)]).toEqual([...WEIGHTS]);
    expect(files.tokenizerConfig).toBe('{"c":1}');
    expect(events).toContainEqual({ status: 'done', file: 'model.safetensors', bytes: 23 });
  });

  it('names a missing required file', async () => {
    const error = await rejection(loadModelFiles({ files: [new File(['{}'], 'config.json')] }));
    expect(isPonderError(error, 'invalid-input')).toBe(true);
    expect((error as Error).message).toMatch(
      /model\.safetensors is not among the chosen files \(got: config\.json\)/,
    );
  });
});
