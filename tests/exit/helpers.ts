/** Test-only helpers: a tiny seeded generator and builders of hand-made per-layer outputs. */
import { softmax } from '../../src/exit/math';
import type { LayerOutputs } from '../../src/exit/criteria';
import { mulberry32 } from '../reference/random';

/** Deterministic test data (independent of the criteria module's own hash). */
export const rng = mulberry32;

/** Binary probabilities [p, 1 − p] per layer. */
export function binary(...p0: number[]): number[][] {
  return p0.map((p) => [p, 1 - p]);
}

/** Random outputs with every head: shared and per-layer probabilities, lambdas and gates. */
export function randomOutputs(random: () => number, numLayers: number, numClasses: number): LayerOutputs {
  // the logits drift toward one class layer by layer, so argmax streaks (PABEE) and confident layers occur
  const target = Math.floor(random() * numClasses);
  const probsRow = (_: unknown, layer: number): number[] =>
    softmax(
      Array.from({ length: numClasses }, (_, c) => (random() - 0.5) * 4 + (c === target ? layer * 0.4 : 0)),
    );
  return {
    numLayers,
    probs: Array.from({ length: numLayers }, probsRow),
    headProbs: Array.from({ length: numLayers }, probsRow),
    // a mix of small, large and exact 0/1 lambdas to reach the edges
    lambdas: Array.from({ length: numLayers }, () => {
      const u = random();
      return u < 0.05 ? 0 : u < 0.1 ? 1 : random() * random();
    }),
    gates: Array.from({ length: numLayers }, () => random()),
  };
}
