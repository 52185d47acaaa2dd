/**
 * The demo page (index.html): load a model, classify a sentence and watch it go through the layers, change the exit
 * criterion and threshold, and measure accuracy against speed over a data set.
 *
 * URL parameters (for links and tests): `model` (a folder URL or Hub id instead of the shipped model), `text`,
 * `criterion`, `threshold`, `mode` ('streaming' | 'single-submit').
 *
 * User text only ever reaches the page through textContent and Plot's text nodes, never as HTML.
 */
import './demo.css';
import { loadClassifier, type PonderClassifier } from '../classifier';
import { isPonderError } from '../errors';
import { evaluateExit, haltingDistribution, type CriterionKind, type ExitCriterion } from '../exit';
import type { LoadProgressEvent } from '../loading';
import {
  criterionControls,
  requirementOf,
  supportedCriteriaOf,
  unsupportedCriterionError,
  type CriterionControl,
} from '../element/criteria';
import {
  answeringHead,
  classifyWithLayers,
  layerAnswer,
  type RichLayer,
  type RichResult,
} from '../element/run';
import { DEFAULT_MODEL_URL, loadSharedClassifier } from '../element/shared-models';
import {
  classProbabilityChart,
  criterionChart,
  exitDistributionChart,
  exitHistogramChart,
  gpuTimeChart,
  tradeoffChart,
  type LayerChartContext,
  type LayerRow,
  type TradeoffPoint,
} from './charts';
import { evaluateSetting, runDataset, toLayerOutputs, tradeoffPoints, type DatasetRun } from './dataset';
import { EXAMPLES, sampleRows } from './samples';
import { parseTsv, type DatasetRow } from './tsv';

const params = new URLSearchParams(location.search);
const defaultModel = params.get('model') ?? DEFAULT_MODEL_URL;
const runMode = params.get('mode') === 'single-submit' ? 'single-submit' : 'streaming';

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html lacks #${id}`);
  return el as T;
}

const ui = {
  notices: $('notices'),
  defaultModelUrl: $('default-model-url'),
  hubId: $<HTMLInputElement>('hub-id'),
  dropZone: $('drop-zone'),
  modelFiles: $<HTMLInputElement>('model-files'),
  localFiles: $('local-files'),
  loadModel: $<HTMLButtonElement>('load-model'),
  modelProgress: $<HTMLProgressElement>('model-progress'),
  modelStatus: $('model-status'),
  modelInfo: $('model-info'),
  form: $<HTMLFormElement>('classify-form'),
  text: $<HTMLTextAreaElement>('text'),
  classifyButton: $<HTMLButtonElement>('classify-button'),
  examples: $('examples'),
  criteria: $('criteria'),
  threshold: $<HTMLInputElement>('threshold'),
  thresholdLabel: $('threshold-label'),
  thresholdValue: $<HTMLOutputElement>('threshold-value'),
  criterionRule: $('criterion-rule'),
  answer: $('answer'),
  layerReadout: $('layer-readout'),
  chartExit: $('chart-exit'),
  chartProbs: $('chart-probs'),
  chartCriterion: $('chart-criterion'),
  chartTime: $('chart-time'),
  layerTable: $<HTMLTableElement>('layer-table'),
  datasetFile: $<HTMLInputElement>('dataset-file'),
  datasetSample: $<HTMLButtonElement>('dataset-sample'),
  datasetProgress: $<HTMLProgressElement>('dataset-progress'),
  datasetStatus: $('dataset-status'),
  chartTradeoff: $('chart-tradeoff'),
  chartHistogram: $('chart-histogram'),
  tradeoffTable: $<HTMLTableElement>('tradeoff-table'),
};

interface State {
  classifier: PonderClassifier | null;
  /** A classifier from local files is ours alone (not in the shared cache): dispose it when replaced. */
  ownsClassifier: boolean;
  modelName: string;
  supported: CriterionKind[];
  controls: CriterionControl[];
  kind: CriterionKind;
  /** The threshold chosen per criterion, so switching back keeps it. */
  values: Map<CriterionKind, number>;
  loadGeneration: number;
  runGeneration: number;
  /** Layers of the current run as they arrive. */
  live: RichLayer[];
  result: RichResult | null;
  selected: number | undefined;
  dataset: DatasetRun | null;
  datasetGeneration: number;
  tradeoff: TradeoffPoint[];
  localFiles: File[];
}

const state: State = {
  classifier: null,
  ownsClassifier: false,
  modelName: '',
  supported: [],
  controls: criterionControls(12, 2),
  kind: 'none',
  values: new Map(),
  loadGeneration: 0,
  runGeneration: 0,
  live: [],
  result: null,
  selected: undefined,
  dataset: null,
  datasetGeneration: 0,
  tradeoff: [],
  localFiles: [],
};

// ---------------------------------------------------------------------------------------------- notices

type NoticeKind = 'error' | 'warning' | 'info';

const NO_WEBGPU =
  'This browser has no WebGPU, so the model cannot run here. Use Chrome or Edge 113 or newer (on Linux, enable ' +
  'chrome://flags/#enable-unsafe-webgpu), Firefox 141+ on Windows or Safari 26+, and open the page over https or ' +
  'from localhost. The rest of the page still works.';

/** Shows (or replaces) the notice with this id. Text only. */
function notice(id: string, kind: NoticeKind, message: string): void {
  clearNotice(id);
  const box = document.createElement('div');
  box.className = `notice ${kind}`;
  box.dataset.notice = id;
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  const p = document.createElement('p');
  p.textContent = message;
  const close = document.createElement('button');
  close.type = 'button';
  close.textContent = '×';
  close.setAttribute('aria-label', 'Dismiss this notice');
  close.addEventListener('click', () => box.remove());
  box.append(p, close);
  ui.notices.append(box);
}

function clearNotice(id: string): void {
  ui.notices.querySelector(`[data-notice="${CSS.escape(id)}"]`)?.remove();
}

/** A notice for a failure: a specific sentence for the failures people can act on, the library's text otherwise. */
function reportError(id: string, error: unknown, context: string): string {
  const code = isPonderError(error) ? error.code : 'unknown';
  const text = error instanceof Error ? error.message : String(error);
  let message: string;
  switch (code) {
    case 'no-webgpu':
      message = NO_WEBGPU;
      break;
    case 'no-adapter':
      message = `WebGPU is here but found no GPU adapter. ${text}`;
      break;
    case 'fetch-failed':
      message = /HTTP 404/.test(text)
        ? `Model not found: ${context} has no model files there (${text}). Choose a Hub id or local files instead.`
        : `${context} could not be downloaded: ${text}`;
      break;
    case 'invalid-config':
      // Servers that answer every path with an HTML page (single-page-app hosting) give "not valid JSON" here.
      message = /not valid JSON/i.test(text)
        ? `Model not found: ${context} did not give a config.json (the server sent something that is not JSON). ` +
          'Check the URL, or choose a Hub id or local files instead.'
        : `${context}: ${text}`;
      break;
    case 'unsupported-criterion':
      message = text;
      break;
    case 'device-lost':
      message = `The GPU device was lost (${text}). Load the model again.`;
      break;
    default:
      message = `${context}: ${text}`;
  }
  notice(id, 'error', message);
  return message;
}

// ---------------------------------------------------------------------------------------------- model loading

function selectedSource(): 'default' | 'hub' | 'local' {
  const checked = document.querySelector<HTMLInputElement>('input[name="source"]:checked');
  return (checked?.value as 'default' | 'hub' | 'local') ?? 'default';
}

function showSourceDetail(): void {
  const source = selectedSource();
  for (const el of document.querySelectorAll<HTMLElement>('.source-detail')) {
    el.hidden = el.dataset.source !== source;
  }
}

function setProgress(bar: HTMLProgressElement, fraction: number | null | undefined): void {
  if (fraction === undefined) {
    bar.hidden = true;
    return;
  }
  bar.hidden = false;
  if (fraction === null) bar.removeAttribute('value');
  else bar.value = fraction;
}

async function loadModel(): Promise<void> {
  const source = selectedSource();
  const generation = ++state.loadGeneration;
  const current = () => generation === state.loadGeneration;
  let label: string;
  let load: (onProgress: (e: LoadProgressEvent) => void) => Promise<PonderClassifier>;
  if (source === 'hub') {
    const id = ui.hubId.value.trim();
    if (id === '') {
      notice('model', 'error', 'Type a Hugging Face Hub id such as user/albert-sst2 first.');
      return;
    }
    label = `The Hub model ${id}`;
    load = (onProgress) => loadSharedClassifier(id, onProgress);
  } else if (source === 'local') {
    if (state.localFiles.length === 0) {
      notice('model', 'error', 'Choose or drop config.json, model.safetensors and tokenizer.json first.');
      return;
    }
    const files = [...state.localFiles];
    label = 'The chosen files';
    load = (onProgress) => loadClassifier({ files }, { onProgress });
  } else {
    label =
      defaultModel === DEFAULT_MODEL_URL
        ? `The shipped model folder ${defaultModel} (public/${DEFAULT_MODEL_URL} in the repository)`
        : `The model folder ${defaultModel}`;
    load = (onProgress) => loadSharedClassifier(defaultModel, onProgress);
  }
  clearNotice('model');
  clearNotice('software');
  ui.loadModel.disabled = true;
  ui.classifyButton.disabled = true;
  ui.datasetSample.disabled = true;
  ui.modelStatus.textContent = `Loading ${label.charAt(0).toLowerCase() + label.slice(1)}…`;
  setProgress(ui.modelProgress, null);
  const sizes = new Map<string, { loaded: number; total: number | undefined }>();
  try {
    const classifier = await load((event) => {
      if (!current()) return;
      if (event.status === 'download') sizes.set(event.file, { loaded: event.loaded, total: event.total });
      else sizes.set(event.file, { loaded: event.bytes, total: event.bytes });
      const weights = sizes.get('model.safetensors');
      if (event.file === 'model.safetensors' && event.status !== 'download') {
        setProgress(ui.modelProgress, 1);
        ui.modelStatus.textContent = 'Preparing the GPU pipelines (warm-up)…';
      } else if (weights?.total) {
        const fraction = Math.min(1, weights.loaded / weights.total);
        setProgress(ui.modelProgress, fraction);
        ui.modelStatus.textContent = `Downloading the weights… ${Math.round(fraction * 100)}% of ${formatBytes(weights.total)}`;
      }
    });
    if (!current()) return;
    if (state.ownsClassifier && state.classifier && state.classifier !== classifier)
      state.classifier.dispose();
    state.classifier = classifier;
    state.ownsClassifier = source === 'local';
    state.modelName =
      source === 'hub' ? ui.hubId.value.trim() : source === 'local' ? 'local files' : defaultModel;
    onModelReady(classifier);
  } catch (error) {
    if (!current()) return;
    const message = reportError('model', error, label);
    ui.modelStatus.textContent = `No model loaded: ${message.startsWith('Model not found') ? 'model not found' : 'see the notice at the top'}.`;
  } finally {
    if (current()) {
      ui.loadModel.disabled = false;
      setProgress(ui.modelProgress, undefined);
    }
  }
}

function formatBytes(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(n / 1024))} KB`;
}

function onModelReady(classifier: PonderClassifier): void {
  const config = classifier.config;
  state.supported = supportedCriteriaOf(classifier);
  state.controls = criterionControls(config.numHiddenLayers, Math.max(2, config.labels.length));
  state.result = null;
  state.live = [];
  state.dataset = null;
  state.tradeoff = [];
  ui.modelStatus.textContent = `Ready: ${state.modelName}.`;
  const info: [string, string][] = [
    ['Model', state.modelName],
    [
      'Architecture',
      `${config.architecture.toUpperCase()}, ${config.numHiddenLayers} layers, hidden ${config.hiddenSize}`,
    ],
    ['Labels', config.labels.join(', ')],
    ['Exit criteria', state.supported.join(', ')],
    ['GPU', describeAdapter(classifier)],
    ['Weights', `${classifier.weightDtype} on the GPU, ${formatBytes(classifier.gpuBytes)}`],
  ];
  ui.modelInfo.replaceChildren(
    ...info.flatMap(([k, v]) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      return [dt, dd];
    }),
  );
  ui.modelInfo.hidden = false;
  if (classifier.device.isFallbackAdapter) {
    notice(
      'software',
      'warning',
      `The GPU in use is a software adapter (${describeAdapter(classifier)}): results are right but slow. ` +
        'Enable hardware acceleration in the browser settings, or try another browser, for real speed.',
    );
  }
  // Keep the chosen criterion when the new model supports it; else the model's default, else full depth.
  const wanted = (params.get('criterion') as CriterionKind | null) ?? modelDefaultKind(classifier);
  if (!state.supported.includes(state.kind) || state.kind === 'none') state.kind = wanted;
  buildCriteria();
  if (!state.supported.includes(state.kind)) {
    reportError('criterion', unsupportedCriterionError(state.kind, state.supported), 'Criterion');
    state.kind = 'none';
    buildCriteria();
  }
  ui.classifyButton.disabled = false;
  ui.datasetSample.disabled = false;
  renderLayers();
  clearDataset();
  if (ui.text.value.trim() !== '') requestRun();
}

function modelDefaultKind(classifier: PonderClassifier): CriterionKind {
  const fromConfig = classifier.config.exitHeads?.defaultCriterion?.kind as CriterionKind | undefined;
  if (fromConfig && state.supported.includes(fromConfig)) return fromConfig;
  if (state.supported.includes('palbert')) return 'palbert';
  return 'none';
}

function describeAdapter(classifier: PonderClassifier): string {
  const d = classifier.device;
  const name = [d.vendor, d.architecture, d.description].filter((s) => s).join(' ') || 'unnamed adapter';
  return `${name}${d.isFallbackAdapter ? ' (software)' : ''}${d.hasTimestampQuery ? ', timestamps' : ''}`;
}

// ---------------------------------------------------------------------------------------------- criterion controls

function control(kind: CriterionKind): CriterionControl {
  return state.controls.find((c) => c.kind === kind) ?? state.controls[state.controls.length - 1]!;
}

function buildCriteria(): void {
  const legend = document.createElement('legend');
  legend.textContent = 'Exit criterion';
  const items = state.controls.map((c) => {
    const available = state.classifier === null || state.supported.includes(c.kind);
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'radio';
    input.name = 'criterion';
    input.value = c.kind;
    input.checked = c.kind === state.kind;
    input.disabled = !available;
    label.append(input, ` ${c.name}`);
    if (!available) {
      const why = `This model has no ${requirementOf(c.kind)?.replace(/^an? /, '') ?? 'head for it'}.`;
      label.title = why;
      label.className = 'unavailable';
      const small = document.createElement('small');
      small.id = `why-${c.kind}`;
      small.textContent = why;
      input.setAttribute('aria-describedby', small.id);
      label.append(small);
    }
    input.addEventListener('change', () => {
      if (!input.checked) return;
      state.kind = c.kind;
      syncThreshold();
      onSettingChanged();
    });
    return label;
  });
  ui.criteria.replaceChildren(legend, ...items);
  syncThreshold();
}

/** Puts the slider in the chosen criterion's range and units. */
function syncThreshold(): void {
  const c = control(state.kind);
  const fromUrl = params.get('threshold');
  if (!state.values.has(c.kind)) {
    const v = fromUrl !== null && params.get('criterion') === c.kind ? Number(fromUrl) : c.defaultValue;
    state.values.set(c.kind, Number.isFinite(v) ? v : c.defaultValue);
  }
  ui.threshold.min = String(c.min);
  ui.threshold.max = String(c.max);
  ui.threshold.step = String(c.step);
  ui.threshold.value = String(state.values.get(c.kind));
  ui.threshold.disabled = c.parameter === null;
  ui.thresholdLabel.textContent =
    c.parameter === null ? 'No threshold for full depth' : `${c.name}: ${c.parameter}`;
  ui.thresholdValue.textContent = c.parameter === null ? '—' : ui.threshold.value;
  ui.criterionRule.textContent = c.rule;
}

function currentCriterion(): ExitCriterion {
  const v = state.values.get(state.kind) ?? control(state.kind).defaultValue;
  switch (state.kind) {
    case 'palbert':
      return { kind: 'palbert', q: v };
    case 'pondernet-sample':
      return { kind: 'pondernet-sample', seed: Math.round(v) };
    case 'pabee':
      return { kind: 'pabee', patience: Math.round(v) };
    case 'entropy':
      return { kind: 'entropy', threshold: v };
    case 'max-prob':
      return { kind: 'max-prob', threshold: v };
    case 'gate':
      return { kind: 'gate', threshold: v };
    default:
      return { kind: 'none' };
  }
}

function onSettingChanged(): void {
  clearNotice('criterion');
  if (state.result || state.live.length > 0) requestRun();
  updateDatasetSetting();
}

// ---------------------------------------------------------------------------------------------- classify

let inFlight = false;
let rerun = false;

/**
 * Runs the classification, coalescing requests: dragging the threshold slider asks for dozens of runs, but while one
 * is on the GPU only the latest request is kept, and it starts when that run ends.
 */
function requestRun(): void {
  if (inFlight) {
    rerun = true;
    return;
  }
  inFlight = true;
  void classifyNow().finally(() => {
    inFlight = false;
    if (rerun) {
      rerun = false;
      requestRun();
    }
  });
}

async function classifyNow(): Promise<void> {
  const classifier = state.classifier;
  if (!classifier) {
    notice('classify', 'info', 'Load a model first (the Model panel).');
    return;
  }
  const text = ui.text.value;
  if (text.trim() === '') {
    notice('classify', 'info', 'Type a sentence or pick an example first.');
    return;
  }
  clearNotice('classify');
  const run = ++state.runGeneration;
  const criterion = currentCriterion();
  state.live = [];
  state.result = null;
  renderAnswerPending(text);
  renderLayers();
  try {
    if (!state.supported.includes(criterion.kind))
      throw unsupportedCriterionError(criterion.kind, state.supported);
    const result = await classifyWithLayers(classifier, text, {
      criterion,
      mode: runMode,
      onLayer: (layer) => {
        if (run !== state.runGeneration) return;
        state.live.push(layer);
        scheduleRender();
      },
    });
    if (run !== state.runGeneration) return;
    state.result = result;
    renderAnswer(result);
    renderLayers();
  } catch (error) {
    if (run !== state.runGeneration) return;
    const message = reportError('classify', error, 'Classification');
    const p = document.createElement('p');
    p.className = 'hint';
    p.textContent = `No answer: ${message}`;
    ui.answer.replaceChildren(p);
  }
}

let renderPending = false;
function scheduleRender(): void {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => {
    renderPending = false;
    renderLayers();
  });
}

function renderAnswerPending(text: string): void {
  const quote = document.createElement('p');
  quote.className = 'quote';
  quote.textContent = `“${text}”`;
  const p = document.createElement('p');
  p.className = 'hint';
  p.textContent = 'Running…';
  ui.answer.replaceChildren(quote, p);
}

function renderAnswer(result: RichResult): void {
  const verdict = document.createElement('p');
  verdict.className = 'verdict';
  verdict.id = 'verdict';
  verdict.textContent = `${result.label} · ${(result.score * 100).toFixed(1)}%`;
  const quote = document.createElement('p');
  quote.className = 'quote';
  quote.id = 'answer-text';
  quote.textContent = `“${result.text ?? ''}”`;
  const exit = document.createElement('p');
  exit.className = 'exit';
  exit.id = 'exit-layer';
  exit.dataset.exitLayer = String(result.exitLayer);
  const skipped = result.skippedLayers ?? result.numLayers - result.exitLayer;
  const parts = [`Answered at layer ${result.exitLayer} of ${result.numLayers}`];
  parts.push(skipped > 0 ? `${skipped} layer${skipped === 1 ? '' : 's'} skipped` : 'no layer skipped');
  if (result.timing) {
    parts.push(
      `${result.timing.totalMs.toFixed(1)} ms` +
        (result.timing.gpuMs !== undefined ? ` (GPU ${result.timing.gpuMs.toFixed(2)} ms)` : ''),
    );
  }
  if (result.truncated) parts.push('text cut to the model’s length');
  exit.textContent = parts.join(' · ');
  ui.answer.replaceChildren(verdict, quote, exit);
}

/** The layers to draw: the finished result's (up to its exit) or those that arrived so far. */
function currentLayers(): { rows: LayerRow[]; exitLayer: number | undefined; head: 'shared' | 'per-layer' } {
  const result = state.result;
  const source = result ? result.layers.filter((l) => l.layer <= result.exitLayer) : state.live;
  const exitLayer = result?.exitLayer;
  const lambdas = source.every((l) => typeof l.lambda === 'number') ? source.map((l) => l.lambda!) : null;
  const halting = lambdas && lambdas.length > 0 ? haltingDistribution(lambdas) : null;
  let statistic: number[] = [];
  if (source.length > 0 && state.classifier) {
    try {
      const outputs = toLayerOutputs(source, state.classifier.config.problemType === 'regression');
      statistic = evaluateExit(outputs, result?.criterion ?? currentCriterion()).statistic;
    } catch {
      statistic = []; // the statistic chart just stays empty; the run itself reports its own errors
    }
  }
  const head = answeringHead(result?.criterion ?? currentCriterion(), hasPerLayerHeads());
  const labels = state.classifier?.config.labels ?? [];
  const rows = source.map((l, i) => {
    const row: LayerRow = { layer: l.layer, probabilities: layerAnswer(l, head, labels).probabilities };
    if (typeof l.lambda === 'number') row.lambda = l.lambda;
    const p = l.haltingProbability ?? halting?.p[i];
    const cdf = l.cumulativeHalting ?? halting?.cdf[i];
    if (p !== undefined) row.p = p;
    if (cdf !== undefined) row.cdf = cdf;
    if (statistic[i] !== undefined) row.statistic = statistic[i];
    if (typeof l.gpuTimeMs === 'number') row.gpuTimeMs = l.gpuTimeMs;
    return row;
  });
  return { rows, exitLayer, head };
}

function hasPerLayerHeads(): boolean {
  return state.classifier?.config.exitHeads?.perLayerHeads === true;
}

function note(text: string): HTMLElement {
  const p = document.createElement('p');
  p.className = 'note';
  p.textContent = text;
  return p;
}

function statisticInfo(criterion: ExitCriterion, numClasses: number) {
  const lnC = Math.log(Math.max(2, numClasses));
  switch (criterion.kind) {
    case 'palbert':
      return {
        name: 'CDF_n (exit probability so far)',
        threshold: { value: criterion.q, label: `q = ${criterion.q}` },
        yMax: 1,
      };
    case 'pondernet-sample':
      return { name: 'u_n (random draw; exits when u_n < λ_n)', threshold: undefined, yMax: 1 };
    case 'pabee':
      return {
        name: 'Agreeing layers in a row',
        threshold: { value: criterion.patience, label: `patience = ${criterion.patience}` },
        yMax: Math.max(criterion.patience + 1, 2),
      };
    case 'entropy':
      return {
        name: 'Entropy (nats)',
        threshold: { value: criterion.threshold, label: `τ = ${criterion.threshold}` },
        yMax: Number(lnC.toFixed(3)),
      };
    case 'max-prob':
      return {
        name: 'Top class probability',
        threshold: { value: criterion.threshold, label: `τ = ${criterion.threshold}` },
        yMax: 1,
      };
    default:
      return null;
  }
}

function renderLayers(): void {
  const classifier = state.classifier;
  if (!classifier) return;
  const config = classifier.config;
  const { rows, exitLayer, head } = currentLayers();
  const width = Math.floor(ui.chartProbs.parentElement?.clientWidth ?? 600);
  const columns = width > 700 ? 2 : 1;
  const ctx: LayerChartContext = {
    width: Math.floor((width - (columns - 1) * 12) / columns),
    numLayers: config.numHiddenLayers,
    labels: config.labels,
  };
  if (exitLayer !== undefined) ctx.exitLayer = exitLayer;
  if (state.selected !== undefined) ctx.selected = state.selected;
  const criterion = state.result?.criterion ?? currentCriterion();

  if (rows.length === 0 && !state.result) {
    for (const el of [ui.chartExit, ui.chartProbs, ui.chartCriterion, ui.chartTime]) el.replaceChildren();
    ui.layerTable.replaceChildren();
    return;
  }
  const hasLambda = rows.some((r) => r.lambda !== undefined);
  ui.chartExit.replaceChildren(
    hasLambda
      ? exitDistributionChart(rows, ctx, criterion.kind === 'palbert' ? criterion.q : undefined)
      : note(
          'Exit distribution: this model has no Lambda head, so there are no λ_n, p(n) or cumulative exit ' +
            'probabilities to show. Models trained with PALBERT or PonderNet have them.',
        ),
  );
  ui.chartProbs.replaceChildren(
    classProbabilityChart(
      rows,
      ctx,
      head === 'per-layer'
        ? 'Class probabilities per layer (each layer’s own head)'
        : 'Class probabilities per layer',
    ),
  );
  const info = statisticInfo(criterion, config.labels.length);
  ui.chartCriterion.replaceChildren(
    info
      ? criterionChart(rows, ctx, info.name, info.threshold, info.yMax)
      : note('Full depth: no exit test; every layer runs and the last one answers.'),
  );
  const hasTime = rows.some((r) => r.gpuTimeMs !== undefined);
  ui.chartTime.replaceChildren(
    hasTime
      ? gpuTimeChart(rows, ctx)
      : note(
          classifier.device.hasTimestampQuery
            ? 'GPU time per layer: not reported by this build of the library.'
            : 'GPU time per layer needs the timestamp-query feature, which this adapter lacks.',
        ),
  );
  renderLayerTable(rows, exitLayer, config.numHiddenLayers, config.labels);
  ui.answer.dataset.layersShown = String(rows.length);
}

function fmt(x: number | undefined, digits = 3): string {
  return x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

function renderLayerTable(
  rows: LayerRow[],
  exitLayer: number | undefined,
  numLayers: number,
  labels: readonly string[],
): void {
  const head = document.createElement('tr');
  for (const h of [
    'Layer',
    ...labels.map((l) => `p(${l})`),
    'λ_n',
    'p(n)',
    'CDF_n',
    'Criterion test',
    'GPU ms',
  ]) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = h;
    head.append(th);
  }
  const body = Array.from({ length: numLayers }, (_, i) => {
    const n = i + 1;
    const row = rows.find((r) => r.layer === n);
    const tr = document.createElement('tr');
    const skipped = exitLayer !== undefined && n > exitLayer;
    if (skipped) tr.className = 'skipped';
    if (n === exitLayer) tr.className = 'exit';
    const cells = row
      ? [
          `${n}${n === exitLayer ? ' (exit)' : ''}`,
          ...labels.map((_, c) => fmt(row.probabilities[c])),
          fmt(row.lambda),
          fmt(row.p),
          fmt(row.cdf),
          fmt(row.statistic),
          fmt(row.gpuTimeMs, 2),
        ]
      : [`${n}`, skipped ? 'skipped' : 'not run yet'];
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.append(td);
    }
    return tr;
  });
  ui.layerTable.replaceChildren(head, ...body);
}

/** ← → on a focused chart move the highlighted layer and read its values out (aria-live). */
function onChartKey(event: KeyboardEvent): void {
  const classifier = state.classifier;
  if (!classifier) return;
  const L = classifier.config.numHiddenLayers;
  let n = state.selected ?? 0;
  if (event.key === 'ArrowRight') n = Math.min(L, n + 1);
  else if (event.key === 'ArrowLeft') n = Math.max(1, n - 1);
  else if (event.key === 'Home') n = 1;
  else if (event.key === 'End') n = L;
  else if (event.key === 'Escape') n = 0;
  else return;
  event.preventDefault();
  state.selected = n === 0 ? undefined : n;
  const { rows, exitLayer } = currentLayers();
  const row = rows.find((r) => r.layer === n);
  if (n === 0) ui.layerReadout.textContent = 'No layer selected.';
  else if (!row) {
    ui.layerReadout.textContent = `Layer ${n}: ${exitLayer !== undefined && n > exitLayer ? 'skipped' : 'not run'}.`;
  } else {
    const probs = classifier.config.labels.map((l, c) => `${l} ${fmt(row.probabilities[c], 2)}`).join(', ');
    const extra = [
      row.lambda !== undefined ? `λ ${fmt(row.lambda, 2)}` : '',
      row.cdf !== undefined ? `CDF ${fmt(row.cdf, 2)}` : '',
      row.gpuTimeMs !== undefined ? `${fmt(row.gpuTimeMs, 2)} ms` : '',
    ].filter((s) => s);
    ui.layerReadout.textContent = `Layer ${n}${n === exitLayer ? ' (exit)' : ''}: ${probs}${extra.length ? '; ' + extra.join(', ') : ''}.`;
  }
  const focused = document.activeElement;
  renderLayers();
  if (focused instanceof HTMLElement) focused.focus();
}

// ---------------------------------------------------------------------------------------------- dataset mode

function clearDataset(): void {
  state.dataset = null;
  state.tradeoff = [];
  ui.chartTradeoff.replaceChildren();
  ui.chartHistogram.replaceChildren();
  ui.tradeoffTable.replaceChildren();
  ui.datasetStatus.textContent = '';
}

async function runDatasetRows(rows: DatasetRow[], name: string, hasLabels: boolean): Promise<void> {
  const classifier = state.classifier;
  if (!classifier) {
    notice('dataset', 'info', 'Load a model first, then run the data set.');
    return;
  }
  if (rows.length === 0) {
    notice('dataset', 'error', `${name} has no rows with text to classify.`);
    return;
  }
  clearNotice('dataset');
  const generation = ++state.datasetGeneration;
  ui.datasetSample.disabled = true;
  setProgress(ui.datasetProgress, 0);
  ui.datasetStatus.textContent = `Running ${rows.length} sentences at full depth…`;
  try {
    const run = await runDataset(
      classifier,
      rows,
      (done, total) => {
        if (generation !== state.datasetGeneration) return;
        setProgress(ui.datasetProgress, done / total);
        ui.datasetStatus.textContent = `Running ${name}: ${done} of ${total} sentences…`;
      },
      () => generation !== state.datasetGeneration || classifier !== state.classifier,
    );
    if (!run || generation !== state.datasetGeneration) return;
    state.dataset = run;
    const names = new Map(state.controls.map((c) => [c.kind, c.name] as const));
    state.tradeoff = run.hasLabels ? tradeoffPoints(run, state.supported, names) : [];
    ui.datasetStatus.textContent =
      `${name}: ${rows.length} sentences.` +
      (hasLabels ? '' : ' The file has no labels, so only exit layers are shown (no accuracy).');
    updateDatasetSetting();
  } catch (error) {
    if (generation !== state.datasetGeneration) return;
    const message = reportError('dataset', error, `The data set ${name}`);
    ui.datasetStatus.textContent = message;
  } finally {
    if (generation === state.datasetGeneration) {
      setProgress(ui.datasetProgress, undefined);
      ui.datasetSample.disabled = state.classifier === null;
    }
  }
}

/** Redraws the histogram and the current point for the current criterion (CPU only, instant). */
function updateDatasetSetting(): void {
  const run = state.dataset;
  if (!run) return;
  const width = Math.floor(ui.chartTradeoff.parentElement?.clientWidth ?? 600);
  let setting: ReturnType<typeof evaluateSetting>;
  try {
    setting = evaluateSetting(run, currentCriterion());
  } catch (error) {
    reportError('dataset', error, 'The current criterion');
    return;
  }
  const name = control(state.kind).name;
  const current: TradeoffPoint = {
    criterion: name,
    setting: setting.label,
    averageLayers: setting.averageLayers,
    accuracy: setting.accuracy,
  };
  if (state.tradeoff.length > 0) {
    ui.chartTradeoff.replaceChildren(
      tradeoffChart(
        state.tradeoff,
        width,
        run.numLayers,
        Number.isFinite(current.accuracy) ? current : undefined,
      ),
    );
  } else {
    ui.chartTradeoff.replaceChildren(note('The trade-off curve needs labelled sentences.'));
  }
  const histWidth = width > 700 ? Math.floor(width / 2) : width;
  ui.chartHistogram.replaceChildren(exitHistogramChart(setting.exitLayers, histWidth, run.numLayers));
  const summary = document.createElement('p');
  summary.id = 'dataset-summary';
  summary.textContent =
    `${name} (${setting.label}): average ${setting.averageLayers.toFixed(2)} of ${run.numLayers} layers ` +
    `(${setting.speedUp.toFixed(2)}× fewer)` +
    (Number.isFinite(setting.accuracy) ? `, accuracy ${(setting.accuracy * 100).toFixed(1)}%.` : '.');
  ui.chartHistogram.prepend(summary);
  renderTradeoffTable();
}

function renderTradeoffTable(): void {
  const head = document.createElement('tr');
  for (const h of ['Criterion', 'Setting', 'Average layers', 'Accuracy']) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = h;
    head.append(th);
  }
  const rows = state.tradeoff.map((p) => {
    const tr = document.createElement('tr');
    for (const c of [
      p.criterion,
      p.setting,
      p.averageLayers.toFixed(2),
      `${(p.accuracy * 100).toFixed(1)}%`,
    ]) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.append(td);
    }
    return tr;
  });
  ui.tradeoffTable.replaceChildren(head, ...rows);
}

async function onDatasetFile(file: File): Promise<void> {
  const classifier = state.classifier;
  if (!classifier) {
    notice('dataset', 'info', 'Load a model first, then upload the data set.');
    return;
  }
  let text: string;
  try {
    text = await file.text();
  } catch (error) {
    reportError('dataset', error, `Reading ${file.name}`);
    return;
  }
  const parsed = parseTsv(text, classifier.config.labels);
  if (parsed.skipped > 0 || parsed.truncated > 0) {
    notice(
      'dataset-rows',
      'warning',
      `${file.name}: ${parsed.skipped} rows skipped (no text or an unknown label)` +
        (parsed.truncated > 0 ? `, ${parsed.truncated} rows beyond the first 2000 not read.` : '.'),
    );
  }
  await runDatasetRows(parsed.rows, file.name, parsed.hasLabels);
}

// ---------------------------------------------------------------------------------------------- local model files

/** Files from a drop, folders included (one level of webkitGetAsEntry directories). */
async function droppedFiles(transfer: DataTransfer): Promise<File[]> {
  const entries = [...transfer.items]
    .map((item) => (item.kind === 'file' ? item.webkitGetAsEntry?.() : null))
    .filter((e): e is FileSystemEntry => !!e);
  if (entries.length === 0) return [...transfer.files];
  const files: File[] = [];
  const visit = async (entry: FileSystemEntry, depth: number): Promise<void> => {
    if (entry.isFile) {
      files.push(await new Promise<File>((ok, fail) => (entry as FileSystemFileEntry).file(ok, fail)));
    } else if (entry.isDirectory && depth < 2) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      const children = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
      for (const child of children) await visit(child, depth + 1);
    }
  };
  for (const entry of entries) await visit(entry, 0);
  return files;
}

function setLocalFiles(files: File[]): void {
  state.localFiles = files;
  ui.localFiles.textContent = files.length ? `Chosen: ${files.map((f) => f.name).join(', ')}` : '';
  const local = document.querySelector<HTMLInputElement>('input[name="source"][value="local"]');
  if (local) local.checked = true;
  showSourceDetail();
  if (files.length > 0) void loadModel();
}

// ---------------------------------------------------------------------------------------------- wiring

function wire(): void {
  ui.defaultModelUrl.textContent = defaultModel;
  for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="source"]')) {
    radio.addEventListener('change', showSourceDetail);
  }
  ui.loadModel.addEventListener('click', () => void loadModel());
  ui.hubId.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') void loadModel();
  });
  ui.modelFiles.addEventListener('change', () => setLocalFiles([...(ui.modelFiles.files ?? [])]));
  // Drops anywhere on the page count (missing the zone by a few pixels should not open the file in the tab).
  document.addEventListener('dragover', (e) => {
    if (!e.dataTransfer?.types.includes('Files')) return;
    e.preventDefault();
    ui.dropZone.classList.add('dragging');
  });
  document.addEventListener('dragleave', (e) => {
    if (e.target === document.documentElement || e.target === ui.dropZone)
      ui.dropZone.classList.remove('dragging');
  });
  document.addEventListener('drop', (e) => {
    if (!e.dataTransfer?.types.includes('Files')) return;
    e.preventDefault();
    ui.dropZone.classList.remove('dragging');
    const transfer = e.dataTransfer;
    const files = [...transfer.files];
    if (files.length === 1 && /\.(tsv|txt)$/i.test(files[0]!.name)) {
      void onDatasetFile(files[0]!);
      return;
    }
    void droppedFiles(transfer).then(setLocalFiles, (error) =>
      reportError('model', error, 'Reading the dropped files'),
    );
  });

  ui.form.addEventListener('submit', (e) => {
    e.preventDefault();
    requestRun();
  });
  ui.text.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      requestRun();
    }
  });
  ui.examples.replaceChildren(
    ...EXAMPLES.map((example) => {
      const li = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = example;
      button.addEventListener('click', () => {
        ui.text.value = example;
        requestRun();
      });
      li.append(button);
      return li;
    }),
  );
  ui.threshold.addEventListener('input', () => {
    const c = control(state.kind);
    const v = Number(ui.threshold.value);
    state.values.set(c.kind, v);
    ui.thresholdValue.textContent = ui.threshold.value;
    onSettingChanged();
  });
  for (const chart of [ui.chartExit, ui.chartProbs, ui.chartCriterion, ui.chartTime]) {
    chart.addEventListener('keydown', onChartKey);
    chart.setAttribute('aria-describedby', 'layer-readout');
  }
  ui.datasetSample.addEventListener(
    'click',
    () => void runDatasetRows(sampleRows(), 'the built-in sample', true),
  );
  ui.datasetFile.addEventListener('change', () => {
    const file = ui.datasetFile.files?.[0];
    if (file) void onDatasetFile(file);
    ui.datasetFile.value = '';
  });
  let lastWidth = 0;
  new ResizeObserver(() => {
    const w = document.body.clientWidth;
    if (Math.abs(w - lastWidth) < 16) return;
    lastWidth = w;
    renderLayers();
    updateDatasetSetting();
  }).observe(document.body);
}

function start(): void {
  wire();
  buildCriteria();
  const text = params.get('text');
  if (text !== null) ui.text.value = text;
  if (!('gpu' in navigator) || !navigator.gpu) {
    notice('model', 'error', NO_WEBGPU);
    ui.modelStatus.textContent = 'No model loaded: this browser has no WebGPU.';
    return;
  }
  void loadModel();
}

start();
(window as unknown as { demoReady: boolean }).demoReady = true;
