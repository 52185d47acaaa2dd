/**
 * One loaded classifier per model URL for the whole page, on the one shared GPU device (getSharedGpu): ten
 * <ponder-classifier> elements naming the same model download it once, upload it once and queue their runs on it.
 * Every caller still hears the download's progress, also when it joins a load already under way.
 */
import { loadClassifier, type PonderClassifier } from '../classifier';
import type { LoadProgressEvent } from '../loading';

/**
 * The shipped model's folder, relative to the page (public/models/palbert-sst2/ is served at the site root): what
 * the demo page opens and what an element without a `model` attribute loads.
 */
export const DEFAULT_MODEL_URL = 'models/palbert-sst2/';

type Listener = (event: LoadProgressEvent) => void;

interface Entry {
  promise: Promise<PonderClassifier>;
  listeners: Set<Listener>;
  /** Events so far, replayed to late joiners so their progress bars start where the download is. */
  history: LoadProgressEvent[];
}

const models = new Map<string, Entry>();

/** The cache key: URLs made absolute against the page (so './m/' and '/m/' meet), Hub ids as written. */
export function modelKey(model: string): string {
  const trimmed = model.trim();
  const urlLike = /^[a-z][a-z0-9+.-]*:/i.test(trimmed) || /^\.{0,2}\//.test(trimmed) || trimmed.endsWith('/');
  if (!urlLike || typeof document === 'undefined') return trimmed;
  return new URL(trimmed, document.baseURI).href;
}

/**
 * Loads (or joins the load of) the classifier for `model`. A failed load is forgotten, so a later call retries
 * (after the user fixes the URL, enables WebGPU, ...).
 */
export function loadSharedClassifier(model: string, onProgress?: Listener): Promise<PonderClassifier> {
  const key = modelKey(model);
  let entry = models.get(key);
  if (!entry) {
    const listeners = new Set<Listener>();
    const history: LoadProgressEvent[] = [];
    const promise = loadClassifier(key, {
      onProgress: (event) => {
        history.push(event);
        for (const listener of listeners) listener(event);
      },
    });
    const created: Entry = { promise, listeners, history };
    entry = created;
    models.set(key, created);
    promise.then(
      () => {
        listeners.clear();
        history.length = 0;
      },
      () => {
        if (models.get(key) === created) models.delete(key);
      },
    );
  }
  if (onProgress) {
    for (const event of entry.history) onProgress(event);
    entry.listeners.add(onProgress);
    const listeners = entry.listeners;
    const done = () => listeners.delete(onProgress);
    entry.promise.then(done, done);
  }
  return entry.promise;
}

/** How many distinct models are loaded or loading (for tests and diagnostics). */
export function sharedModelCount(): number {
  return models.size;
}

/** Frees every shared model's GPU buffers; elements load again on their next use. */
export async function disposeSharedModels(): Promise<void> {
  const entries = [...models.values()];
  models.clear();
  for (const entry of entries) {
    try {
      (await entry.promise).dispose();
    } catch {
      // A load that failed has nothing to free.
    }
  }
}
