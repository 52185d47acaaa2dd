/**
 * A very small WGSL preprocessor. WGSL `override` constants can change sizes and branches but not
 * types, so variants that differ in a buffer's element type (vec4 vs scalar loads) or in their
 * bindings are selected at pipeline-creation time with line directives in the .wgsl files (the
 * weights' f16 or f32 is the alias WT that kernel.ts weightTypeWgsl puts ahead of the module):
 *
 *   #if NAME      keep the following lines when flag NAME is set
 *   #else
 *   #endif        (blocks nest)
 *
 * Directives must stand alone on their line. Unknown flags count as unset.
 */
import { PonderError } from '../src/errors';

export function specialize(code: string, flags: Readonly<Record<string, boolean>>): string {
  const out: string[] = [];
  // Each entry: is this block's current branch active, and was its parent active.
  const stack: { active: boolean; parent: boolean; sawElse: boolean }[] = [];
  let active = true;
  const lines = code.split('\n');
  lines.forEach((line, index) => {
    const directive = /^\s*#(if|else|endif)\b\s*(\w*)\s*$/.exec(line);
    if (!directive) {
      if (active) out.push(line);
      return;
    }
    const [, kind, name] = directive;
    const where = `line ${index + 1}`;
    if (kind === 'if') {
      if (!name) throw new PonderError('gpu-error', `WGSL preprocessor: #if without a flag at ${where}`);
      stack.push({ active: active && flags[name] === true, parent: active, sawElse: false });
    } else {
      const top = stack[stack.length - 1];
      if (!top) throw new PonderError('gpu-error', `WGSL preprocessor: #${kind} without #if at ${where}`);
      if (kind === 'else') {
        if (top.sawElse) throw new PonderError('gpu-error', `WGSL preprocessor: second #else at ${where}`);
        top.sawElse = true;
        top.active = top.parent && !top.active;
      } else {
        stack.pop();
      }
    }
    active = stack.length === 0 ? true : stack[stack.length - 1]!.active;
  });
  if (stack.length > 0) throw new PonderError('gpu-error', 'WGSL preprocessor: unterminated #if');
  return out.join('\n');
}
