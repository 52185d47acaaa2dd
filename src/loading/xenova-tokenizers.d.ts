// The one module of @xenova/transformers we load. Its package types describe the whole library
// (and the pipeline entry point); this declares just the constructors tokenizer.ts uses.
declare module '@xenova/transformers/src/tokenizers.js' {
  export const AutoTokenizer: { TOKENIZER_CLASS_MAPPING: Record<string, unknown> };
  export const PreTrainedTokenizer: unknown;
}
