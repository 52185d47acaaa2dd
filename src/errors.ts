/**
 * Every failure that ponder-web reports is a `PonderError` with a machine-readable `code`, so that
 * callers (and the <ponder-classifier> element) can react to the kind of failure without parsing text.
 */
export type PonderErrorCode =
  | 'no-webgpu' // navigator.gpu is missing (browser without WebGPU, or not a secure context)
  | 'no-adapter' // navigator.gpu exists but no adapter was returned
  | 'device-lost' // the GPU device was lost (driver reset, tab in background too long, dispose)
  | 'gpu-error' // a WebGPU validation or out-of-memory error
  | 'invalid-safetensors' // the weights file is truncated, malformed or inconsistent
  | 'missing-tensor' // a weight the architecture needs is absent
  | 'shape-mismatch' // a weight has the wrong shape for the config
  | 'unsupported-config' // an architecture, activation or config value we do not implement
  | 'invalid-config' // config.json is missing fields or is not JSON
  | 'fetch-failed' // a model file could not be downloaded
  | 'invalid-input' // empty text, bad token ids, wrong batch shape
  | 'unsupported-criterion' // an exit criterion the model has no head for, or one we do not know
  | 'disposed'; // the classifier was used after dispose()

export class PonderError extends Error {
  readonly code: PonderErrorCode;

  constructor(code: PonderErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PonderError';
    this.code = code;
  }
}

export function isPonderError(value: unknown, code?: PonderErrorCode): value is PonderError {
  return value instanceof PonderError && (code === undefined || value.code === code);
}
