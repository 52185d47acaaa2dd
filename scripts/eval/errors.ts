/**
 * The eval CLI's own error: a message for the user and the process exit code. Bad input (arguments, files, labels,
 * a criterion the model cannot run) exits 2, before anything is written; failures while running exit 1.
 */
export class EvalError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode: 1 | 2 = 2, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EvalError';
    this.exitCode = exitCode;
  }
}

/** Bad input: exit code 2. */
export function badInput(message: string): never {
  throw new EvalError(message, 2);
}

/** A PonderError raised in the page, kept with its code so that the CLI can choose the exit code. */
export class PageError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'PageError';
  }
}
