import { describe, expect, it } from 'vitest';
import { parseTsv } from '../../src/demo/tsv';
import { criterionFromAttributes } from '../../src/element/criteria';
import { SAMPLE_SENTENCES } from '../../src/demo/samples';

const LABELS = ['negative', 'positive'];

describe('parseTsv (dataset mode)', () => {
  it('reads SST-2 style files: header, numeric labels, CRLF, BOM', () => {
    const r = parseTsv('\uFEFFsentence\tlabel\r\na fine film \t1\r\ndull\t0\r\n\r\n', LABELS);
    expect(r.rows).toEqual([
      { text: 'a fine film', label: 1 },
      { text: 'dull', label: 0 },
    ]);
    expect(r).toMatchObject({ skipped: 0, truncated: 0, hasLabels: true });
  });

  it('reads label names and MRPC-style pairs', () => {
    const r = parseTsv('Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\nPositive\t1\t2\tone\ttwo\n', LABELS);
    expect(r.rows).toEqual([{ text: 'one', textPair: 'two', label: 1 }]);
  });

  it('reads files without a header as text<TAB>label, and test files without labels', () => {
    expect(parseTsv('good\t1\nbad\t0', LABELS).rows).toEqual([
      { text: 'good', label: 1 },
      { text: 'bad', label: 0 },
    ]);
    const test = parseTsv('index\tsentence\n0\tsomething\n1\tother\n', LABELS);
    expect(test.rows).toEqual([{ text: 'something' }, { text: 'other' }]);
    expect(test.hasLabels).toBe(false);
  });

  it('skips rows with no text or a label the model does not have, and stops at the limit', () => {
    const r = parseTsv('sentence\tlabel\n\t1\nok\t7\nok\tneutral\nfine\t1\nmore\t0\nrest\t1\n', LABELS, 4);
    expect(r.rows).toEqual([{ text: 'fine', label: 1 }]);
    expect(r.skipped).toBe(3);
    expect(r.truncated).toBe(2); // "more" and "rest"
  });

  it('returns nothing for an empty file', () => {
    expect(parseTsv('', LABELS)).toEqual({ rows: [], skipped: 0, truncated: 0, hasLabels: false });
  });
});

describe('criterionFromAttributes (element attributes)', () => {
  it('maps names, aliases and defaults to ExitCriterion', () => {
    expect(criterionFromAttributes('', null)).toBeUndefined();
    expect(criterionFromAttributes('palbert', 0.3)).toEqual({ kind: 'palbert', q: 0.3 });
    expect(criterionFromAttributes('PALBERT', null)).toEqual({ kind: 'palbert', q: 0.5 });
    expect(criterionFromAttributes('pondernet', null)).toEqual({ kind: 'pondernet-sample', seed: 0 });
    expect(criterionFromAttributes('pabee', 3)).toEqual({ kind: 'pabee', patience: 3 });
    expect(criterionFromAttributes('full', 0.7)).toEqual({ kind: 'none' });
    expect(criterionFromAttributes('max-prob', null)).toEqual({ kind: 'max-prob', threshold: 0.9 });
  });

  it('throws typed errors for unknown names and bad values', () => {
    expect(() => criterionFromAttributes('magic', 1)).toThrow(
      expect.objectContaining({ code: 'unsupported-criterion' }),
    );
    expect(() => criterionFromAttributes('palbert', 2)).toThrow(
      expect.objectContaining({ code: 'invalid-input' }),
    );
    expect(() => criterionFromAttributes('pabee', 1.5)).toThrow(
      expect.objectContaining({ code: 'invalid-input' }),
    );
  });
});

describe('built-in sample', () => {
  it('is our own ~40 labelled sentences, both classes, no duplicates', () => {
    expect(SAMPLE_SENTENCES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(SAMPLE_SENTENCES.map((s) => s.text)).size).toBe(SAMPLE_SENTENCES.length);
    const positives = SAMPLE_SENTENCES.filter((s) => s.label === 1).length;
    expect(positives).toBeGreaterThan(15);
    expect(SAMPLE_SENTENCES.length - positives).toBeGreaterThan(15);
  });
});
