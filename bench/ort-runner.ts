/**
 * onnxruntime-web as a suite Runner (bench/suite.ts), for the bench page and Deno. The module is
 * passed in, so each caller picks its build ('onnxruntime-web/webgpu' or '/wasm').
 */
import type * as Ort from 'onnxruntime-web';
import type { Runner } from './suite';

export async function ortRunner(
  ort: typeof Ort,
  model: string | Uint8Array,
  ep: 'webgpu' | 'wasm',
  extraNotes: string[] = [],
): Promise<Runner> {
  const options: Ort.InferenceSession.SessionOptions = {
    executionProviders: [ep],
    graphOptimizationLevel: 'all',
  };
  const session =
    typeof model === 'string'
      ? await ort.InferenceSession.create(model, options)
      : await ort.InferenceSession.create(model, options);
  const tensor = (rows: number[][]) =>
    new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0]!.length]);
  return {
    notes: [
      `onnxruntime-web ${ort.env.versions.web ?? '?'}, EP ${ep}, graph optimization 'all'`,
      `wasm threads: ${ort.env.wasm.numThreads ?? '?'}`,
      ...extraNotes,
    ],
    async run(ids) {
      const out = await session.run({
        input_ids: tensor(ids),
        attention_mask: tensor(ids.map((r) => r.map(() => 1))),
        token_type_ids: tensor(ids.map((r) => r.map(() => 0))),
      });
      const logits = out.logits!;
      const data = (await logits.getData()) as Float32Array;
      const C = logits.dims[1]!;
      return ids.map((_, b) => Array.from(data.subarray(b * C, (b + 1) * C)));
    },
    dispose: () => session.release(),
  };
}
