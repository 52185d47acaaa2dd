import { expect, test } from '@playwright/test';
import { callHarness, openHarness } from './helpers';

// No skip: without a WebGPU adapter this test fails, and so does CI.
test('Chromium gives a WebGPU adapter and we report whether it is a software one', async ({ page }) => {
  await openHarness(page);
  const adapter = await callHarness(page, 'describeAdapter');
  console.log('adapter:', JSON.stringify(adapter));
  expect(adapter.vendor.length + adapter.architecture.length).toBeGreaterThan(0);
  expect(typeof adapter.isFallbackAdapter).toBe('boolean');
});
