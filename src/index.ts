/**
 * ponder-web: early-exit text classification on WebGPU.
 *
 * - `loadClassifier(source, options)` → `PonderClassifier` (`classify`, `dispose`)
 * - exit criteria (`evaluateExit`, `sweepExits`, ...) as pure functions over per-layer outputs
 * - `PonderError` with a `code` for every failure
 */
export { loadClassifier, createClassifier, PonderClassifier } from './classifier';
export type {
  ClassifierInput,
  ClassifyOptions,
  KernelProfile,
  LoadClassifierOptions,
  TokenInput,
} from './classifier';
export type { DispatchTime } from './engine/plan';
export type { ClassificationResult, LayerEvent, LayerResult } from './results';
export { PonderError, isPonderError } from './errors';
export type { PonderErrorCode } from './errors';
export { requestGpu } from './gpu/device';
export type { AdapterDescription, GpuContext, GpuOptions } from './gpu/device';
export { getSharedGpu } from './gpu/shared';
export { Engine } from './engine/engine';
export type { KernelTuning } from './engine/kernels';
export type {
  BatchWork,
  EncodedBatch,
  EngineExample,
  EngineLayer,
  EngineLayerEvent,
  EngineOptions,
  EngineOutput,
  RunOptions,
} from './engine/engine';
export {
  loadCheckpoint,
  loadModelFiles,
  parseCheckpoint,
  parseConfig,
  parseSafetensors,
  createTokenizer,
  CACHE_NAME,
} from './loading';
export type { LoadProgressEvent, ModelSource, ProgressCallback, TextTokenizer } from './loading';
export type { EncoderConfig, EncoderModel } from './model/types';
export * from './exit';
// The <ponder-classifier> class; import 'ponder-web/element' (dist/ponder-classifier.js) to define the tag.
export { PonderClassifierElement } from './element/ponder-classifier';
