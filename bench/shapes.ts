/**
 * Matmul shapes to time and the FP32 peaks of known cards (no WebGPU imports: Node can load this).
 */

export interface MatmulShapeSpec {
  what: string;
  M: number;
  N: number;
  K: number;
}

/** The linear layers of one forward pass at (batch × seq) rows: fused QKV, attention out, FFN in/out. */
export function modelShapes(
  hidden: number,
  intermediate: number,
  rows: number,
  tag: string,
): MatmulShapeSpec[] {
  return [
    { what: `${tag} qkv`, M: rows, N: 3 * hidden, K: hidden },
    { what: `${tag} attn-out`, M: rows, N: hidden, K: hidden },
    { what: `${tag} ffn-in`, M: rows, N: intermediate, K: hidden },
    { what: `${tag} ffn-out`, M: rows, N: hidden, K: intermediate },
  ];
}

export function squareShapes(sizes: number[]): MatmulShapeSpec[] {
  return sizes.map((n) => ({ what: `square ${n}`, M: n, N: n, K: n }));
}

/** FP32 peak (TFLOP/s) of cards we may meet, by adapter description substring (vendor datasheets). */
export const KNOWN_FP32_PEAK_TFLOPS: [RegExp, number, string][] = [
  [/H200/i, 67, 'NVIDIA H200 SXM datasheet FP32'],
  [/H100.*PCIe/i, 51, 'NVIDIA H100 PCIe datasheet FP32'],
  [/H100/i, 67, 'NVIDIA H100 SXM datasheet FP32'],
];

export function knownPeak(description: string): { tflops: number; source: string } | null {
  for (const [re, tflops, source] of KNOWN_FP32_PEAK_TFLOPS)
    if (re.test(description)) return { tflops, source };
  return null;
}
