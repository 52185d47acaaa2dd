import { defineConfig } from '@playwright/test';

const port = 4174;

// The WebGPU tests run in Debian's Chromium (headless) on the SwiftShader adapter. Chromium is
// never downloaded: CHROMIUM_PATH or /usr/bin/chromium is used.
export default defineConfig({
  testDir: 'e2e',
  timeout: 240_000,
  workers: 1,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--enable-unsafe-webgpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: [
    {
      command: `npx vite --host 127.0.0.1 --port ${port} --strictPort`,
      url: `http://127.0.0.1:${port}/e2e/harness.html`,
      reuseExistingServer: !process.env.CI,
      timeout: 60_000,
    },
    {
      // Plain static files (for the dist/ test): what a user's own server would do.
      command: 'node e2e/static-server.mjs 4175',
      url: 'http://127.0.0.1:4175/e2e/plain/dist.html',
      reuseExistingServer: !process.env.CI,
      timeout: 30_000,
    },
  ],
});
