/**
 * The random draws of PonderNet's sampled exit. A counter-based hash rather than a sequential generator: the draw for
 * (seed, example, layer) is a pure function of those three numbers, so the GPU exit kernel can compute the draw of any
 * layer of any example of a batch on its own, with no generator state carried between layers or shared across
 * examples, and still produce exactly the CPU's value. Only u32 xor, shift and wrapping multiply are used, all of
 * which WGSL has.
 */

/** murmur3's 32-bit finalizer: a bijection on u32 that spreads every input bit over the whole word. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const SEED_SALT = 0x6a09e667; // keeps seed 0 from mapping to the fixed point mix32(0) = 0
const GOLDEN = 0x9e3779b9; // odd, so layer ↦ layer · GOLDEN is a bijection mod 2^32

/** The 32-bit hash behind {@link exitUniform}; exported so the WGSL port can be checked word for word. */
export function exitHash(seed: number, exampleIndex: number, layer: number): number {
  let h = mix32(seed ^ SEED_SALT);
  h = mix32(h ^ exampleIndex);
  h = mix32(h + Math.imul(layer, GOLDEN));
  return h;
}

/**
 * A uniform draw in [0, 1) for one layer (1-based) of one example. It has 24 bits, so the value is exact in f32 and
 * the comparison `u < λ` gives the same answer on the GPU as here for the same f32 λ.
 */
export function exitUniform(seed: number, exampleIndex: number, layer: number): number {
  return (exitHash(seed, exampleIndex, layer) >>> 8) / 16777216;
}
