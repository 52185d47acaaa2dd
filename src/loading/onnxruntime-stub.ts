/**
 * Stands in for onnxruntime-web / onnxruntime-node in the browser bundle (vite.config.ts aliases
 * them here). @xenova/transformers' tokenizers module imports ONNX Runtime only to read `Tensor`
 * and `env` at load time; ponder-web runs its own WebGPU kernels and never creates an ONNX
 * session, so bundling the runtime (~700 KB) would be dead weight.
 */
export class Tensor {}
export const env = {};
export const InferenceSession = {
  create(): never {
    throw new Error('ponder-web does not bundle ONNX Runtime');
  },
};
export default { Tensor, env, InferenceSession };
