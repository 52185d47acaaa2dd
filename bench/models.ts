/**
 * Node side: puts every benchmarked model into the served cache folder as
 *   <cache>/models/<id>/config.json, model.safetensors, [tokenizer.json], onnx/model.onnx
 * (the Hub layout transformers.js expects), exporting the ONNX graph with bench/onnx/export.ts.
 * Sources: shipped models (public/models/*), the golden fixtures, and the seeded random ALBERT-base.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseCheckpoint } from '../src/loading';
import { describeBenchModel, type BenchModel } from './common';
import { exportOnnx } from './onnx/export';
import { ALBERT_BASE, randomAlbert } from './random-model';

export const CACHE = 'node_modules/.cache/ponder-bench';
export const GOLDEN_FIXTURES = ['albert-odd', 'albert-groups', 'bert-odd', 'bert-regression'];
const RANDOM_SEED = 20261127;

function exportFolder(
  id: string,
  kind: string,
  srcDir: string | null,
  files?: Record<string, Uint8Array>,
): BenchModel {
  const dir = join(CACHE, 'models', id);
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  if (srcDir) {
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) {
      const src = join(srcDir, f);
      if (!existsSync(src)) continue;
      const dst = join(dir, f);
      if (!existsSync(dst) || statSync(dst).mtimeMs < statSync(src).mtimeMs) copyFileSync(src, dst);
    }
  }
  for (const [name, bytes] of Object.entries(files ?? {})) writeFileSync(join(dir, name), bytes);
  const configText = readFileSync(join(dir, 'config.json'), 'utf8');
  const weights = readFileSync(join(dir, 'model.safetensors'));
  const model = parseCheckpoint(
    configText,
    new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength),
  );
  const onnxPath = join(dir, 'onnx', 'model.onnx');
  if (
    !existsSync(onnxPath) ||
    statSync(onnxPath).mtimeMs < statSync(join(dir, 'model.safetensors')).mtimeMs
  ) {
    writeFileSync(onnxPath, exportOnnx(model));
  }
  return describeBenchModel(model, {
    id,
    kind,
    url: `/models/${id}/`,
    onnxBytes: statSync(onnxPath).size,
    safetensorsBytes: weights.byteLength,
  });
}

export interface ModelChoice {
  shipped: boolean;
  fixtures: string[];
  albertBase: boolean;
}

/** Prepares the chosen models; returns them with a note per source that had nothing to offer. */
export function prepareModels(choice: ModelChoice): { models: BenchModel[]; notes: string[] } {
  const models: BenchModel[] = [];
  const notes: string[] = [];
  if (choice.shipped) {
    const root = 'public/models';
    const found = existsSync(root)
      ? readdirSync(root).filter((d) => existsSync(join(root, d, 'config.json')))
      : [];
    if (!found.length) notes.push('No shipped model: public/models/ has no model folder yet.');
    for (const d of found) models.push(exportFolder(`shipped-${d}`, 'shipped', join(root, d)));
  }
  for (const f of choice.fixtures) {
    models.push(exportFolder(`golden-${f}`, 'golden fixture', join('tests/fixtures/golden', f)));
  }
  if (choice.albertBase) {
    const id = 'albert-base-random';
    const dir = join(CACHE, 'models', id);
    if (!existsSync(join(dir, 'model.safetensors'))) {
      mkdirSync(dir, { recursive: true });
      const { config, safetensors } = randomAlbert(ALBERT_BASE, RANDOM_SEED);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
      writeFileSync(join(dir, 'model.safetensors'), safetensors);
    }
    models.push(exportFolder(id, `random ALBERT-base shape (seed ${RANDOM_SEED})`, null));
  }
  return { models, notes };
}
