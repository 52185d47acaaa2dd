import { describe, expect, it } from 'vitest';
import { exitHash, exitUniform, mix32 } from '../../src/exit/prng';

describe('exit PRNG (counter-based hash)', () => {
  it('matches vectors computed by an independent Python implementation (for the WGSL port)', () => {
    // python: mix = murmur3 fmix32; h = mix(seed ^ 0x6a09e667); h = mix(h ^ ex); h = mix(h + layer * 0x9e3779b9)
    const vectors: [number, number, number, number, number][] = [
      [0, 0, 1, 0x76ac3290, 0.46356499195098877],
      [0, 0, 2, 0x144308ef, 0.0791478157043457],
      [0, 1, 1, 0x089122e9, 0.03346455097198486],
      [1, 0, 1, 0xe9823507, 0.9121430516242981],
      [42, 7, 12, 0xbdc91d20, 0.741349995136261],
      [4294967295, 123456, 3, 0xf227ac5d, 0.9459178447723389],
    ];
    for (const [seed, ex, layer, hash, u] of vectors) {
      expect(exitHash(seed, ex, layer)).toBe(hash);
      expect(exitUniform(seed, ex, layer)).toBe(u);
    }
  });

  it('is a bijection-based mix with u32 output', () => {
    expect(mix32(0)).toBe(0);
    const seen = new Set<number>();
    for (let i = 0; i < 10000; i++) {
      const h = mix32(i);
      expect(h >>> 0).toBe(h);
      seen.add(h);
    }
    expect(seen.size).toBe(10000);
  });

  it('gives uniform 24-bit draws in [0, 1), exact in f32', () => {
    const bins = Array(16).fill(0) as number[];
    const N = 64000;
    let sum = 0;
    let bad = 0;
    for (let i = 0; i < N; i++) {
      const u = exitUniform(7, i >> 4, 1 + (i & 15));
      if (!(u >= 0 && u < 1) || Math.fround(u) !== u) bad++;
      sum += u;
      bins[Math.floor(u * 16)]!++;
    }
    const expected = N / 16;
    const chi2 = bins.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    console.log(`exitUniform: mean ${(sum / N).toFixed(4)}, chi² over 16 bins ${chi2.toFixed(1)} (15 dof)`);
    expect(bad).toBe(0);
    expect(Math.abs(sum / N - 0.5)).toBeLessThan(0.01);
    expect(chi2).toBeLessThan(37.7); // p = 0.001 critical value for 15 degrees of freedom
  });
});
