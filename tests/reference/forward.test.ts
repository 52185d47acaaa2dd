/**
 * The CPU reference forward against PyTorch: every layer's logits (PALBERT's shared head) of every
 * golden batch, for ALBERT and BERT, odd shapes, batch > 1 with right padding and both token types.
 * Goldens: tests/fixtures/golden/<name>/, written by training/make_goldens.py (torch, fp32, CPU).
 *
 * Tolerance: max|ours − torch| / max|torch| ≤ 1e-4 per layer (over the batch and the classes). The
 * reference accumulates in f64 and PyTorch in f32, so the difference seen is PyTorch's rounding, ~1e-6.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCheckpoint } from '../../src/loading';
import type { EncoderModel } from '../../src/model/types';
import { referenceForward } from './forward';
import { compare } from './ops';

const GOLDEN_DIR = join(__dirname, '..', 'fixtures', 'golden');
const EXPECTED_FIXTURES = ['albert-groups', 'albert-odd', 'bert-odd', 'bert-regression'];
const TOLERANCE = 1e-4;
/** What the loader must read from each config.json (transformers 5 omits default id2label). */
const EXPECTED_HEADS: Record<string, { labels: string[]; problemType: string }> = {
  'albert-groups': { labels: ['LABEL_0', 'LABEL_1'], problemType: 'single_label_classification' },
  'albert-odd': { labels: ['negative', 'neutral', 'positive'], problemType: 'single_label_classification' },
  'bert-odd': { labels: ['LABEL_0', 'LABEL_1'], problemType: 'single_label_classification' },
  'bert-regression': { labels: ['LABEL_0'], problemType: 'regression' },
};

interface GoldenBatch {
  batch: number;
  seqLen: number;
  lengths: number[];
  inputIds: number[][];
  tokenTypeIds: number[][];
  attentionMask: number[][];
  /** [numLayers][batch][numLabels] */
  perLayerLogits: number[][][];
  /** [batch][numLabels], model(...).logits */
  logits: number[][];
  /** [numLayers][hiddenSize], pooled [CLS] of example 0 */
  perLayerPooledFirst: number[][];
}

interface Golden {
  fixture: string;
  architecture: 'albert' | 'bert';
  numLayers: number;
  numLabels: number;
  batches: GoldenBatch[];
}

function loadFixture(name: string): { model: EncoderModel; golden: Golden } {
  const dir = join(GOLDEN_DIR, name);
  // The real loader (src/loading), so these goldens also check the Hugging Face name mapping.
  const model = parseCheckpoint(
    readFileSync(join(dir, 'config.json'), 'utf8'),
    new Uint8Array(readFileSync(join(dir, 'model.safetensors'))),
  );
  const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Golden;
  return { model, golden };
}

const flat = (rows: number[][]): number[] => rows.flat();

describe('golden fixtures', () => {
  it('are all present', () => {
    const found = readdirSync(GOLDEN_DIR).sort();
    expect(found).toEqual(EXPECTED_FIXTURES);
  });
});

describe.each(EXPECTED_FIXTURES)('CPU reference forward vs PyTorch: %s', (name) => {
  const { model, golden } = loadFixture(name);

  it('fixture is consistent with its checkpoint', () => {
    expect(golden.architecture).toBe(model.config.architecture);
    expect(golden.numLayers).toBe(model.config.numHiddenLayers);
    expect(golden.numLabels).toBe(model.config.numLabels);
    expect(model.config.labels).toEqual(EXPECTED_HEADS[name]!.labels);
    expect(model.config.problemType).toBe(EXPECTED_HEADS[name]!.problemType);
    expect(golden.batches.some((b) => b.batch > 1 && b.lengths.some((n) => n < b.seqLen))).toBe(true);
    expect(golden.batches.some((b) => b.seqLen === model.config.maxPositionEmbeddings)).toBe(true);
    expect(golden.batches.some((b) => b.tokenTypeIds.flat().includes(1))).toBe(true);
    for (const b of golden.batches) {
      expect(b.perLayerLogits).toHaveLength(golden.numLayers);
      // PyTorch's own forward must equal its last layer through the shared head.
      expect(compare(flat(b.perLayerLogits.at(-1)!), flat(b.logits)).maxAbs).toBeLessThanOrEqual(1e-6);
    }
  });

  it.each(golden.batches.map((b, i) => [i, b] as const))(
    `batch %i: every layer's logits within ${TOLERANCE} relative`,
    (index, b) => {
      const result = referenceForward(model, {
        inputIds: flat(b.inputIds),
        tokenTypeIds: flat(b.tokenTypeIds),
        attentionMask: flat(b.attentionMask),
        batch: b.batch,
        seqLen: b.seqLen,
      });
      expect(result.perLayerLogits).toHaveLength(golden.numLayers);
      const H = model.config.hiddenSize;
      let worstLogits = { layer: -1, maxAbs: 0, maxRel: 0 };
      let worstPooled = { layer: -1, maxAbs: 0, maxRel: 0 };
      const failures: string[] = [];
      for (let layer = 0; layer < golden.numLayers; layer++) {
        const logits = compare(result.perLayerLogits[layer]!, flat(b.perLayerLogits[layer]!));
        const pooled = compare(result.perLayerPooled[layer]!.subarray(0, H), b.perLayerPooledFirst[layer]!);
        if (logits.maxRel > worstLogits.maxRel || !(logits.maxRel <= TOLERANCE))
          worstLogits = { layer, ...logits };
        if (pooled.maxRel > worstPooled.maxRel || !(pooled.maxRel <= TOLERANCE))
          worstPooled = { layer, ...pooled };
        if (!(logits.maxRel <= TOLERANCE)) failures.push(`layer ${layer + 1} logits rel ${logits.maxRel}`);
        if (!(pooled.maxRel <= TOLERANCE)) failures.push(`layer ${layer + 1} pooled rel ${pooled.maxRel}`);
      }
      console.log(
        `${name} batch ${index} (B=${b.batch}, T=${b.seqLen}, lengths ${b.lengths.join('/')}): ` +
          `logits max rel ${worstLogits.maxRel.toExponential(2)} (abs ${worstLogits.maxAbs.toExponential(2)}, ` +
          `layer ${worstLogits.layer + 1}), pooled[0] max rel ${worstPooled.maxRel.toExponential(2)}`,
      );
      expect(failures).toEqual([]);
    },
  );
});
