import type { Page } from '@playwright/test';
import type { Harness } from './harness/index';

/** Opens the harness page and waits until its functions are installed. */
export async function openHarness(page: Page): Promise<void> {
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.log(`[browser] ${msg.text()}`);
  });
  await page.goto('/e2e/harness.html');
  await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
}

/** Calls one harness function in the page with JSON arguments and returns its JSON result. */
export async function callHarness<K extends keyof Harness>(
  page: Page,
  name: K,
  ...args: Parameters<Harness[K]>
): Promise<Awaited<ReturnType<Harness[K]>>> {
  return page.evaluate(
    async ([fnName, fnArgs]) => {
      const h = (window as unknown as { harness: Record<string, (...a: unknown[]) => Promise<unknown>> })
        .harness;
      return h[fnName as string]!(...(fnArgs as unknown[]));
    },
    [name, args] as const,
  ) as Promise<Awaited<ReturnType<Harness[K]>>>;
}
