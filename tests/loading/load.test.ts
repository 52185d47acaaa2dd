import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isPonderError } from '../../src/errors';
import { loadCheckpoint, type FetchLike } from '../../src/loading';
import { albertConfig, TINY_ALBERT, tinyCheckpoint, writeSafetensors } from './helpers';

const DIR = join(__dirname, '..', 'fixtures', 'loading', 'wordpiece');

function server(files: Record<string, string | Uint8Array>): FetchLike {
  return async (url) => {
    const body = files[url];
    if (body === undefined) return new Response('', { status: 404 });
    return new Response(typeof body === 'string' ? body : body.slice());
  };
}

describe('loadCheckpoint', () => {
  const weights = writeSafetensors(
    tinyCheckpoint('albert', TINY_ALBERT, { prefix: true, classifier: true }).tensors,
  );
  const base = 'https://hub.example';
  const at = (file: string) => `${base}/me/tiny/resolve/main/${file}`;

  it('fetches a Hub id and returns the model and a tokenizer truncating to max_position_embeddings', async () => {
    const fetch = server({
      [at('config.json')]: JSON.stringify(albertConfig(TINY_ALBERT)),
      [at('model.safetensors')]: weights,
      [at('tokenizer.json')]: readFileSync(join(DIR, 'tokenizer.json'), 'utf8'),
      [at('tokenizer_config.json')]: readFileSync(join(DIR, 'tokenizer_config.json'), 'utf8'),
    });
    const { model, tokenizer, files } = await loadCheckpoint('me/tiny', {
      fetch,
      cache: false,
      hubHost: base,
    });
    expect(files.origin).toBe('me/tiny');
    expect(model.config.labels).toEqual(['class_0', 'class_1', 'class_2']);
    expect(model.weights.layers.length).toBe(4);
    expect(tokenizer!.maxLength).toBe(TINY_ALBERT.maxPos); // 9, not the tokenizer's 512
    const out = tokenizer!.encode('the quick brown fox jumps over the lazy dog again');
    expect(out.inputIds.length).toBe(9);
    expect(out.truncated).toBe(true);
  });

  it('surfaces a bad weights file as invalid-safetensors', async () => {
    const fetch = server({
      [at('config.json')]: JSON.stringify(albertConfig(TINY_ALBERT)),
      [at('model.safetensors')]: weights.subarray(0, weights.byteLength - 1),
      [at('tokenizer.json')]: readFileSync(join(DIR, 'tokenizer.json'), 'utf8'),
    });
    let caught: unknown;
    try {
      await loadCheckpoint('me/tiny', { fetch, cache: false, hubHost: base });
    } catch (error) {
      caught = error;
    }
    expect(isPonderError(caught, 'invalid-safetensors')).toBe(true);
  });
});
