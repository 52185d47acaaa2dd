import { expect, test } from '@playwright/test';

// The built library (npm run build → dist/) in a plain page served by a static server: no Vite.
test('dist/ponder-web.js works from a plain <script type="module"> page', async ({ page }) => {
  await page.goto('http://127.0.0.1:4175/e2e/plain/dist.html');
  await page.waitForFunction(() => (window as unknown as { distReady?: boolean }).distReady === true);
  const r = await page.evaluate(() =>
    (window as unknown as { runDist: (f: string) => Promise<Record<string, unknown>> }).runDist('bert-odd'),
  );
  console.log(JSON.stringify(r));
  expect(r.maxRel as number).toBeLessThanOrEqual(1e-4);
  expect(r.layers).toBe(5);
  // First load downloads (with progress), second comes from Cache Storage.
  expect(r.eventsFirst).toContain('download:model.safetensors');
  expect(r.eventsFirst).toContain('done:model.safetensors');
  expect(r.eventsSecond).toContain('cached:model.safetensors');
  expect(r.eventsSecond).not.toContain('download:model.safetensors');
  expect((r.missing as { code: string }).code).toBe('fetch-failed');
});
