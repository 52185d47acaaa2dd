/** Early-exit criteria: pure functions over per-layer outputs, shared by Node (eval CLI) and the browser. */
export * from './criteria';
export * from './sweep';
export { argmax, entropy, maxProb, softmax, haltingDistribution, haltingStep, HALTING_START } from './math';
export type { HaltingState, Round } from './math';
export { exitHash, exitUniform, mix32 } from './prng';
