/**
 * Plain CPU implementations of every operation the kernels perform, written for clarity and used
 * only by tests (the llm.c way). Each function's semantics is the contract its WGSL kernel meets.
 * Accumulation is in f64 (JS numbers), results stored as f32.
 */
import type { Activation } from '../../src/model/types';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** erf to ~1e-15 via a series / continued fraction; exact enough to be the reference. */
export function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  if (a < 3) {
    // Maclaurin series: erf(x) = 2/sqrt(pi) Σ (-1)^n x^(2n+1) / (n! (2n+1))
    let term = a;
    let sum = a;
    for (let n = 1; n < 100; n++) {
      term *= (-a * a) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return sign * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (a + f);
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
  return sign * (1 - erfc);
}

export function activate(x: number, activation: Activation): number {
  switch (activation) {
    case 'none':
      return x;
    case 'relu':
      return x > 0 ? x : 0;
    case 'tanh':
      return Math.tanh(x);
    case 'gelu': // exact GELU (PyTorch's default, Hugging Face "gelu")
      return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'gelu_new': // tanh approximation (Hugging Face "gelu_new", ALBERT's default)
      return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
  }
}

/**
 * y[m, n] = act(Σ_k x[m * inputRowStride + k] · w[n, k] + bias[n]), w row-major [N, K] (nn.Linear layout).
 */
export function linear(
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  M: number,
  N: number,
  K: number,
  activation: Activation = 'none',
  inputRowStride = K,
): Float32Array {
  const y = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      const xo = m * inputRowStride;
      const wo = n * K;
      for (let k = 0; k < K; k++) acc += x[xo + k]! * weight[wo + k]!;
      y[m * N + n] = activate(acc + bias[n]!, activation);
    }
  }
  return y;
}

/** out[r] = LayerNorm(a[r] + b[r]) · gamma + beta over rows of width `width` (biased variance, as PyTorch). */
export function addLayerNorm(
  a: Float32Array,
  b: Float32Array | null,
  gamma: Float32Array,
  beta: Float32Array,
  rows: number,
  width: number,
  eps: number,
): Float32Array {
  const out = new Float32Array(rows * width);
  const v = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < width; i++) {
      v[i] = a[r * width + i]! + (b ? b[r * width + i]! : 0);
      mean += v[i]!;
    }
    mean /= width;
    let variance = 0;
    for (let i = 0; i < width; i++) variance += (v[i]! - mean) ** 2;
    variance /= width;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < width; i++) out[r * width + i] = (v[i]! - mean) * inv * gamma[i]! + beta[i]!;
  }
  return out;
}

/**
 * Embedding gather + LayerNorm: row r = b·seqLen + t takes word[ids[r]] + position[t] + tokenType[types[r]].
 */
export function embed(
  ids: ArrayLike<number>,
  types: ArrayLike<number>,
  word: Float32Array,
  position: Float32Array,
  tokenType: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  rows: number,
  seqLen: number,
  width: number,
  eps: number,
): Float32Array {
  const sum = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    const t = r % seqLen;
    for (let i = 0; i < width; i++) {
      sum[r * width + i] =
        word[ids[r]! * width + i]! + position[t * width + i]! + tokenType[types[r]! * width + i]!;
    }
  }
  return addLayerNorm(sum, null, gamma, beta, rows, width, eps);
}

/**
 * Multi-head self-attention over a packed qkv buffer [B·T, 3H] (Q | K | V, heads contiguous within
 * each), masking keys whose mask is 0. Returns the context [B·T, H]. A query whose keys are all
 * masked gets zeros.
 */
export function attention(
  qkv: Float32Array,
  mask: ArrayLike<number>,
  batch: number,
  seqLen: number,
  heads: number,
  headDim: number,
): Float32Array {
  const H = heads * headDim;
  const out = new Float32Array(batch * seqLen * H);
  const scale = 1 / Math.sqrt(headDim);
  const scores = new Float64Array(seqLen);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < seqLen; i++) {
        const q = (b * seqLen + i) * 3 * H + h * headDim;
        let max = -Infinity;
        for (let j = 0; j < seqLen; j++) {
          if (!mask[b * seqLen + j]) {
            scores[j] = -Infinity;
            continue;
          }
          const k = (b * seqLen + j) * 3 * H + H + h * headDim;
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += qkv[q + d]! * qkv[k + d]!;
          scores[j] = dot * scale;
          if (scores[j]! > max) max = scores[j]!;
        }
        let denom = 0;
        for (let j = 0; j < seqLen; j++) {
          scores[j] = scores[j] === -Infinity ? 0 : Math.exp(scores[j]! - max);
          denom += scores[j]!;
        }
        const o = (b * seqLen + i) * H + h * headDim;
        for (let d = 0; d < headDim; d++) {
          let acc = 0;
          for (let j = 0; j < seqLen; j++) {
            if (scores[j] === 0) continue;
            acc += scores[j]! * qkv[(b * seqLen + j) * 3 * H + 2 * H + h * headDim + d]!;
          }
          out[o + d] = denom > 0 ? acc / denom : 0;
        }
      }
    }
  }
  return out;
}

/** Largest absolute difference and largest difference relative to the reference's scale. */
export function compare(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
): { maxAbs: number; maxRel: number } {
  if (actual.length !== expected.length) {
    throw new Error(`length mismatch: ${actual.length} vs ${expected.length}`);
  }
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= maxAbs)) maxAbs = Number.isNaN(d) ? Infinity : d;
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return { maxAbs, maxRel: maxAbs / Math.max(scale, 1e-12) };
}
