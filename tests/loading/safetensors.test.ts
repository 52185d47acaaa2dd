import { describe, expect, it } from 'vitest';
import { isPonderError, type PonderErrorCode } from '../../src/errors';
import { f16ToF32, parseSafetensors, readSafetensors } from '../../src/loading/safetensors';
import { f32, rawSafetensors, writeSafetensors } from './helpers';

function expectError(fn: () => unknown, code: PonderErrorCode, ...fragments: (string | RegExp)[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(isPonderError(caught, code), `expected PonderError '${code}', got ${String(caught)}`).toBe(true);
  for (const fragment of fragments) expect((caught as Error).message).toMatch(fragment);
}

// f16 bit patterns and their values, worked out by hand from the IEEE 754 binary16 layout.
const F16_CASES: [number, number][] = [
  [0x3c00, 1],
  [0xc000, -2],
  [0x3555, 0.333251953125],
  [0x7bff, 65504],
  [0x0001, 2 ** -24], // smallest subnormal
  [0x03ff, 1023 * 2 ** -24], // largest subnormal
  [0x0400, 2 ** -14], // smallest normal
  [0x7c00, Infinity],
  [0xfc00, -Infinity],
  [0x8000, -0],
];

// bf16 is the top 16 bits of an f32.
const BF16_CASES: [number, number][] = [
  [0x3f80, 1],
  [0xc020, -2.5],
  [0x4049, 3.140625],
  [0x0001, 2 ** -133], // an f32 subnormal
  [0xff80, -Infinity],
];

describe('safetensors round trip', () => {
  it('reads F32, F16 and BF16 tensors, shapes and metadata', () => {
    const a = f32([2, 3], (i) => i * 0.5 - 1.25);
    const file = writeSafetensors(
      {
        a,
        half: { dtype: 'F16', shape: [F16_CASES.length], data: Uint16Array.from(F16_CASES.map((c) => c[0])) },
        brain: {
          dtype: 'BF16',
          shape: [1, BF16_CASES.length],
          data: Uint16Array.from(BF16_CASES.map((c) => c[0])),
        },
        scalar: f32([], () => 42),
        empty: f32([0, 4], () => 0),
      },
      { format: 'pt' },
    );
    const parsed = parseSafetensors(file.buffer as ArrayBuffer);
    expect(parsed.metadata).toEqual({ format: 'pt' });
    expect([...parsed.keys()]).toEqual(['a', 'half', 'brain', 'scalar', 'empty']);
    expect(parsed.dtype('half')).toBe('F16');

    const tensors = parsed.toMap();
    expect(tensors.get('a')!.shape).toEqual([2, 3]);
    expect([...tensors.get('a')!.data]).toEqual([...a.data]);
    expect(tensors.get('half')!.shape).toEqual([F16_CASES.length]);
    expect([...tensors.get('half')!.data]).toEqual(F16_CASES.map((c) => c[1]));
    expect(Object.is(tensors.get('half')!.data[F16_CASES.length - 1], -0)).toBe(true);
    expect(tensors.get('brain')!.shape).toEqual([1, BF16_CASES.length]);
    expect([...tensors.get('brain')!.data]).toEqual(BF16_CASES.map((c) => c[1]));
    expect(tensors.get('scalar')).toEqual({ shape: [], data: Float32Array.of(42) });
    expect(tensors.get('empty')!.data.length).toBe(0);
  });

  it('reads F16 NaN as NaN', () => {
    expect(f16ToF32(0x7e00)).toBeNaN();
  });

  it('reads data that is not 4-byte aligned (header not padded)', () => {
    const a = f32([3], (i) => i + 0.25);
    // A 1-byte alignment leaves the data section at an odd offset for this header.
    let file = writeSafetensors({ a }, undefined, 1);
    if ((file.byteLength - 12) % 4 === 0) file = writeSafetensors({ a }, { x: 'y' }, 1);
    expect((file.byteLength - 12) % 4).not.toBe(0);
    expect([...readSafetensors(file).get('a')!.data]).toEqual([0.25, 1.25, 2.25]);
  });

  it('accepts a Uint8Array view into a larger buffer', () => {
    const file = writeSafetensors({ a: f32([2], (i) => i) });
    const big = new Uint8Array(file.byteLength + 16);
    big.set(file, 16);
    expect([...readSafetensors(big.subarray(16)).get('a')!.data]).toEqual([0, 1]);
  });

  it('validates but does not convert integer buffers; reading one names it and its dtype', () => {
    const file = writeSafetensors({
      w: f32([2], () => 1),
      ids: { dtype: 'I64', shape: [2], data: new Uint8Array(16) },
    });
    const parsed = parseSafetensors(file);
    expect(parsed.get('w')!.data.length).toBe(2);
    expectError(() => parsed.get('ids'), 'invalid-safetensors', /'ids'/, /I64/);
  });
});

describe('safetensors bad input', () => {
  const good = writeSafetensors({ a: f32([4], (i) => i), b: f32([2, 2], (i) => -i) });

  it('rejects a file shorter than the length prefix', () => {
    expectError(() => parseSafetensors(new Uint8Array(5)), 'invalid-safetensors', /5 bytes/);
  });

  it('rejects a truncated file (data cut off)', () => {
    expectError(
      () => parseSafetensors(good.subarray(0, good.byteLength - 3)),
      'invalid-safetensors',
      /'b'/,
      /outside the data section/,
    );
  });

  it('rejects a file truncated inside the header', () => {
    expectError(
      () => parseSafetensors(good.subarray(0, 20)),
      'invalid-safetensors',
      /beyond the end of the file/,
    );
  });

  it('rejects a header length beyond the file', () => {
    const file = rawSafetensors({}, new Uint8Array(0), 1000);
    expectError(() => parseSafetensors(file), 'invalid-safetensors', /header length 1000/, /beyond the end/);
  });

  it('rejects an oversized header before reading it', () => {
    // 2^40: must be refused by the cap, not attempted.
    const file = rawSafetensors({}, new Uint8Array(0), 2 ** 40);
    expectError(() => parseSafetensors(file), 'invalid-safetensors', /exceeds the 104857600-byte limit/);
    const small = writeSafetensors({ a: f32([1], () => 0) });
    expectError(() => parseSafetensors(small, { maxHeaderBytes: 16 }), 'invalid-safetensors', /exceeds/);
  });

  it('rejects a header that is not JSON, or not a JSON object', () => {
    expectError(
      () => parseSafetensors(rawSafetensors('{"a": ', new Uint8Array(0))),
      'invalid-safetensors',
      /JSON/,
    );
    expectError(
      () => parseSafetensors(rawSafetensors('[1,2]', new Uint8Array(0))),
      'invalid-safetensors',
      /object/,
    );
    const badUtf8 = rawSafetensors('{}', new Uint8Array(0));
    badUtf8[8] = 0xff;
    expectError(() => parseSafetensors(badUtf8), 'invalid-safetensors', /UTF-8/);
  });

  it('rejects an unknown dtype, naming the tensor and dtype', () => {
    const header = { w: { dtype: 'Q4_K', shape: [2], data_offsets: [0, 2] } };
    expectError(
      () => parseSafetensors(rawSafetensors(header, new Uint8Array(2))),
      'invalid-safetensors',
      /'w'/,
      /Q4_K/,
    );
    const missing = { w: { shape: [2], data_offsets: [0, 8] } };
    expectError(
      () => parseSafetensors(rawSafetensors(missing, new Uint8Array(8))),
      'invalid-safetensors',
      /'w'/,
    );
  });

  it('rejects a bad shape', () => {
    for (const shape of [[-1], [1.5], '3', [2, null]]) {
      const header = { w: { dtype: 'F32', shape, data_offsets: [0, 4] } };
      expectError(
        () => parseSafetensors(rawSafetensors(header, new Uint8Array(4))),
        'invalid-safetensors',
        /'w'/,
      );
    }
  });

  it('rejects offsets out of range, reversed or malformed', () => {
    const cases: unknown[] = [[0, 12], [8, 4], [-4, 0], [0], [0, 4, 8], '0-4', [0, 2 ** 60]];
    for (const offsets of cases) {
      const header = { w: { dtype: 'F32', shape: [1], data_offsets: offsets } };
      expectError(
        () => parseSafetensors(rawSafetensors(header, new Uint8Array(8))),
        'invalid-safetensors',
        /'w'/,
        /data_offsets/,
      );
    }
  });

  it('rejects a size that does not match shape × itemsize', () => {
    const header = { w: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } };
    expectError(
      () => parseSafetensors(rawSafetensors(header, new Uint8Array(8))),
      'invalid-safetensors',
      /'w'/,
      /needs 6 bytes/,
      /span 8/,
    );
  });

  it('rejects overlapping tensors', () => {
    const header = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    expectError(
      () => parseSafetensors(rawSafetensors(header, new Uint8Array(12))),
      'invalid-safetensors',
      /overlap/,
    );
  });

  it('rejects a bad __metadata__ or a non-object entry', () => {
    expectError(
      () => parseSafetensors(rawSafetensors({ __metadata__: [1] }, new Uint8Array(0))),
      'invalid-safetensors',
      /__metadata__/,
    );
    expectError(
      () => parseSafetensors(rawSafetensors({ w: 5 }, new Uint8Array(0))),
      'invalid-safetensors',
      /'w'/,
    );
  });
});
