/**
 * <ponder-classifier>: an early-exit text classifier as an HTML element.
 *
 *   <ponder-classifier model="/models/palbert-sst2/" criterion="palbert" threshold="0.5"
 *                      text="a gorgeous, witty, seductive movie"></ponder-classifier>
 *
 * It loads its model when it scrolls into view (or at once with loading="eager"), classifies `text` and whatever is
 * typed into it, and reports each step as a CustomEvent: `progress`, `load`, `layer` (one per layer up to the exit),
 * `exit`, `result`, `error`. Every element on the page shares one GPU device and one loaded model per URL
 * (shared-models.ts). Failures never throw out of the element: they become an `error` event and a visible message.
 *
 * This module only declares the class; `./define` registers the tag (so importing the library defines nothing).
 */
import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import type { PonderClassifier } from '../classifier';
import { isPonderError, type PonderErrorCode } from '../errors';
import type { CriterionKind, ExitCriterion } from '../exit';
import type { AdapterDescription } from '../gpu/device';
import type { LoadProgressEvent } from '../loading';
import { criterionFromAttributes, supportedCriteriaOf, unsupportedCriterionError } from './criteria';
import {
  answeringHead,
  classifyWithLayers,
  effectiveCriterion,
  layerAnswer,
  type RichLayer,
  type RichResult,
} from './run';
import { DEFAULT_MODEL_URL, loadSharedClassifier } from './shared-models';

export type LoadingAttribute = 'lazy' | 'eager';

/** `progress` event detail. `fraction` is null while the total size is unknown. */
export interface PonderProgressDetail {
  phase: 'download' | 'cached' | 'warmup';
  file: string | null;
  loaded: number;
  total: number | null;
  fraction: number | null;
}

/** `load` event detail. */
export interface PonderLoadDetail {
  model: string;
  numLayers: number;
  labels: string[];
  supportedCriteria: CriterionKind[];
  device: AdapterDescription;
  weightDtype: 'f16' | 'f32';
}

/** `layer` event detail: one per layer that counts, in order; the last one has `exited: true`. */
export interface PonderLayerDetail {
  text: string;
  layer: number;
  numLayers: number;
  /** The layer's answer from the head the criterion reads (`head`): its label, probability and class probabilities. */
  label: string;
  score: number;
  probabilities: number[];
  /** 'shared': the model's classifier on every layer; 'per-layer': the layer's own classifier (PABEE heads). */
  head: 'shared' | 'per-layer';
  /** λ_n, p(n), CDF_n: null when the model has no Lambda head. */
  lambda: number | null;
  haltingProbability: number | null;
  cumulativeHalting: number | null;
  /** GPU time of this layer in ms: null without timestamp queries. */
  gpuTimeMs: number | null;
  exited: boolean;
}

/** `exit` event detail. */
export interface PonderExitDetail {
  text: string;
  exitLayer: number;
  numLayers: number;
  /** Layers after the exit: skipped (no work) when the library exits on the GPU. */
  skippedLayers: number;
  criterion: ExitCriterion;
  label: string;
  score: number;
}

/** `result` event detail: the answer, plus the library's full result. */
export interface PonderResultDetail {
  text: string;
  label: string;
  score: number;
  exitLayer: number;
  numLayers: number;
  criterion: ExitCriterion;
  result: RichResult;
}

/** `error` event detail. */
export interface PonderErrorDetail {
  code: PonderErrorCode | 'unknown';
  message: string;
  phase: 'load' | 'classify';
  error: unknown;
}

export interface PonderClassifierEventMap {
  progress: CustomEvent<PonderProgressDetail>;
  load: CustomEvent<PonderLoadDetail>;
  layer: CustomEvent<PonderLayerDetail>;
  exit: CustomEvent<PonderExitDetail>;
  result: CustomEvent<PonderResultDetail>;
  error: CustomEvent<PonderErrorDetail>;
}

type Phase = 'idle' | 'loading' | 'warmup' | 'ready' | 'running' | 'done' | 'error';

function percent(x: number): string {
  return `${Math.round(x * 100)}%`;
}

export class PonderClassifierElement extends LitElement {
  static override properties = {
    model: { type: String, reflect: true },
    criterion: { type: String, reflect: true },
    threshold: { type: Number, reflect: true },
    text: { type: String, reflect: true },
    loading: { type: String, reflect: true },
    placeholder: { type: String },
    phase: { state: true },
    statusText: { state: true },
    progressFraction: { state: true },
    errorText: { state: true },
    layerViews: { state: true },
    lastResult: { state: true },
  };

  static override styles = css`
    :host {
      display: block;
      box-sizing: border-box;
      font: var(--ponder-font, inherit);
      color: var(--ponder-text, inherit);
      background: var(--ponder-background, transparent);
      border: 1px solid var(--ponder-border, #c8ccd4);
      border-radius: var(--ponder-radius, 8px);
      padding: var(--ponder-padding, 0.75rem);
      min-width: 0;
    }
    :host([hidden]) {
      display: none;
    }
    form {
      display: flex;
      flex-wrap: wrap;
      gap: 0.5rem;
    }
    textarea {
      flex: 1 1 14rem;
      min-width: 0;
      font: inherit;
      padding: 0.4rem;
      border: 1px solid var(--ponder-border, #c8ccd4);
      border-radius: calc(var(--ponder-radius, 8px) / 2);
      resize: vertical;
    }
    button {
      font: inherit;
      padding: 0.4rem 0.9rem;
      border: 0;
      border-radius: calc(var(--ponder-radius, 8px) / 2);
      background: var(--ponder-accent, #1d4ed8);
      color: var(--ponder-accent-text, #fff);
      cursor: pointer;
    }
    button:disabled {
      opacity: 0.6;
      cursor: default;
    }
    button:focus-visible,
    textarea:focus-visible {
      outline: 2px solid var(--ponder-accent, #1d4ed8);
      outline-offset: 2px;
    }
    .progress {
      height: var(--ponder-progress-height, 4px);
      background: var(--ponder-progress-track, #e5e7eb);
      border-radius: 2px;
      overflow: hidden;
      margin-top: 0.5rem;
    }
    .progress > div {
      height: 100%;
      background: var(--ponder-accent, #1d4ed8);
      transition: width 0.2s;
    }
    .status {
      margin: 0.5rem 0 0;
      font-size: 0.9em;
      opacity: 0.85;
    }
    .result {
      margin-top: 0.5rem;
      display: flex;
      flex-wrap: wrap;
      align-items: baseline;
      gap: 0.25rem 0.75rem;
    }
    .label {
      font-weight: 600;
      font-size: 1.1em;
    }
    ol {
      list-style: none;
      display: flex;
      gap: 2px;
      padding: 0;
      margin: 0.5rem 0 0;
      flex-basis: 100%;
    }
    li {
      flex: 1 1 0;
      height: var(--ponder-layer-height, 10px);
      border-radius: 2px;
      background: var(--ponder-layer-pending, #e5e7eb);
    }
    li.ran {
      background: var(--ponder-layer-color, #93c5fd);
    }
    li.exit {
      background: var(--ponder-accent, #1d4ed8);
    }
    li.skipped {
      background: repeating-linear-gradient(
        45deg,
        var(--ponder-skipped, #d1d5db),
        var(--ponder-skipped, #d1d5db) 2px,
        transparent 2px,
        transparent 4px
      );
    }
    .error {
      margin: 0.5rem 0 0;
      color: var(--ponder-error, #b91c1c);
    }
    .visually-hidden {
      position: absolute;
      width: 1px;
      height: 1px;
      overflow: hidden;
      clip: rect(0 0 0 0);
      white-space: nowrap;
    }
  `;

  /** Model folder URL ('/models/palbert-sst2/') or Hugging Face Hub id ('user/model'); empty: DEFAULT_MODEL_URL. */
  declare model: string;
  /** Exit criterion: palbert, pondernet-sample, pabee, entropy, max-prob, gate, none; empty: the model's default. */
  declare criterion: string;
  /** The criterion's number: q (palbert), patience (pabee), τ (entropy, max-prob, gate), seed (pondernet-sample). */
  declare threshold: number | null;
  /** Text to classify; setting it (once loaded) classifies it. */
  declare text: string;
  /** 'lazy' (default): load when scrolled into view. 'eager': load at once. */
  declare loading: LoadingAttribute;
  /** Placeholder of the built-in text box. */
  declare placeholder: string;

  declare protected phase: Phase;
  declare protected statusText: string;
  declare protected progressFraction: number | null;
  declare protected errorText: string;
  declare protected layerViews: {
    layer: RichLayer;
    exited: boolean;
    answer: { label: string; score: number };
  }[];
  declare protected lastResult: RichResult | null;

  private loaded: PonderClassifier | null = null;
  private loadingPromise: Promise<PonderClassifier | null> | null = null;
  private loadGeneration = 0;
  private runGeneration = 0;
  private observer: IntersectionObserver | null = null;
  private started = false;
  /** The text of the last classification asked for, so that setting `text` to it again does not re-run. */
  private requestedText: string | null = null;

  constructor() {
    super();
    this.model = '';
    this.criterion = '';
    this.threshold = null;
    this.text = '';
    this.loading = 'lazy';
    this.placeholder = 'Type a sentence…';
    this.phase = 'idle';
    this.statusText = 'Waiting to load the model.';
    this.progressFraction = null;
    this.errorText = '';
    this.layerViews = [];
    this.lastResult = null;
  }

  /** The loaded classifier (shared with other elements using the same model), or null. */
  get classifier(): PonderClassifier | null {
    return this.loaded;
  }

  /** The last result, or null. */
  get result(): RichResult | null {
    return this.lastResult;
  }

  /** idle | loading | warmup | ready | running | done | error. */
  get state(): Phase {
    return this.phase;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    if (this.started) return;
    if (this.loading === 'eager' || typeof IntersectionObserver === 'undefined') {
      void this.load();
      return;
    }
    this.statusText = 'The model loads when this comes into view.';
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) void this.load();
    });
    this.observer.observe(this);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    // The shared model stays loaded for the page (other elements, or this one re-attached, reuse it).
    this.observer?.disconnect();
    this.observer = null;
  }

  /**
   * Loads the model now (a lazy element otherwise waits to be visible). Resolves true when ready; false after a
   * failure, which has been reported as an `error` event.
   */
  async load(): Promise<boolean> {
    return (await this.ensureLoaded()) !== null;
  }

  /**
   * Classifies `text` (default: the `text` property or what is typed in the box) and resolves with the result, or
   * null after a failure (reported as an `error` event; this never rejects).
   */
  async classify(text?: string): Promise<RichResult | null> {
    const input = text ?? (this.inputValue() || this.text);
    if (text !== undefined && text !== this.text) {
      this.requestedText = text;
      this.text = text;
    }
    this.requestedText = input;
    const classifier = await this.ensureLoaded();
    if (!classifier) return null;
    const run = ++this.runGeneration;
    try {
      const criterion = criterionFromAttributes(this.criterion, this.threshold);
      const supported = supportedCriteriaOf(classifier);
      if (criterion && !supported.includes(criterion.kind)) {
        throw unsupportedCriterionError(criterion.kind, supported);
      }
      this.phase = 'running';
      this.errorText = '';
      this.statusText = 'Classifying…';
      this.layerViews = [];
      const numLayers = classifier.config.numHiddenLayers;
      const head = answeringHead(
        effectiveCriterion(classifier, criterion),
        classifier.config.exitHeads?.perLayerHeads === true,
      );
      const result = await classifyWithLayers(classifier, input, {
        criterion,
        onLayer: (layer, exited) => {
          const answer = layerAnswer(layer, head, classifier.config.labels);
          if (run === this.runGeneration) this.layerViews = [...this.layerViews, { layer, exited, answer }];
          this.emit('layer', {
            text: input,
            layer: layer.layer,
            numLayers,
            label: answer.label,
            score: answer.score,
            probabilities: [...answer.probabilities],
            head,
            lambda: layer.lambda ?? null,
            haltingProbability: layer.haltingProbability ?? null,
            cumulativeHalting: layer.cumulativeHalting ?? null,
            gpuTimeMs: layer.gpuTimeMs ?? null,
            exited,
          });
        },
      });
      this.emit('exit', {
        text: input,
        exitLayer: result.exitLayer,
        numLayers: result.numLayers,
        skippedLayers: result.skippedLayers ?? result.numLayers - result.exitLayer,
        criterion: result.criterion,
        label: result.label,
        score: result.score,
        // exit and result carry the same answer; exit comes first, as soon as the layer is known.
      });
      if (run === this.runGeneration) {
        this.lastResult = result;
        this.phase = 'done';
        this.statusText =
          `${result.label} (${percent(result.score)}), answered at layer ${result.exitLayer} of ${result.numLayers}` +
          (result.device.isFallbackAdapter ? ' — on a software GPU adapter, so slowly.' : '.');
      }
      this.emit('result', {
        text: input,
        label: result.label,
        score: result.score,
        exitLayer: result.exitLayer,
        numLayers: result.numLayers,
        criterion: result.criterion,
        result,
      });
      return result;
    } catch (error) {
      if (run === this.runGeneration) this.fail(error, 'classify');
      else this.emitError(error, 'classify');
      return null;
    }
  }

  protected override updated(changed: PropertyValues<this>): void {
    if (!this.started) {
      if (changed.has('loading') && this.loading === 'eager' && this.isConnected) void this.load();
      return;
    }
    if (changed.has('model') && changed.get('model') !== undefined) {
      this.loaded = null;
      this.loadingPromise = null;
      this.lastResult = null;
      this.layerViews = [];
      void this.ensureLoaded().then((c) => {
        if (c && this.text.trim() !== '') void this.classify(this.text);
      });
      return;
    }
    if (!this.loaded) return;
    const textChanged = changed.has('text') && this.text !== this.requestedText;
    const criterionChanged = changed.has('criterion') || changed.has('threshold');
    if ((textChanged || (criterionChanged && this.requestedText !== null)) && this.text.trim() !== '') {
      void this.classify(this.text);
    }
  }

  protected override render() {
    const busy = this.phase === 'loading' || this.phase === 'warmup' || this.phase === 'running';
    const showProgress = this.phase === 'loading' || this.phase === 'warmup';
    return html`
      <slot name="input">
        <form part="form" @submit=${this.onSubmit}>
          <label class="visually-hidden" for="text">Text to classify</label>
          <textarea
            id="text"
            part="input"
            rows="2"
            .value=${this.text}
            placeholder=${this.placeholder}
            @keydown=${this.onKeyDown}
          ></textarea>
          <button part="button" type="submit" ?disabled=${busy || this.phase === 'idle'}>Classify</button>
        </form>
      </slot>
      ${
        showProgress
          ? html`<div
              class="progress"
              part="progress"
              role="progressbar"
              aria-label="Model download"
              aria-valuemin="0"
              aria-valuemax="100"
              aria-valuenow=${this.progressFraction === null ? nothing : Math.round(this.progressFraction * 100)}
            >
              <div part="progress-bar" style="width: ${percent(this.progressFraction ?? 0.05)}"></div>
            </div>`
          : nothing
      }
      <p class="status" part="status" role="status" aria-live="polite">${this.statusText}</p>
      <slot name="result">${this.renderResult()}</slot>
      ${this.errorText ? html`<p class="error" part="error" role="alert">${this.errorText}</p>` : nothing}
    `;
  }

  private renderResult() {
    const result = this.lastResult;
    const numLayers = this.loaded?.config.numHiddenLayers ?? 0;
    if (!result && this.layerViews.length === 0) return nothing;
    const exitLayer = result?.exitLayer ?? this.layerViews.find((v) => v.exited)?.layer.layer;
    const cells = Array.from({ length: numLayers }, (_, i) => {
      const n = i + 1;
      const view = this.layerViews.find((v) => v.layer.layer === n);
      const skipped = exitLayer !== undefined && n > exitLayer;
      const cls = view ? (view.exited ? 'exit' : 'ran') : skipped ? 'skipped' : '';
      const part = `layer${cls ? ` layer-${cls}` : ''}`;
      const desc = view
        ? `Layer ${n}: ${view.answer.label} ${percent(view.answer.score)}${view.exited ? ' (exit)' : ''}`
        : skipped
          ? `Layer ${n}: skipped`
          : `Layer ${n}: not run yet`;
      return html`<li class=${cls} part=${part} title=${desc} aria-label=${desc}></li>`;
    });
    return html`<div class="result" part="result">
      ${
        result
          ? html`<span class="label" part="label">${result.label}</span>
              <span part="score">${percent(result.score)}</span>
              <span part="exit">layer ${result.exitLayer} of ${result.numLayers}</span>`
          : nothing
      }
      <ol part="layers" aria-label="Layers: which ran, where it exited, which were skipped">
        ${cells}
      </ol>
    </div>`;
  }

  private onSubmit(event: Event): void {
    event.preventDefault();
    void this.classify(this.inputValue());
  }

  private onKeyDown(event: KeyboardEvent): void {
    // Enter classifies; Shift+Enter keeps a new line.
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      void this.classify(this.inputValue());
    }
  }

  private inputValue(): string {
    const box = this.renderRoot?.querySelector?.('textarea');
    return box instanceof HTMLTextAreaElement ? box.value : '';
  }

  private ensureLoaded(): Promise<PonderClassifier | null> {
    if (this.loaded) return Promise.resolve(this.loaded);
    if (this.loadingPromise) return this.loadingPromise;
    this.started = true;
    this.observer?.disconnect();
    this.observer = null;
    const generation = ++this.loadGeneration;
    const model = this.model.trim() || DEFAULT_MODEL_URL;
    this.loadingPromise = this.loadModel(model, generation);
    return this.loadingPromise;
  }

  private async loadModel(model: string, generation: number): Promise<PonderClassifier | null> {
    const current = () => generation === this.loadGeneration;
    this.phase = 'loading';
    this.errorText = '';
    this.progressFraction = null;
    this.statusText = 'Loading the model…';
    const sizes = new Map<string, { loaded: number; total: number | undefined }>();
    const onProgress = (event: LoadProgressEvent) => {
      if (!current()) return;
      if (event.status === 'download') sizes.set(event.file, { loaded: event.loaded, total: event.total });
      else sizes.set(event.file, { loaded: event.bytes, total: event.bytes });
      let loaded = 0;
      let total = 0;
      let known = true;
      for (const s of sizes.values()) {
        loaded += s.loaded;
        if (s.total === undefined) known = false;
        else total += s.total;
      }
      const fraction = known && total > 0 ? Math.min(1, loaded / total) : null;
      const weightsDone = event.file === 'model.safetensors' && event.status !== 'download';
      this.progressFraction = fraction;
      if (weightsDone) {
        this.phase = 'warmup';
        this.statusText = 'Preparing the GPU pipelines…';
      } else if (event.status === 'download') {
        this.statusText = `Downloading the model… ${fraction === null ? `${Math.round(loaded / 1024)} KB` : percent(fraction)}`;
      }
      this.emit('progress', {
        phase: event.status === 'download' ? 'download' : event.status === 'cached' ? 'cached' : 'warmup',
        file: event.file,
        loaded,
        total: known ? total : null,
        fraction,
      });
    };
    try {
      const classifier = await loadSharedClassifier(model, onProgress);
      if (!current()) return null;
      this.loaded = classifier;
      this.phase = 'ready';
      this.progressFraction = null;
      this.statusText = classifier.device.isFallbackAdapter
        ? 'Ready — on a software GPU adapter, so classification is slow.'
        : 'Ready.';
      this.emit('load', {
        model,
        numLayers: classifier.config.numHiddenLayers,
        labels: [...classifier.config.labels],
        supportedCriteria: supportedCriteriaOf(classifier),
        device: classifier.device,
        weightDtype: classifier.weightDtype,
      });
      if (this.text.trim() !== '' && this.requestedText === null) void this.classify(this.text);
      return classifier;
    } catch (error) {
      if (current()) {
        this.loadingPromise = null;
        this.fail(error, 'load');
      }
      return null;
    }
  }

  private fail(error: unknown, phase: 'load' | 'classify'): void {
    const detail = this.emitError(error, phase);
    this.phase = 'error';
    this.progressFraction = null;
    this.errorText = detail.message;
    this.statusText = phase === 'load' ? 'The model could not be loaded.' : 'Classification failed.';
  }

  private emitError(error: unknown, phase: 'load' | 'classify'): PonderErrorDetail {
    const code: PonderErrorDetail['code'] = isPonderError(error)
      ? error.code
      : ((error as { code?: PonderErrorCode })?.code ?? 'unknown');
    const message = describeError(error, code, this.model.trim() || DEFAULT_MODEL_URL);
    const detail: PonderErrorDetail = { code, message, phase, error };
    this.emit('error', detail);
    return detail;
  }

  private emit<K extends keyof PonderClassifierEventMap>(
    type: K,
    detail: PonderClassifierEventMap[K]['detail'],
  ): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}

/** A message for people: the library's text, with the likely cause for the common cases. */
export function describeError(error: unknown, code: string, model: string): string {
  const text = error instanceof Error ? error.message : String(error);
  if (code === 'fetch-failed' && /\b404\b|not found/i.test(text)) {
    return `Model not found at '${model}': ${text}`;
  }
  return text;
}
