import { expect, test, type Page } from '@playwright/test';

// The demo page (index.html) on a tiny random-weight model (tests/fixtures/demo-model: the bert-odd golden
// checkpoint, 5 layers, with the hand-written WordPiece tokenizer and labels negative/positive). It has no exit
// heads, so max-probability is the criterion that exits early, and Q-exit must be refused with a clear message.
const MODEL = '/tests/fixtures/demo-model/';
const PONDER_MODEL = '/tests/fixtures/demo-model-ponder/';

function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.log(`[browser] ${msg.text()}`);
  });
  return errors;
}

async function openDemo(page: Page, query: string): Promise<void> {
  await page.goto(`/?${query}`);
  await page.waitForFunction(() => (window as unknown as { demoReady?: boolean }).demoReady === true);
}

async function waitForModel(page: Page): Promise<void> {
  await expect(page.locator('#model-status')).toContainText('Ready', { timeout: 120_000 });
}

async function exitLayerAfter(page: Page, action: () => Promise<void>): Promise<number> {
  const before = await page.locator('#exit-layer').count();
  await action();
  if (before > 0) await expect(page.locator('#answer .hint')).toHaveCount(0, { timeout: 60_000 });
  const exit = page.locator('#exit-layer');
  await expect(exit).toBeVisible({ timeout: 60_000 });
  return Number(await exit.getAttribute('data-exit-layer'));
}

test('demo: loads the model, classifies, shows the exit layer and the per-layer charts; a lower threshold exits earlier', async ({
  page,
}, testInfo) => {
  const errors = collectErrors(page);
  await page.setViewportSize({ width: 1280, height: 1000 });
  await openDemo(page, `model=${encodeURIComponent(MODEL)}&criterion=max-prob&threshold=0.99`);
  await waitForModel(page);
  await expect(page.locator('#model-info')).toContainText('5 layers');
  // The model has no Lambda head: the Q-exit and PonderNet radios are disabled and say why.
  const palbert = page.locator('input[name="criterion"][value="palbert"]');
  await expect(palbert).toBeDisabled();
  await expect(page.locator('label', { has: palbert })).toHaveAttribute('title', /Lambda head/);
  await expect(page.locator('input[name="criterion"][value="max-prob"]')).toBeChecked();

  await page.locator('#text').fill('the quick brown fox jumps over the dog.');
  const high = await exitLayerAfter(page, () => page.locator('#classify-button').click());
  await expect(page.locator('#verdict')).toContainText(/negative|positive/);
  await expect(page.locator('#chart-probs svg').first()).toBeVisible();
  await expect(page.locator('#chart-criterion svg').first()).toBeVisible();
  await expect(page.locator('#layer-table tr')).toHaveCount(6); // header + 5 layers
  expect(high).toBe(5); // τ = 0.99 is never reached by a random 2-class model

  // Moving the threshold re-runs at once; τ = 0.5 (the lowest) exits at the first layer.
  const low = await exitLayerAfter(page, () => page.locator('#threshold').fill('0.5'));
  console.log(`max-prob exit layer: τ=0.99 → ${high}, τ=0.5 → ${low}`);
  expect(low).toBeLessThan(high);
  expect(low).toBe(1);
  await expect(page.locator('#layer-table tr.skipped')).toHaveCount(4);

  // Full depth ignores the threshold.
  const full = await exitLayerAfter(page, () =>
    page.locator('input[name="criterion"][value="none"]').check(),
  );
  expect(full).toBe(5);

  // Keyboard: a focused chart reads out a layer.
  await page.locator('#chart-probs').focus();
  await page.keyboard.press('ArrowRight');
  await expect(page.locator('#layer-readout')).toContainText('Layer 1');

  // Dataset mode on the built-in sample: trade-off curve and exit histogram.
  await page.locator('input[name="criterion"][value="max-prob"]').check();
  await page.locator('#dataset-sample').click();
  await expect(page.locator('#dataset-summary')).toBeVisible({ timeout: 120_000 });
  await expect(page.locator('#chart-tradeoff svg').first()).toBeVisible();
  await expect(page.locator('#chart-histogram svg').first()).toBeVisible();
  await expect(page.locator('#dataset-summary')).toContainText('accuracy');

  const shot = testInfo.outputPath('demo.png');
  await page.screenshot({ path: shot, fullPage: true });
  await testInfo.attach('demo', { path: shot, contentType: 'image/png' });
  // The narrowest supported width still lays out (no horizontal overflow of the page).
  await page.setViewportSize({ width: 360, height: 800 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const narrow = testInfo.outputPath('demo-360.png');
  await page.screenshot({ path: narrow, fullPage: true });
  await testInfo.attach('demo-360px', { path: narrow, contentType: 'image/png' });
  expect(overflow).toBeLessThanOrEqual(0);
  expect(errors).toEqual([]);
});

test('demo: the shipped model (public/models/palbert-sst2/) loads by default and answers with Q-exit', async ({
  page,
}, testInfo) => {
  // The real model on the software adapter: about a minute (12 ALBERT layers, hidden 512, pipelines compiled once).
  test.setTimeout(300_000);
  const errors = collectErrors(page);
  const text = 'A warm, funny film that never wastes a minute of its running time.';
  await openDemo(page, `text=${encodeURIComponent(text)}`);
  await expect(page.locator('#default-model-url')).toHaveText('models/palbert-sst2/');
  await waitForModel(page);
  await expect(page.locator('#model-info')).toContainText('ALBERT, 12 layers');
  // Its config names Q-exit (q = 0.5) as the default criterion.
  await expect(page.locator('input[name="criterion"][value="palbert"]')).toBeChecked();
  await expect(page.locator('#exit-layer')).toBeVisible({ timeout: 180_000 });
  const exit = Number(await page.locator('#exit-layer').getAttribute('data-exit-layer'));
  const verdict = await page.locator('#verdict').innerText();
  console.log(`shipped model: "${text}" → ${verdict} at layer ${exit} of 12`);
  expect(verdict).toContain('positive');
  expect(exit).toBeGreaterThanOrEqual(1);
  expect(exit).toBeLessThanOrEqual(12);
  await expect(page.locator('#chart-exit svg').first()).toBeVisible();
  await expect(page.locator('#chart-exit')).toContainText('q = 0.5');
  const shot = testInfo.outputPath('demo-shipped-model.png');
  await page.screenshot({ path: shot, fullPage: true });
  await testInfo.attach('demo-shipped-model', { path: shot, contentType: 'image/png' });
  expect(errors).toEqual([]);
});

test('demo: Q-exit on a model with a Lambda head draws λ_n, p(n), CDF_n against q; a lower q exits earlier', async ({
  page,
}) => {
  const errors = collectErrors(page);
  // tests/fixtures/demo-model-ponder: the same tiny BERT plus random PALBERT λ head and PABEE per-layer heads.
  await openDemo(
    page,
    `model=${encodeURIComponent(PONDER_MODEL)}&criterion=palbert&threshold=0.99&text=hello%20world`,
  );
  await waitForModel(page);
  for (const kind of ['palbert', 'pondernet-sample', 'pabee']) {
    await expect(page.locator(`input[name="criterion"][value="${kind}"]`)).toBeEnabled();
  }
  await expect(page.locator('#exit-layer')).toBeVisible({ timeout: 60_000 });
  const high = Number(await page.locator('#exit-layer').getAttribute('data-exit-layer'));
  await expect(page.locator('#chart-exit svg').first()).toBeVisible();
  await expect(page.locator('#chart-exit')).toContainText('CDF_n');
  await expect(page.locator('#chart-exit')).toContainText('q = 0.99');
  const low = await exitLayerAfter(page, () => page.locator('#threshold').fill('0.01'));
  console.log(`palbert exit layer: q=0.99 → ${high}, q=0.01 → ${low}`);
  expect(low).toBe(1); // CDF_1 = λ_1 > 0.01 for any λ_1 the random head gives (it is far from 0)
  expect(low).toBeLessThan(high);
  // The λ column of the table is filled for the layers that ran.
  await expect(page.locator('#layer-table tr.exit td').nth(3)).not.toHaveText('—');
  expect(errors).toEqual([]);
});

test('demo: text containing HTML is shown as text', async ({ page }) => {
  const errors = collectErrors(page);
  const evil = '<img src=x onerror="window.__xss=1"> <b>bold</b> the fox';
  await openDemo(page, `model=${encodeURIComponent(MODEL)}&criterion=none`);
  await waitForModel(page);
  await page.locator('#text').fill(evil);
  await exitLayerAfter(page, () => page.locator('#classify-button').click());
  await expect(page.locator('#answer-text')).toHaveText(`“${evil}”`);
  expect(await page.locator('#answer img, #answer b').count()).toBe(0);
  expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  expect(errors).toEqual([]);
});

test('demo: a criterion the model has no head for gives a specific message, and the page keeps working', async ({
  page,
}) => {
  const errors = collectErrors(page);
  await openDemo(page, `model=${encodeURIComponent(MODEL)}&criterion=palbert&text=hello%20world`);
  await waitForModel(page);
  const msg = page.locator('[data-notice="criterion"]');
  await expect(msg).toContainText("cannot use the 'palbert' exit criterion");
  await expect(msg).toContainText('Lambda head');
  // It fell back to full depth and still classifies.
  await expect(page.locator('input[name="criterion"][value="none"]')).toBeChecked();
  await expect(page.locator('#exit-layer')).toHaveAttribute('data-exit-layer', '5', { timeout: 60_000 });
  expect(errors).toEqual([]);
});

test('demo: a broken model URL says "Model not found", and the page keeps working', async ({ page }) => {
  const errors = collectErrors(page);
  await openDemo(page, `model=${encodeURIComponent('/tests/fixtures/no-such-model/')}`);
  const msg = page.locator('[data-notice="model"]');
  await expect(msg).toContainText('Model not found', { timeout: 60_000 });
  await expect(msg).toContainText('no-such-model');
  await expect(page.locator('#load-model')).toBeEnabled();
  // Still responsive: an example fills the box and asks for a model instead of failing.
  await page.locator('#examples button').first().click();
  await expect(page.locator('#text')).not.toHaveValue('');
  await expect(page.locator('[data-notice="classify"]')).toContainText('Load a model first');
  expect(errors).toEqual([]);
});

test('demo: without WebGPU it says so and what to do, and the page keeps working', async ({ page }) => {
  const errors = collectErrors(page);
  await page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
  });
  await openDemo(page, `model=${encodeURIComponent(MODEL)}`);
  const msg = page.locator('[data-notice="model"]');
  await expect(msg).toContainText('no WebGPU');
  await expect(msg).toContainText('Chrome or Edge');
  await expect(page.locator('#model-status')).toContainText('no WebGPU');
  // Trying anyway gives the same specific message, not a crash.
  await page.locator('#load-model').click();
  await expect(msg).toContainText('no WebGPU');
  await page.locator('input[name="criterion"][value="max-prob"]').check();
  await expect(page.locator('#threshold')).toBeEnabled();
  expect(errors).toEqual([]);
});

test('demo: a model from local files (file picker, then drag and drop) and an uploaded TSV', async ({
  page,
}) => {
  const errors = collectErrors(page);
  // Start from a model URL that does not exist, so the working model can only come from the files.
  await openDemo(page, `model=${encodeURIComponent('/tests/fixtures/no-such-model/')}`);
  await expect(page.locator('[data-notice="model"]')).toContainText('Model not found', { timeout: 60_000 });
  const dir = 'tests/fixtures/demo-model/';
  await page
    .locator('#model-files')
    .setInputFiles(
      ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].map((f) => dir + f),
    );
  await waitForModel(page);
  await expect(page.locator('#model-status')).toContainText('local files');
  await expect(page.locator('[data-notice="model"]')).toHaveCount(0);
  await page.locator('input[name="criterion"][value="max-prob"]').check();
  const tsv =
    'sentence\tlabel\nthe quick brown fox .\t1\nhello world !\t0\nthe dog jumps over the fox\t1\nun cafe\tpositive\n';
  await page
    .locator('#dataset-file')
    .setInputFiles({ name: 'tiny.tsv', mimeType: 'text/tab-separated-values', buffer: Buffer.from(tsv) });
  await expect(page.locator('#dataset-summary')).toContainText('accuracy', { timeout: 60_000 });
  await expect(page.locator('#dataset-status')).toContainText('tiny.tsv: 4 sentences');
  await expect(page.locator('#chart-histogram svg').first()).toBeVisible();

  // Drag and drop: the same files dropped on the page load the model again.
  await page.locator('input[name="source"][value="default"]').check();
  const transfer = await page.evaluateHandle(async (base) => {
    const dt = new DataTransfer();
    for (const name of ['config.json', 'model.safetensors', 'tokenizer.json']) {
      dt.items.add(new File([await (await fetch(base + name)).blob()], name));
    }
    return dt;
  }, '/' + dir);
  await page.locator('#drop-zone').dispatchEvent('drop', { dataTransfer: transfer });
  await expect(page.locator('input[name="source"][value="local"]')).toBeChecked();
  await expect(page.locator('#local-files')).toContainText('model.safetensors');
  await waitForModel(page);
  expect(errors).toEqual([]);
});
