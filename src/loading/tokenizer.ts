/**
 * The tokenizer, built from the tokenizer.json (+ tokenizer_config.json) we fetched ourselves, through
 * @xenova/transformers' tokenizer classes — the same class AutoTokenizer would pick, constructed
 * directly so that the library makes no network requests of its own.
 *
 * Truncation is done here rather than by transformers.js, whose truncation cuts the final [SEP]:
 * like Hugging Face's tokenizers we keep the special tokens and shorten the text(s), longest first.
 */
import { PonderError } from '../errors';

export interface EncodedInput {
  inputIds: number[];
  tokenTypeIds: number[];
  attentionMask: number[];
  /** True when the text (or pair) was longer than maxLength and tokens were dropped. */
  truncated: boolean;
  /** Length in tokens, special tokens included, before truncation. */
  fullLength: number;
}

export interface EncodeOptions {
  /** Maximum length in tokens, special tokens included (default: the tokenizer's maxLength). */
  maxLength?: number;
}

export interface TextTokenizer {
  /** The default maxLength of `encode`. */
  readonly maxLength: number;
  readonly padTokenId: number;
  /** Encodes a text, or a pair of texts (e.g. MRPC's two sentences) as one sequence. */
  encode(text: string, textPair?: string, options?: EncodeOptions): EncodedInput;
  /** Token strings of the ids (for debugging and display). */
  tokens(ids: number[]): string[];
}

export interface TokenizerOptions {
  /**
   * Default maximum length. Pass the model's max_position_embeddings; otherwise the tokenizer
   * config's model_max_length when it is a real limit, else 512.
   */
  maxLength?: number;
}

/** The parts of a transformers.js PreTrainedTokenizer used here (internal API of 2.17). */
interface XenovaTokenizer {
  _encode_text(text: string | null): string[] | null;
  post_processor:
    | null
    | ((
        tokens: string[],
        pair: string[] | null,
        options: { add_special_tokens: boolean },
      ) => { tokens: string[]; token_type_ids?: number[] });
  model: { convert_tokens_to_ids(tokens: string[]): number[]; vocab: string[] };
  pad_token_id?: number;
  model_max_length?: number;
}

type TokenizerClass = new (json: unknown, config: unknown) => XenovaTokenizer;

function parseJson(input: unknown, file: string): Record<string, unknown> {
  let value = input;
  if (input instanceof ArrayBuffer || input instanceof Uint8Array) value = new TextDecoder().decode(input);
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch (cause) {
      throw new PonderError('invalid-config', `${file} is not valid JSON`, { cause });
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PonderError('invalid-config', `${file} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * How many tokens of each text to keep so that they fit in `budget`: Hugging Face tokenizers'
 * longest_first rule (the shorter text is kept whole when it fits in half the budget).
 */
export function longestFirstLengths(n1: number, n2: number, budget: number): [number, number] {
  if (n1 + n2 <= budget) return [n1, n2];
  const shortIsFirst = n1 <= n2;
  const short = Math.min(n1, n2);
  let keepShort: number;
  let keepLong: number;
  if (2 * short <= budget) {
    keepShort = short;
    keepLong = budget - short;
  } else {
    keepShort = Math.floor(budget / 2);
    keepLong = budget - keepShort;
  }
  return shortIsFirst ? [keepShort, keepLong] : [keepLong, keepShort];
}

class XenovaTextTokenizer implements TextTokenizer {
  readonly maxLength: number;
  readonly padTokenId: number;

  constructor(
    private readonly inner: XenovaTokenizer,
    maxLength: number,
  ) {
    this.maxLength = maxLength;
    this.padTokenId = inner.pad_token_id ?? 0;
  }

  private words(text: unknown, which: string): string[] {
    if (typeof text !== 'string') throw new PonderError('invalid-input', `${which} must be a string`);
    if (text.trim() === '') throw new PonderError('invalid-input', `${which} is empty`);
    const tokens = this.inner._encode_text(text) ?? [];
    if (tokens.length === 0) {
      throw new PonderError('invalid-input', `${which} contains no tokens after normalization`);
    }
    return tokens;
  }

  private assemble(a: string[], b: string[] | null) {
    const processed = this.inner.post_processor
      ? this.inner.post_processor(a, b, { add_special_tokens: true })
      : { tokens: b ? [...a, ...b] : a };
    const ids = this.inner.model.convert_tokens_to_ids(processed.tokens);
    // Without a post-processor that assigns them, the second text is segment 1, as in BERT.
    const types = processed.token_type_ids ?? ids.map((_, i) => (b && i >= a.length ? 1 : 0));
    return { ids, types };
  }

  encode(text: string, textPair?: string, options: EncodeOptions = {}): EncodedInput {
    const maxLength = options.maxLength ?? this.maxLength;
    if (!Number.isSafeInteger(maxLength) || maxLength <= 0) {
      throw new PonderError('invalid-input', `maxLength must be a positive integer, got ${maxLength}`);
    }
    const pair = textPair !== undefined;
    const a = this.words(text, pair ? 'The first text' : 'The text');
    const b = pair ? this.words(textPair, 'The second text') : null;

    let { ids, types } = this.assemble(a, b);
    const fullLength = ids.length;
    const truncated = fullLength > maxLength;
    if (truncated) {
      const special = fullLength - a.length - (b?.length ?? 0);
      const budget = maxLength - special;
      if (budget < (pair ? 2 : 1)) {
        throw new PonderError(
          'invalid-input',
          `maxLength ${maxLength} leaves no room for text next to ${special} special tokens`,
        );
      }
      if (b) {
        const [k1, k2] = longestFirstLengths(a.length, b.length, budget);
        ({ ids, types } = this.assemble(a.slice(0, k1), b.slice(0, k2)));
      } else {
        ({ ids, types } = this.assemble(a.slice(0, budget), null));
      }
    }
    return {
      inputIds: ids,
      tokenTypeIds: types,
      attentionMask: ids.map(() => 1),
      truncated,
      fullLength,
    };
  }

  tokens(ids: number[]): string[] {
    return ids.map((id) => this.inner.model.vocab[id] ?? '<?>');
  }
}

/**
 * Builds a tokenizer from tokenizer.json and tokenizer_config.json (text, bytes or objects).
 * Errors: 'invalid-config' when the JSON is malformed or transformers.js cannot build it.
 */
export async function createTokenizer(
  tokenizerJson: unknown,
  tokenizerConfig?: unknown,
  options: TokenizerOptions = {},
): Promise<TextTokenizer> {
  const json = parseJson(tokenizerJson, 'tokenizer.json');
  const config = tokenizerConfig === undefined ? {} : parseJson(tokenizerConfig, 'tokenizer_config.json');
  // Loaded on demand: only the tokenizers module, not the pipelines, models or image code.
  const { AutoTokenizer, PreTrainedTokenizer } = await import('@xenova/transformers/src/tokenizers.js');

  const className =
    typeof config.tokenizer_class === 'string' ? config.tokenizer_class.replace(/Fast$/, '') : '';
  const cls = (AutoTokenizer.TOKENIZER_CLASS_MAPPING[className] ?? PreTrainedTokenizer) as TokenizerClass;
  let inner: XenovaTokenizer;
  try {
    inner = new cls(json, config);
  } catch (cause) {
    throw new PonderError('invalid-config', `tokenizer.json could not be loaded: ${String(cause)}`, {
      cause,
    });
  }
  if (typeof inner._encode_text !== 'function' || typeof inner.model?.convert_tokens_to_ids !== 'function') {
    throw new PonderError(
      'invalid-config',
      'this version of @xenova/transformers lacks the tokenizer API we use',
    );
  }

  const fromConfig = inner.model_max_length;
  const maxLength =
    options.maxLength ??
    (typeof fromConfig === 'number' && Number.isSafeInteger(fromConfig) && fromConfig > 0 && fromConfig <= 1e6
      ? fromConfig
      : 512);
  return new XenovaTextTokenizer(inner, maxLength);
}
