/**
 * What page.mjs returns to the CLI. The per-layer exit-head fields (lambda, gate, ...) and the result's
 * skippedLayers/timing are optional: models without the heads, and library builds before the GPU-side exit, omit them.
 */
import type { CriterionKind, ExitCriterion } from '../../src/exit';
import type { AdapterDescription } from '../../src/gpu/device';
import type { LayerResult } from '../../src/results';
import type { ModelLabels } from './tasks';

/** A layer's result as classify() gives it (src/results.ts), carried through JSON unchanged. */
export type PageLayer = LayerResult;

export interface PageResult {
  label: string;
  score: number;
  exitLayer: number;
  criterion: ExitCriterion;
  numLayers: number;
  truncated: boolean;
  tokenCount: number;
  skippedLayers?: number;
  timing?: { totalMs: number; gpuMs?: number };
  layers: PageLayer[];
}

export interface PageModelInfo {
  config: ModelLabels & {
    architecture: string;
    numHiddenLayers: number;
    maxPositionEmbeddings: number;
    hiddenSize: number;
    /** The parsed `ponder` object of config.json, when the model has exit heads. */
    exitHeads?: unknown;
  };
  device: AdapterDescription;
  weightDtype: 'f16' | 'f32';
  gpuBytes: number;
  /** Absent in library builds that predate PonderClassifier.supportedCriteria. */
  supportedCriteria?: CriterionKind[];
}

export interface PageBatch {
  /** classify()'s wall time in the page, in ms. */
  ms: number;
  results: PageResult[];
}

export type PageAnswer<T> = { ok: T } | { error: { code: string; message: string } };

export type PageInput = { text: string; textPair?: string };
