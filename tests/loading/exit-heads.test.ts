/**
 * Exit heads in checkpoints (docs/checkpoint-format.md): config.json's `ponder` object and the
 * `ponder.*` tensors → EncoderConfig.exitHeads / EncoderWeights.exitHeads, and their bad inputs.
 * Checkpoints: the seeded random-weight fixtures of tests/fixtures/exit/random-model.ts.
 */
import { describe, expect, it } from 'vitest';
import { isPonderError } from '../../src/errors';
import { parseCheckpoint } from '../../src/loading/model';
import { EXIT_FIXTURES, makeExitCheckpoint } from '../fixtures/exit/random-model';
import { referenceExitHeads, referenceForward } from '../reference/forward';
import { writeSafetensors, type RawTensor } from './helpers';

function readTensors(bytes: Uint8Array): Record<string, RawTensor> {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const data = bytes.slice(8 + headerLength);
  const out: Record<string, RawTensor> = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    out[name] = {
      dtype: t.dtype,
      shape: t.shape,
      data: new Float32Array(data.buffer.slice(...t.data_offsets)),
    };
  }
  return out;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return isPonderError(e) ? `${e.code}: ${e.message}` : String(e);
  }
}

describe('exit heads in checkpoints', () => {
  it('maps the λ MLP, per-layer heads and gates of every fixture', () => {
    const albert = parseCheckpoint(...build('albert-exit'));
    const H = 32;
    expect(albert.config.exitHeads?.lambdaHead).toEqual({ input: 'cat', hiddenLayers: 2 });
    expect(albert.weights.exitHeads?.lambda?.map((l) => l.weight.shape)).toEqual([
      [2 * H, 2 * H],
      [2 * H, 2 * H],
      [1, 2 * H],
    ]);
    expect(albert.weights.exitHeads?.heads?.length).toBe(6);
    expect(albert.weights.exitHeads?.heads?.[5]?.weight.shape).toEqual([3, H]);
    // The last layer's gate is optional and absent here.
    expect(albert.weights.exitHeads?.gates?.length).toBe(5);
    expect(albert.weights.extra.size).toBe(0);

    const bert = parseCheckpoint(...build('bert-exit'));
    expect(bert.weights.exitHeads?.lambda?.map((l) => l.weight.shape)).toEqual([[1, 21]]);
    expect(bert.weights.exitHeads?.heads).toBeUndefined();
    expect(bert.weights.exitHeads?.gates?.length).toBe(5);
    const regression = parseCheckpoint(...build('bert-exit-regression'));
    expect(regression.config.problemType).toBe('regression');
    expect(regression.config.exitHeads?.defaultCriterion).toEqual({
      kind: 'pabee',
      patience: 1,
      regressionThreshold: 0.5,
    });
  });

  it('names a missing or misshapen ponder tensor', () => {
    const { config, safetensors } = makeExitCheckpoint(EXIT_FIXTURES['albert-exit']!);
    const tensors = readTensors(safetensors);
    const without = { ...tensors };
    delete without['ponder.gates.1.weight'];
    expect(codeOf(() => parseCheckpoint(config, writeSafetensors(without)))).toMatch(
      /^missing-tensor: .*'ponder.gates.1.weight'.*ponder object declares/,
    );
    const noHead = { ...tensors };
    delete noHead['ponder.heads.5.bias'];
    expect(codeOf(() => parseCheckpoint(config, writeSafetensors(noHead)))).toMatch(/ponder.heads.5.bias/);
    const wrong = {
      ...tensors,
      'ponder.lambda.2.weight': { dtype: 'F32', shape: [1, 32], data: new Float32Array(32) },
    };
    expect(codeOf(() => parseCheckpoint(config, writeSafetensors(wrong)))).toMatch(
      /^shape-mismatch: Tensor 'ponder.lambda.2.weight' has shape \[1, 32\], expected \[1, 64\]/,
    );
    // Gates on a regression model have no probabilities to read.
    const regression = makeExitCheckpoint(EXIT_FIXTURES['bert-exit-regression']!);
    const gated = { ...regression.config, ponder: { ...(regression.config.ponder as object), gates: true } };
    expect(codeOf(() => parseCheckpoint(gated, regression.safetensors))).toMatch(
      /^unsupported-config: .*gates/,
    );
  });

  it('CPU reference of the heads: λ in (0, 1), z_0 = 0 for the cat input, no gate at the last layer', () => {
    const model = parseCheckpoint(...build('albert-exit'));
    const input = {
      inputIds: [1, 5, 9, 2, 7, 0],
      tokenTypeIds: [0, 0, 1, 0, 0, 0],
      attentionMask: [1, 1, 1, 1, 1, 0],
      batch: 2,
      seqLen: 3,
    };
    const forward = referenceForward(model, input);
    const heads = referenceExitHeads(model, forward, 2);
    const lambdas = heads.lambdas!.flat();
    expect(lambdas.every((x) => x > 0 && x < 1)).toBe(true);
    expect(heads.gates![5]).toEqual([NaN, NaN]);
    expect(heads.gates![0]!.every((g) => g > 0 && g < 1)).toBe(true);
    // Layer 1's λ equals the MLP on [z_1 ; 0], computed here by hand.
    const mlp = model.weights.exitHeads!.lambda!;
    const H = model.config.hiddenSize;
    let u = [...forward.perLayerPooled[0]!.subarray(0, H), ...new Array<number>(H).fill(0)];
    mlp.forEach((l, i) => {
      const [out, inp] = l.weight.shape as [number, number];
      u = Array.from({ length: out }, (_, o) => {
        let s = l.bias.data[o]!;
        for (let k = 0; k < inp; k++) s += l.weight.data[o * inp + k]! * u[k]!;
        return i < mlp.length - 1 ? Math.tanh(s) : s;
      });
    });
    expect(Math.abs(1 / (1 + Math.exp(-u[0]!)) - heads.lambdas![0]![0]!)).toBeLessThan(1e-6);
  });
});

function build(name: string): [Record<string, unknown>, Uint8Array] {
  const { config, safetensors } = makeExitCheckpoint(EXIT_FIXTURES[name]!);
  return [config, safetensors];
}
