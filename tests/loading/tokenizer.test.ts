import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isPonderError } from '../../src/errors';
import { createTokenizer, longestFirstLengths, type TextTokenizer } from '../../src/loading/tokenizer';

// A hand-written BERT WordPiece tokenizer.json (24-token vocab) and its tokenizer_config.json.
const DIR = join(__dirname, '..', 'fixtures', 'loading', 'wordpiece');
const TOKENIZER_JSON = readFileSync(join(DIR, 'tokenizer.json'), 'utf8');
const TOKENIZER_CONFIG = readFileSync(join(DIR, 'tokenizer_config.json'), 'utf8');

// The vocabulary, by token, as in the fixture.
const V: Record<string, number> = {
  '[PAD]': 0,
  '[UNK]': 1,
  '[CLS]': 2,
  '[SEP]': 3,
  the: 5,
  quick: 6,
  brown: 7,
  fox: 8,
  un: 9,
  una: 10,
  '##ff': 11,
  '##able': 12,
  ',': 13,
  '!': 14,
  '.': 15,
  cafe: 16,
  中: 17,
  hello: 18,
  world: 19,
  jumps: 20,
  over: 21,
  dog: 22,
  '##s': 23,
};
const ids = (tokens: string): number[] => tokens.split(' ').map((t) => V[t]!);

function expectInvalidInput(fn: () => unknown, fragment: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(isPonderError(caught, 'invalid-input'), `expected invalid-input, got ${String(caught)}`).toBe(true);
  expect((caught as Error).message).toMatch(fragment);
}

let tokenizer: TextTokenizer;
beforeAll(async () => {
  tokenizer = await createTokenizer(TOKENIZER_JSON, TOKENIZER_CONFIG);
});

describe('tokenizer: BERT WordPiece', () => {
  it('gives the ids BERT WordPiece gives: lowercase, punctuation split, greedy longest-match subwords', () => {
    const out = tokenizer.encode('Hello, WORLD! The quick brown fox jumps over the unaffable dogs.');
    // BasicTokenizer: lowercase, split on whitespace and punctuation. WordPiece, greedy longest match
    // from the left: unaffable → una ##ff ##able (not un ...), dogs → dog ##s.
    const expected = ids(
      '[CLS] hello , world ! the quick brown fox jumps over the una ##ff ##able dog ##s . [SEP]',
    );
    expect(out.inputIds).toEqual(expected);
    expect(out.tokenTypeIds).toEqual(expected.map(() => 0));
    expect(out.attentionMask).toEqual(expected.map(() => 1));
    expect(out.truncated).toBe(false);
    expect(out.fullLength).toBe(expected.length);
    expect(tokenizer.tokens(out.inputIds).slice(12, 15)).toEqual(['una', '##ff', '##able']);
  });

  it('maps a word whose pieces cannot be completed to a single [UNK], strips accents, splits CJK', () => {
    // 'unax': 'una' matches but no '##x' piece exists, so the whole word is [UNK] (no backtracking).
    expect(tokenizer.encode('unax fox').inputIds).toEqual(ids('[CLS] [UNK] fox [SEP]'));
    // Lowercasing strips accents (strip_accents null follows lowercase): Café → cafe.
    expect(tokenizer.encode('Café').inputIds).toEqual(ids('[CLS] cafe [SEP]'));
    // Chinese characters are split one per token; 文 is not in the vocabulary.
    expect(tokenizer.encode('中文').inputIds).toEqual(ids('[CLS] 中 [UNK] [SEP]'));
  });

  it('encodes a pair with token types 0 then 1', () => {
    const out = tokenizer.encode('the fox', 'the dogs');
    expect(out.inputIds).toEqual(ids('[CLS] the fox [SEP] the dog ##s [SEP]'));
    expect(out.tokenTypeIds).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it('reads the default length from model_max_length and the pad id from the config', () => {
    expect(tokenizer.maxLength).toBe(512);
    expect(tokenizer.padTokenId).toBe(0);
  });
});

describe('tokenizer: truncation', () => {
  it('truncates a long text, keeping [CLS] and [SEP], and says so', () => {
    const out = tokenizer.encode('the quick brown fox jumps over the dog', undefined, { maxLength: 6 });
    expect(out.inputIds).toEqual(ids('[CLS] the quick brown fox [SEP]'));
    expect(out.tokenTypeIds).toEqual([0, 0, 0, 0, 0, 0]);
    expect(out.attentionMask).toEqual([1, 1, 1, 1, 1, 1]);
    expect(out.truncated).toBe(true);
    expect(out.fullLength).toBe(10);
  });

  it('does not report truncation at exactly maxLength', () => {
    const out = tokenizer.encode('the quick brown fox', undefined, { maxLength: 6 });
    expect(out.truncated).toBe(false);
    expect(out.inputIds.length).toBe(6);
  });

  it('truncates the default maxLength given at construction (the model positions)', async () => {
    const short = await createTokenizer(JSON.parse(TOKENIZER_JSON), JSON.parse(TOKENIZER_CONFIG), {
      maxLength: 4,
    });
    const out = short.encode('hello world hello world');
    expect(out.inputIds).toEqual(ids('[CLS] hello world [SEP]'));
    expect(out.truncated).toBe(true);
  });

  it('truncates a pair longest first, as Hugging Face tokenizers do', () => {
    // 7 + 2 text tokens, budget 8 - 3 = 5: the short text (2) is kept, the long one gets 3.
    const out = tokenizer.encode('the quick brown fox jumps over the', 'the dog', { maxLength: 8 });
    expect(out.inputIds).toEqual(ids('[CLS] the quick brown [SEP] the dog [SEP]'));
    expect(out.tokenTypeIds).toEqual([0, 0, 0, 0, 0, 1, 1, 1]);
    expect(out.truncated).toBe(true);
    // Both long: split the budget, the first text gets the smaller half when they tie.
    const both = tokenizer.encode('the quick brown fox', 'jumps over the dog', { maxLength: 8 });
    expect(both.inputIds).toEqual(ids('[CLS] the quick [SEP] jumps over the [SEP]'));
  });

  it('splits budgets like tokenizers-rs LongestFirst', () => {
    expect(longestFirstLengths(3, 4, 10)).toEqual([3, 4]);
    expect(longestFirstLengths(2, 9, 6)).toEqual([2, 4]);
    expect(longestFirstLengths(9, 2, 6)).toEqual([4, 2]);
    expect(longestFirstLengths(5, 5, 5)).toEqual([2, 3]);
    expect(longestFirstLengths(6, 5, 5)).toEqual([3, 2]);
    expect(longestFirstLengths(3, 3, 6)).toEqual([3, 3]);
  });

  it('rejects a maxLength that leaves no room for text', () => {
    expectInvalidInput(() => tokenizer.encode('hello', undefined, { maxLength: 2 }), /no room/);
    expectInvalidInput(() => tokenizer.encode('hello', undefined, { maxLength: 0 }), /maxLength/);
  });
});

describe('tokenizer: ALBERT SentencePiece (Unigram)', () => {
  // A hand-written ALBERT-style tokenizer.json: lowercase + strip accents, Metaspace, Unigram scores.
  const UNIGRAM = join(__dirname, '..', 'fixtures', 'loading', 'unigram');

  it('picks the most probable segmentation (Viterbi over the piece scores)', async () => {
    const albert = await createTokenizer(
      readFileSync(join(UNIGRAM, 'tokenizer.json'), 'utf8'),
      readFileSync(join(UNIGRAM, 'tokenizer_config.json'), 'utf8'),
    );
    // '▁cats': ▁cat + s scores -2 - 3 = -5, better than ▁ca + ts (-8). '▁sat.' → ▁sat + '.'.
    const out = albert.encode('The  cats sat.');
    expect(albert.tokens(out.inputIds)).toEqual(['[CLS]', '▁the', '▁cat', 's', '▁sat', '.', '[SEP]']);
    expect(out.inputIds).toEqual([2, 6, 7, 8, 11, 18, 3]);
    // Accents are stripped: Café → ▁cafe (one piece, -3, beats ▁ca + f + e).
    const pair = albert.encode('the cats', 'Café');
    expect(pair.inputIds).toEqual([2, 6, 7, 8, 3, 12, 3]);
    expect(pair.tokenTypeIds).toEqual([0, 0, 0, 0, 0, 1, 1]);
    expect(albert.padTokenId).toBe(0);
  });
});

describe('tokenizer: bad input', () => {
  it('rejects empty and whitespace-only text', () => {
    expectInvalidInput(() => tokenizer.encode(''), /empty/);
    expectInvalidInput(() => tokenizer.encode(' \n\t '), /empty/);
    expectInvalidInput(() => tokenizer.encode('hello', '  '), /second text is empty/);
    expectInvalidInput(() => tokenizer.encode(42 as unknown as string), /string/);
  });

  it('rejects text that normalizes to nothing', () => {
    // Control characters are removed by clean_text.
    expectInvalidInput(() => tokenizer.encode('\u0000\u0001'), /no tokens/);
  });

  it('rejects a tokenizer.json that is not JSON', async () => {
    let caught: unknown;
    try {
      await createTokenizer('{"model": ');
    } catch (error) {
      caught = error;
    }
    expect(isPonderError(caught, 'invalid-config')).toBe(true);
  });
});
