/**
 * The ONNX export computes the same network: each golden fixture (random-weight ALBERT and BERT
 * checkpoints with PyTorch's logits, tests/fixtures/golden/) is exported, run with
 * onnxruntime-web's wasm backend in Node, and its logits compared with PyTorch's.
 * Bound: max|ort − torch| / max|torch| ≤ 1e-4 (f32 throughout; seen: ≤ 2e-6).
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { parseCheckpoint } from '../../src/loading';
import { exportOnnx, type ExportOptions } from './export';

const BOUND = 1e-4;
const FIXTURES = ['albert-odd', 'albert-groups', 'bert-odd', 'bert-regression'];

interface GoldenBatch {
  batch: number;
  seqLen: number;
  inputIds: number[][];
  tokenTypeIds: number[][];
  attentionMask: number[][];
  logits: number[][];
}

function load(name: string) {
  const dir = `tests/fixtures/golden/${name}/`;
  const model = parseCheckpoint(
    readFileSync(dir + 'config.json', 'utf8'),
    new Uint8Array(readFileSync(dir + 'model.safetensors')),
  );
  const golden = JSON.parse(readFileSync(dir + 'golden.json', 'utf8')) as { batches: GoldenBatch[] };
  return { model, golden };
}

const int64 = (rows: number[][], dims: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), dims);

// The primitives variants run unoptimized, so that ORT's fusions (which would rebuild LayerNorm) do
// not hide a mistake in the graph as written.
const variants: [string, ExportOptions, 'all' | 'disabled'][] = [
  ['LayerNormalization, opset 17', {}, 'all'],
  ['LayerNorm primitives, opset 15, unoptimized', { layerNorm: 'primitives' }, 'disabled'],
  ['LayerNorm primitives, opset 18, unoptimized', { layerNorm: 'primitives', opset: 18 }, 'disabled'],
];

describe('ONNX export vs PyTorch goldens (onnxruntime-web wasm)', () => {
  for (const name of FIXTURES) {
    for (const [what, options, level] of variants) {
      it(`${name}: ${what}`, async () => {
        const { model, golden } = load(name);
        const session = await ort.InferenceSession.create(exportOnnx(model, options), {
          executionProviders: ['wasm'],
          graphOptimizationLevel: level,
          logSeverityLevel: 3,
        });
        expect([...session.inputNames].sort()).toEqual(['attention_mask', 'input_ids', 'token_type_ids']);
        let worst = 0;
        // One session for every batch: batch and sequence axes are dynamic.
        for (const b of golden.batches) {
          const dims = [b.batch, b.seqLen];
          const out = await session.run({
            input_ids: int64(b.inputIds, dims),
            attention_mask: int64(b.attentionMask, dims),
            token_type_ids: int64(b.tokenTypeIds, dims),
          });
          const logits = out.logits!;
          expect(logits.dims).toEqual([b.batch, model.config.numLabels]);
          const got = logits.data as Float32Array;
          const want = b.logits.flat();
          const scale = Math.max(...want.map(Math.abs));
          for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / scale);
        }
        console.log(`${name} (${what}): largest relative difference vs PyTorch ${worst.toExponential(2)}`);
        expect(worst).toBeLessThanOrEqual(BOUND);
        await session.release();
      });
    }
  }

  it('refuses a checkpoint without a classifier, and LayerNormalization below opset 17', () => {
    const { model } = load('bert-odd');
    expect(() => exportOnnx(model, { opset: 16 })).toThrow(/opset/);
    const weights = { ...model.weights };
    delete weights.classifier;
    expect(() => exportOnnx({ ...model, weights })).toThrow(/classifier/);
  });
});
