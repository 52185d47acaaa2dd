/**
 * A safetensors reader: 8-byte little-endian header length, a JSON header, then the raw data.
 * Everything in the header is validated before any tensor is converted, so a malformed or hostile
 * file fails with a `PonderError('invalid-safetensors')` instead of a huge allocation or a crash.
 * Tensors are widened to f32 lazily, on first `get`; aligned F32 tensors are views into the file's
 * buffer (no copy), so that buffer must not be transferred or detached while they are in use.
 */
import { PonderError } from '../errors';
import type { Tensor } from '../model/types';

/** The dtypes we can widen to f32. */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

/**
 * Every dtype the safetensors format defines. Non-float ones are validated (size, offsets) so that
 * files carrying integer buffers such as `position_ids` still load; reading one throws.
 */
const ITEM_SIZE: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export const FLOAT_DTYPES: readonly FloatDtype[] = ['F32', 'F16', 'BF16'];

/** The default cap on the JSON header: far above any real model's (a few hundred KB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte offsets into the whole file (not the data section). */
  begin: number;
  end: number;
}

export interface SafetensorsOptions {
  /** Reject headers longer than this (default 100 MB). */
  maxHeaderBytes?: number;
}

export function isFloatDtype(dtype: string): dtype is FloatDtype {
  return (FLOAT_DTYPES as readonly string[]).includes(dtype);
}

function fail(message: string): never {
  throw new PonderError('invalid-safetensors', `Invalid safetensors file: ${message}`);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function asBytes(input: ArrayBuffer | Uint8Array): Uint8Array {
  return input instanceof Uint8Array ? input : new Uint8Array(input);
}

/**
 * A parsed, fully validated safetensors file. It keeps a reference to the bytes it was built from;
 * `get` converts one tensor to f32 (and caches it). Shaped like a read-only Map so that a plain
 * `Map<string, Tensor>` can stand in for it (see `TensorSource`).
 */
export class SafetensorsFile {
  readonly metadata: Record<string, string>;
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  private readonly bytes: Uint8Array;
  private readonly converted = new Map<string, Tensor>();

  constructor(bytes: Uint8Array, entries: Map<string, SafetensorsEntry>, metadata: Record<string, string>) {
    this.bytes = bytes;
    this.entries = entries;
    this.metadata = metadata;
  }

  get size(): number {
    return this.entries.size;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  dtype(name: string): string | undefined {
    return this.entries.get(name)?.dtype;
  }

  /** The tensor widened to f32, or undefined when absent. Throws for non-float dtypes. */
  get(name: string): Tensor | undefined {
    const cached = this.converted.get(name);
    if (cached) return cached;
    const entry = this.entries.get(name);
    if (!entry) return undefined;
    const tensor = { shape: [...entry.shape], data: convertToF32(this.bytes, entry) };
    this.converted.set(name, tensor);
    return tensor;
  }

  /** Every tensor, converted (throws if any has a non-float dtype). */
  toMap(): Map<string, Tensor> {
    const map = new Map<string, Tensor>();
    for (const name of this.entries.keys()) map.set(name, this.get(name) as Tensor);
    return map;
  }
}

/** Validates the header of a safetensors file; converts nothing yet. */
export function parseSafetensors(
  input: ArrayBuffer | Uint8Array,
  options: SafetensorsOptions = {},
): SafetensorsFile {
  const bytes = asBytes(input);
  const maxHeader = options.maxHeaderBytes ?? MAX_HEADER_BYTES;
  if (bytes.byteLength < 8) {
    fail(`the file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength64 = view.getBigUint64(0, true);
  if (headerLength64 > BigInt(maxHeader)) {
    fail(`the header length ${headerLength64} exceeds the ${maxHeader}-byte limit`);
  }
  const headerLength = Number(headerLength64);
  if (8 + headerLength > bytes.byteLength) {
    fail(
      `the header length ${headerLength} reaches beyond the end of the file (${bytes.byteLength} bytes); ` +
        'the file is truncated or not a safetensors file',
    );
  }

  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
    header = JSON.parse(text);
  } catch (cause) {
    throw new PonderError(
      'invalid-safetensors',
      'Invalid safetensors file: the header is not valid UTF-8 JSON',
      {
        cause,
      },
    );
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail('the header is not a JSON object');
  }

  const dataStart = 8 + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};

  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        fail('__metadata__ is not an object');
      }
      metadata = Object.fromEntries(
        Object.entries(raw as Record<string, unknown>).map(([k, v]) => [k, String(v)]),
      );
      continue;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      fail(`the header entry for tensor '${name}' is not an object`);
    }
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in ITEM_SIZE)) {
      fail(
        `tensor '${name}' has unknown dtype ${JSON.stringify(dtype)}; ` +
          `ponder-web reads ${FLOAT_DTYPES.join(', ')}`,
      );
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
      fail(`tensor '${name}' has shape ${JSON.stringify(shape)}, not an array of non-negative integers`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !isNonNegativeInteger(offsets[0]) ||
      !isNonNegativeInteger(offsets[1])
    ) {
      fail(`tensor '${name}' has data_offsets ${JSON.stringify(offsets)}, not two non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLength) {
      fail(
        `tensor '${name}' has data_offsets [${begin}, ${end}] outside the data section of ${dataLength} bytes` +
          (end > dataLength ? ' (the file may be truncated)' : ''),
      );
    }
    let elements = 1;
    for (const dim of shape as number[]) {
      elements *= dim;
      if (!Number.isSafeInteger(elements)) fail(`tensor '${name}' has too many elements`);
    }
    const expectedBytes = elements * ITEM_SIZE[dtype]!;
    if (end - begin !== expectedBytes) {
      fail(
        `tensor '${name}' (${dtype}, shape [${(shape as number[]).join(', ')}]) needs ${expectedBytes} bytes ` +
          `but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    entries.set(name, {
      name,
      dtype,
      shape: [...(shape as number[])],
      begin: dataStart + begin,
      end: dataStart + end,
    });
  }

  // Overlapping tensors are a corrupt (or crafted) file; zero-sized tensors may share an offset.
  const sorted = [...entries.values()].filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1]!;
    const current = sorted[i]!;
    if (current.begin < previous.end) {
      fail(`tensors '${previous.name}' and '${current.name}' overlap in the data section`);
    }
  }

  return new SafetensorsFile(bytes, entries, metadata);
}

/** Parses and converts every tensor (convenience for small files and tests). */
export function readSafetensors(
  input: ArrayBuffer | Uint8Array,
  options?: SafetensorsOptions,
): Map<string, Tensor> {
  return parseSafetensors(input, options).toMap();
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** IEEE half → single, including subnormals, infinities and NaN. */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function convertToF32(bytes: Uint8Array, entry: SafetensorsEntry): Float32Array {
  const { name, dtype, begin, end } = entry;
  if (!isFloatDtype(dtype)) {
    throw new PonderError(
      'invalid-safetensors',
      `Tensor '${name}' has dtype ${dtype}; ponder-web reads ${FLOAT_DTYPES.join(', ')}`,
    );
  }
  const count = (end - begin) / (dtype === 'F32' ? 4 : 2);
  if (dtype === 'F32' && LITTLE_ENDIAN && (bytes.byteOffset + begin) % 4 === 0) {
    // Aligned f32 needs no conversion: a view, so a large model is not held twice in memory.
    return new Float32Array(bytes.buffer, bytes.byteOffset + begin, count);
  }
  // slice() copies into a fresh, aligned buffer; the file's offsets need not be aligned.
  const raw = bytes.slice(begin, end).buffer;
  const view = new DataView(raw);
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN) return new Float32Array(raw);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  const out = new Float32Array(count);
  if (dtype === 'F16') {
    for (let i = 0; i < count; i++) out[i] = f16ToF32(view.getUint16(i * 2, true));
  } else {
    // bfloat16 is the top half of an f32.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
  }
  return out;
}
