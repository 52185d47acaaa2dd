/**
 * The criterion uniform that the engine writes per call for the GPU exit kernel (shaders/exit.ts):
 * field layout as exit.wgsl's `Criterion` struct, thresholds as f32 (what criteria.ts's f32 mode
 * compares against).
 */
import { describe, expect, it } from 'vitest';
import { CRITERION_BYTES, encodeCriterion } from '../../shaders/exit';
import type { ExitCriterion } from '../../src/exit';

function decode(buffer: ArrayBuffer) {
  const v = new DataView(buffer);
  return {
    kind: v.getUint32(0, true),
    useHeads: v.getUint32(4, true),
    threshold: v.getFloat32(8, true),
    param: v.getUint32(12, true),
    exampleBase: v.getUint32(16, true),
    realBatch: v.getUint32(20, true),
    compact: v.getUint32(24, true),
  };
}

describe('encodeCriterion', () => {
  it('lays out every criterion as exit.wgsl reads it', () => {
    const cases: [ExitCriterion, Partial<ReturnType<typeof decode>>][] = [
      [{ kind: 'none' }, { kind: 0, threshold: 0, param: 0 }],
      [
        { kind: 'palbert', q: 0.3 },
        { kind: 1, threshold: Math.fround(0.3) },
      ],
      [
        { kind: 'pondernet-sample', seed: 0xfffffffe },
        { kind: 2, param: 0xfffffffe },
      ],
      [
        { kind: 'pabee', patience: 6 },
        { kind: 3, param: 6, threshold: Math.fround(0.1) },
      ],
      [
        { kind: 'pabee', patience: 2 ** 40, regressionThreshold: 0.25 },
        { param: 0xffffffff, threshold: 0.25 },
      ],
      [
        { kind: 'max-prob', threshold: 0.9 },
        { kind: 4, threshold: Math.fround(0.9) },
      ],
      [
        { kind: 'entropy', threshold: 1e300 },
        { kind: 5, threshold: Infinity },
      ],
      [
        { kind: 'gate', threshold: 0.5 },
        { kind: 6, threshold: 0.5 },
      ],
      [
        { kind: 'fixed', layer: 3 },
        { kind: 7, param: 3 },
      ],
    ];
    for (const [criterion, expected] of cases) {
      const buffer = encodeCriterion(criterion, true, 1234, 7);
      expect(buffer.byteLength).toBe(CRITERION_BYTES);
      const d = decode(buffer);
      expect(d, JSON.stringify(criterion)).toMatchObject({
        ...expected,
        useHeads: 1,
        exampleBase: 1234,
        realBatch: 7,
      });
    }
    expect(decode(encodeCriterion({ kind: 'none' }, false, 0, 1)).useHeads).toBe(0);
    expect(decode(encodeCriterion({ kind: 'none' }, false, 0, 1, false)).compact).toBe(0);
  });
});
