import { describe, expect, it } from 'vitest';
import { parseEvalArgs } from '../../scripts/eval/args';
import { EvalError } from '../../scripts/eval/errors';

function badArgs(argv: string[]): string {
  try {
    parseEvalArgs(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(EvalError);
    expect((error as EvalError).exitCode).toBe(2);
    return (error as Error).message;
  }
  throw new Error(`expected ${argv.join(' ')} to be rejected`);
}

const base = ['--model', 'm', '--data', 'd.tsv'];

describe('eval arguments', () => {
  it('defaults: batch 1, budget 0.01, no sweep', () => {
    expect(parseEvalArgs(base)).toEqual({ model: 'm', data: 'd.tsv', sweep: false, budget: 0.01, batch: 1 });
  });

  it('reads every option', () => {
    const args = parseEvalArgs([
      ...base,
      '--task=RTE',
      '--criterion',
      'palbert',
      '--threshold',
      '0.35',
      '--out',
      'o',
      '--limit',
      '50',
      '--batch',
      '8',
    ]);
    expect(args).toEqual({
      model: 'm',
      data: 'd.tsv',
      task: 'RTE',
      criterion: 'palbert',
      threshold: 0.35,
      out: 'o',
      limit: 50,
      batch: 8,
      sweep: false,
      budget: 0.01,
    });
    expect(parseEvalArgs([...base, '--sweep', '--budget', '0.005'])).toMatchObject({
      sweep: true,
      budget: 0.005,
    });
    expect(parseEvalArgs(['--help'])).toBe('help');
  });

  it('rejects empty and unknown options', () => {
    // --model and --data have defaults (the shipped model, SST-2 dev): absent is fine, empty is not.
    expect(parseEvalArgs([])).toEqual({ sweep: false, budget: 0.01, batch: 1 });
    expect(badArgs(['--model=', '--data', 'd.tsv'])).toMatch(/--model is empty/);
    expect(badArgs(['--model', 'm', '--data='])).toMatch(/--data is empty/);
    expect(badArgs([...base, '--treshold', '1'])).toMatch(/Unknown option '--treshold'/);
    expect(badArgs([...base, 'extra'])).toMatch(/positional/);
  });

  it('rejects bad numbers and inconsistent options', () => {
    expect(badArgs([...base, '--batch', '0'])).toMatch(/--batch must be a positive integer/);
    expect(badArgs([...base, '--limit', '2.5'])).toMatch(/--limit must be a positive integer/);
    expect(badArgs([...base, '--limit', 'ten'])).toMatch(/--limit must be a number/);
    expect(badArgs([...base, '--threshold', '0.5'])).toMatch(/--threshold needs --criterion/);
    expect(badArgs([...base, '--sweep', '--criterion', 'palbert', '--threshold', '0.5'])).toMatch(
      /drop --threshold/,
    );
    expect(badArgs([...base, '--budget', '1'])).toMatch(/fraction/);
    expect(badArgs([...base, '--budget=-0.1'])).toMatch(/≥ 0/);
  });
});
