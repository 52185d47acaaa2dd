import { isPonderError } from '../../src/errors';

/** What an awaited call ends with, as plain JSON: 'no error', or the typed error's code and message. */
export async function errorOf(call: () => Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await call();
    return { code: 'no error', message: '' };
  } catch (e) {
    return isPonderError(e) ? { code: e.code, message: e.message } : { code: 'untyped', message: String(e) };
  }
}
