/**
 * Registers <ponder-classifier>. Import this module for its side effect:
 *
 *   import 'ponder-web/element';            // with a bundler
 *   import '/dist/ponder-classifier.js';    // from a plain page
 *
 * The library's main entry only exports the class, so importing the API defines no tag.
 */
import { PonderClassifierElement } from './ponder-classifier';

export const TAG_NAME = 'ponder-classifier';

/** Defines the tag unless something already did (two copies of the library on one page must not throw). */
export function definePonderClassifier(tagName = TAG_NAME): void {
  if (!customElements.get(tagName)) customElements.define(tagName, PonderClassifierElement);
}

definePonderClassifier();

export { PonderClassifierElement };

declare global {
  interface HTMLElementTagNameMap {
    'ponder-classifier': PonderClassifierElement;
  }
}
