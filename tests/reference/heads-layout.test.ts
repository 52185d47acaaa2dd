/**
 * The heads launcher's per-depth dispatches (shaders/heads.ts) without a GPU: how many there are
 * (plan.ts sizes its indirect arguments with headsDispatchCount and throws on a mismatch), and the
 * uniform words that fold λ's output layer into its last hidden layer's stage (heads.wgsl `Params`).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { LinearWeights } from '../../src/model/types';
import {
  HeadsKernel,
  headsDispatchCount,
  lambdaFolded,
  lambdaHiddenFloats,
  lambdaLogitParts,
  packHeads,
  type HeadsShape,
} from '../../shaders/heads';

const PARAM_WORDS = 12;
const STAGE_WORDS = 8;

/** Just enough of a GPUDevice for prepare(): records each uniform's words by its label. */
function fakeDevice() {
  const uniforms = new Map<string, Uint32Array>();
  const device = {
    createShaderModule: () => ({}),
    createComputePipelineAsync: async () => ({ getBindGroupLayout: () => ({}) }),
    createBuffer: (d: { label: string; size: number }) => ({ ...d }),
    createBindGroup: () => ({}),
    queue: {
      writeBuffer: (buffer: { label: string }, _offset: number, data: Uint32Array) => {
        uniforms.set(buffer.label, new Uint32Array(data));
      },
    },
  };
  return { device: device as unknown as GPUDevice, uniforms };
}

const linear = (n: number, k: number): LinearWeights => ({
  weight: { shape: [n, k], data: new Float32Array(n * k) },
  bias: { shape: [n], data: new Float32Array(n) },
});

beforeAll(() => {
  (globalThis as { GPUBufferUsage?: unknown }).GPUBufferUsage ??= { UNIFORM: 0x40, COPY_DST: 0x8 };
});

describe('heads dispatches per depth', () => {
  const buffers = Object.fromEntries(
    ['weights', 'biases', 'hidden', 'pooled', 'logits', 'scratch', 'counters'].map((k) => [k, {}]),
  ) as unknown as Parameters<HeadsKernel['prepare']>[0];

  it('prepare() returns headsDispatchCount dispatches, λ output layer folded when λ has a hidden layer', async () => {
    const { device } = fakeDevice();
    const kernel = await HeadsKernel.create(device, 'f32');
    const H = 12;
    for (const hiddenLayers of [-1, 0, 1, 2, 3, 4]) {
      const lambda =
        hiddenLayers < 0
          ? undefined
          : [
              ...Array.from({ length: hiddenLayers }, (_, i) => linear(20, i ? 20 : 2 * H)),
              linear(1, hiddenLayers ? 20 : 2 * H),
            ];
      const packed = packHeads({
        pooler: linear(H, H),
        classifier: linear(3, H),
        ...(lambda ? { lambda } : {}),
      });
      const shape: HeadsShape = {
        batch: 2,
        rowStride: 5 * H,
        pooledOffset: 0,
        logitsOffset: 0,
        ...(lambda ? { lambda: { offset: 100, hiddenOffset: 200, prevSlots: 0 } } : {}),
      };
      const dispatches = kernel.prepare(buffers, packed.layout, shape);
      const onZ = { classifier: true, perLayerHeads: false };
      expect(dispatches.length, `${hiddenLayers} hidden layers`).toBe(
        headsDispatchCount(onZ, lambda?.length ?? 0),
      );
      // The pooler folded into the last add+LayerNorm: one dispatch fewer, the same stages on z.
      const folded = kernel.prepare(buffers, packed.layout, { ...shape, poolerFolded: true });
      expect(folded.length).toBe(headsDispatchCount(onZ, lambda?.length ?? 0, true));
      expect(folded.map((d) => d.label)).toEqual(dispatches.slice(1).map((d) => d.label));
      expect(lambdaFolded(packed.layout)).toBe(hiddenLayers > 0);
      // 20 outputs: 3 row blocks of 8, so 3 partial sums per slot when folded.
      expect(lambdaLogitParts(packed.layout)).toBe(hiddenLayers > 0 ? 3 : 1);
      expect(lambdaHiddenFloats(packed.layout)).toBe(Math.min(2, Math.max(0, hiddenLayers - 1)) * 20);
    }
    const none = { classifier: false, perLayerHeads: false };
    const classifier = { classifier: true, perLayerHeads: false };
    expect(headsDispatchCount(none, 0)).toBe(1);
    expect(headsDispatchCount(classifier, 0)).toBe(2);
    expect(headsDispatchCount({ classifier: true, perLayerHeads: true }, 0)).toBe(2);
    // Pooler and classifier both folded (the classifier fold leaves nothing on z): no dispatch.
    expect(headsDispatchCount(none, 0, true)).toBe(0);
    expect(headsDispatchCount(classifier, 0, true)).toBe(1);
    // Nothing on z with the pooler and classifier folded: prepare returns no dispatch at all.
    const plain = packHeads({ pooler: linear(H, H), classifier: linear(3, H) });
    const bare = { batch: 1, rowStride: 5 * H, pooledOffset: 0, poolerFolded: true };
    expect(kernel.prepare(buffers, plain.layout, bare)).toEqual([]);
  });

  it('the shipped PALBERT heads (H 512, λ on [z ; z_prev], 3 × 1024 hidden): 4 dispatches, the last folded', async () => {
    const { device, uniforms } = fakeDevice();
    const kernel = await HeadsKernel.create(device, 'f16');
    const H = 512;
    const lambda = [linear(1024, 2 * H), linear(1024, 1024), linear(1024, 1024), linear(1, 1024)];
    const { layout } = packHeads({ pooler: linear(H, H), classifier: linear(2, H), lambda });
    const batch = 3;
    const dispatches = kernel.prepare(buffers, layout, {
      batch,
      rowStride: 128 * H,
      pooledOffset: 0,
      logitsOffset: 0,
      lambda: { offset: 5000, hiddenOffset: 1000, prevSlots: 7, prevOffset: 0 },
    });
    expect(dispatches.map((d) => d.label)).toEqual([
      `heads.pooler-${batch}x${H}`,
      `heads.z-${batch}x${H}`,
      `heads.lambda1-${batch}x${H}`,
      `heads.lambda2-${batch}x${H}`,
    ]);
    expect(lambdaLogitParts(layout)).toBe(128);
    for (const d of dispatches) {
      const words = uniforms.get(d.label)!;
      const folds = d.label.startsWith('heads.lambda2');
      // foldStage, foldWeight, foldBias, foldOffset
      expect([...words.subarray(8, 12)], d.label).toEqual(
        folds ? [1, layout.lambda![3]!.weight, layout.lambda![3]!.bias, 5000] : [0, 0, 0, 0],
      );
      if (folds) {
        const stage = words.subarray(PARAM_WORDS, PARAM_WORDS + STAGE_WORDS);
        expect(stage[2]).toBe(1024); // n of λ layer 2
        expect(stage[4]).toBe(3); // dst none: the tanh outputs only feed the partial sums
        expect(stage[6]).toBe(1); // tanh
        expect(d.workgroups).toEqual([128, 1, batch]);
      }
    }
  });
});
