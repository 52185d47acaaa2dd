import { expect, test, type Page } from '@playwright/test';

// <ponder-classifier> from the built library (dist/, `npm run build`) in the plain examples page, served by the
// static server: no bundler, no framework. The model is the tiny test model (5 layers, no exit heads).
const BASE = 'http://127.0.0.1:4175';
const MODEL = '/tests/fixtures/demo-model/';

interface Logged {
  id: string;
  type: string;
  detail: Record<string, unknown>;
}

/** Records every element event (and counts GPU devices requested) from before the page's scripts run. */
async function instrument(page: Page, options: { noWebGpu?: boolean } = {}): Promise<string[]> {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.log(`[browser] ${msg.text()}`);
  });
  await page.addInitScript((noWebGpu: boolean) => {
    const w = window as unknown as { events: unknown[]; devicesRequested: number };
    w.events = [];
    w.devicesRequested = 0;
    if (noWebGpu) {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
    } else if (typeof GPUAdapter !== 'undefined') {
      const original = GPUAdapter.prototype.requestDevice;
      GPUAdapter.prototype.requestDevice = function (descriptor?: GPUDeviceDescriptor) {
        w.devicesRequested++;
        return original.call(this, descriptor);
      };
    }
    for (const type of ['progress', 'load', 'layer', 'exit', 'result', 'error']) {
      document.addEventListener(
        type,
        (event) => {
          const target = event.target as HTMLElement;
          if (target?.localName !== 'ponder-classifier') return;
          const detail = { ...(event as CustomEvent).detail } as Record<string, unknown>;
          delete detail.result; // the full result is big; its fields are checked separately
          delete detail.error;
          w.events.push({ id: target.id, type, detail });
        },
        true,
      );
    }
  }, options.noWebGpu === true);
  return errors;
}

async function eventsOf(page: Page, id: string): Promise<Logged[]> {
  const all = await page.evaluate(() => (window as unknown as { events: Logged[] }).events);
  return all.filter((e) => e.id === id && e.type !== 'progress');
}

async function waitForEvent(page: Page, id: string, type: string, timeout = 120_000): Promise<void> {
  await page.waitForFunction(
    ([i, t]) => (window as unknown as { events: Logged[] }).events.some((e) => e.id === i && e.type === t),
    [id, type] as const,
    { timeout },
  );
}

test('element: two elements in the plain page share one device and one model, fire load, layer…, exit, result in order', async ({
  page,
}) => {
  const errors = await instrument(page);
  const configFetches: string[] = [];
  page.on('request', (r) => {
    if (r.url().endsWith('/demo-model/config.json')) configFetches.push(r.url());
  });
  await page.goto(`${BASE}/examples/index.html?model=${encodeURIComponent(MODEL)}`);
  // #first has text and loading="eager": it loads and classifies by itself.
  await waitForEvent(page, 'first', 'result');
  const first = await eventsOf(page, 'first');
  const order = first.map((e) => e.type).join(',');
  console.log(`#first events: ${order}`);
  expect(order).toMatch(/^load(,layer)+,exit,result$/);
  const layers = first.filter((e) => e.type === 'layer');
  const exit = first.find((e) => e.type === 'exit')!.detail;
  const result = first.find((e) => e.type === 'result')!.detail;
  expect(layers.map((e) => e.detail.layer)).toEqual(layers.map((_, i) => i + 1));
  expect(layers.at(-1)!.detail.exited).toBe(true);
  expect(layers.slice(0, -1).every((e) => e.detail.exited === false)).toBe(true);
  expect(exit.exitLayer).toBe(layers.length);
  expect(result.exitLayer).toBe(exit.exitLayer);
  expect(result.numLayers).toBe(5);
  expect(['negative', 'positive']).toContain(result.label);
  expect(first[0]!.detail).toMatchObject({ numLayers: 5, labels: ['negative', 'positive'] });

  // #second is lazy; scrolling it into view loads it (from the shared cache), then classify() runs it.
  await page.locator('#second').scrollIntoViewIfNeeded();
  await waitForEvent(page, 'second', 'load');
  const r2 = await page.evaluate(async () => {
    const el = document.getElementById('second') as HTMLElement & {
      classify(t: string): Promise<{ exitLayer: number } | null>;
      classifier: unknown;
    };
    const first = document.getElementById('first') as HTMLElement & { classifier: unknown };
    const r = await el.classify('hello world');
    return { exitLayer: r?.exitLayer ?? null, sameClassifier: el.classifier === first.classifier };
  });
  const second = (await eventsOf(page, 'second')).map((e) => e.type).join(',');
  console.log(`#second events: ${second}`);
  expect(second).toMatch(/^load(,layer)+,exit,result$/);
  expect(r2.sameClassifier).toBe(true);
  expect(
    await page.evaluate(() => (window as unknown as { devicesRequested: number }).devicesRequested),
  ).toBe(1);
  expect(configFetches.length).toBeLessThanOrEqual(1); // 0 when Cache Storage already had it

  // The result is visible in the element's shadow DOM, with a status for screen readers.
  await expect(page.locator('#first').locator('[part="label"]')).toHaveText(result.label as string);
  await expect(page.locator('#first').locator('[role="status"]')).toContainText(
    `layer ${result.exitLayer} of 5`,
  );
  expect(errors).toEqual([]);
});

test('element: text containing HTML stays text; errors become events and visible messages; it keeps working', async ({
  page,
}) => {
  const errors = await instrument(page);
  await page.goto(`${BASE}/examples/index.html?model=${encodeURIComponent(MODEL)}`);
  await waitForEvent(page, 'first', 'load');
  const evil = '<img src=x onerror="window.__xss=1"><b>bold</b> fox';
  await page.evaluate(
    ([model, text]) => {
      const add = (id: string, attrs: Record<string, string>) => {
        const el = document.createElement('ponder-classifier');
        el.id = id;
        for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
        document.body.prepend(el);
      };
      add('evil', { model, text, loading: 'eager', criterion: 'none' });
      add('missing', { model: '/tests/fixtures/no-such-model/', loading: 'eager' });
      add('nohead', { model, loading: 'eager', criterion: 'palbert', threshold: '0.5', text: 'hello world' });
    },
    [MODEL, evil] as const,
  );
  await waitForEvent(page, 'evil', 'result');
  const evilEl = page.locator('#evil');
  await expect(evilEl.locator('textarea')).toHaveValue(evil);
  expect(await evilEl.locator('img, b').count()).toBe(0);
  expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  const evilResult = (await eventsOf(page, 'evil')).find((e) => e.type === 'result')!;
  expect(evilResult.detail.text).toBe(evil);

  await waitForEvent(page, 'missing', 'error');
  const missing = (await eventsOf(page, 'missing')).find((e) => e.type === 'error')!.detail;
  expect(missing).toMatchObject({ code: 'fetch-failed', phase: 'load' });
  await expect(page.locator('#missing').locator('[part="error"]')).toContainText('Model not found');

  await waitForEvent(page, 'nohead', 'error');
  const nohead = (await eventsOf(page, 'nohead')).find((e) => e.type === 'error')!.detail;
  expect(nohead).toMatchObject({ code: 'unsupported-criterion', phase: 'classify' });
  await expect(page.locator('#nohead').locator('[part="error"]')).toContainText('Lambda head');
  // Switching to a criterion the model has re-runs and succeeds.
  await page.evaluate(() => document.getElementById('nohead')!.setAttribute('criterion', 'max-prob'));
  await waitForEvent(page, 'nohead', 'result');
  await expect(page.locator('#nohead').locator('[part="error"]')).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('element: without WebGPU it fires error no-webgpu and shows what to do', async ({ page }) => {
  const errors = await instrument(page, { noWebGpu: true });
  await page.goto(`${BASE}/examples/index.html?model=${encodeURIComponent(MODEL)}`);
  await waitForEvent(page, 'first', 'error');
  const detail = (await eventsOf(page, 'first')).find((e) => e.type === 'error')!.detail;
  expect(detail).toMatchObject({ code: 'no-webgpu', phase: 'load' });
  await expect(page.locator('#first').locator('[part="error"]')).toContainText('WebGPU is not available');
  // classify() resolves null instead of throwing.
  expect(
    await page.evaluate(() =>
      (document.getElementById('first') as unknown as { classify(t: string): Promise<unknown> }).classify(
        'hi',
      ),
    ),
  ).toBeNull();
  expect(errors).toEqual([]);
});

test('element: Q-exit on a model with a Lambda head: layer events carry λ, p(n), CDF; a lower threshold exits earlier', async ({
  page,
}) => {
  const errors = await instrument(page);
  await page.goto(
    `${BASE}/examples/index.html?model=${encodeURIComponent('/tests/fixtures/demo-model-ponder/')}`,
  );
  await waitForEvent(page, 'first', 'load');
  const load = (await eventsOf(page, 'first')).find((e) => e.type === 'load')!.detail;
  expect(load.supportedCriteria).toEqual(expect.arrayContaining(['palbert', 'pondernet-sample', 'pabee']));
  const r = await page.evaluate(async () => {
    type El = HTMLElement & { classify(t: string): Promise<{ exitLayer: number } | null> };
    const el = document.getElementById('second') as El;
    el.setAttribute('criterion', 'palbert');
    el.setAttribute('threshold', '0.99');
    const high = await el.classify('hello world');
    el.setAttribute('threshold', '0.01');
    const low = await el.classify('hello world');
    return { high: high?.exitLayer ?? null, low: low?.exitLayer ?? null };
  });
  console.log(`element palbert: q=0.99 → ${r.high}, q=0.01 → ${r.low}`);
  expect(r.low).toBe(1);
  expect(r.low!).toBeLessThan(r.high!);
  const layers = (await eventsOf(page, 'second')).filter((e) => e.type === 'layer');
  expect(layers.length).toBeGreaterThan(0);
  for (const l of layers) {
    expect(typeof l.detail.lambda).toBe('number');
    expect(typeof l.detail.cumulativeHalting).toBe('number');
    expect(typeof l.detail.haltingProbability).toBe('number');
    expect(l.detail.head).toBe('shared'); // Q-exit answers with the shared classifier
  }
  // Max-prob on a model with per-layer heads answers with the exit layer's own head, and the layer events say so:
  // the exit layer's event carries the same label and score as the result.
  await page.evaluate(() => document.getElementById('second')!.setAttribute('criterion', 'max-prob'));
  await page.evaluate(() => document.getElementById('second')!.setAttribute('threshold', '0.6'));
  const before = (await eventsOf(page, 'second')).length;
  await page.evaluate(() =>
    (document.getElementById('second') as unknown as { classify(t: string): Promise<unknown> }).classify(
      'hello world',
    ),
  );
  const after = (await eventsOf(page, 'second')).slice(before);
  // Runs go one after another, so the last exit layer and the last result belong to the same run.
  const exitLayer = after.filter((e) => e.type === 'layer' && e.detail.exited).at(-1)!.detail;
  const result = after.filter((e) => e.type === 'result').at(-1)!.detail;
  expect(exitLayer.head).toBe('per-layer');
  expect(exitLayer.label).toBe(result.label);
  expect(exitLayer.score).toBeCloseTo(result.score as number, 6);
  expect(errors).toEqual([]);
});
