/**
 * The page that the Playwright tests drive: each harness module exposes async functions that run
 * real code (kernels, engine) in the browser and return plain JSON for the test to check.
 */
import * as gpu from './gpu';
import * as kernels from './kernels';
import * as engine from './engine';
import * as exit from './exit';

const harness = { ...gpu, ...kernels, ...engine, ...exit };
(window as unknown as { harness: typeof harness }).harness = harness;
(window as unknown as { harnessReady: boolean }).harnessReady = true;

export type Harness = typeof harness;
