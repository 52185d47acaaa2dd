/**
 * The few ONNX protobuf messages the exporter writes, encoded by hand: field numbers from the public
 * onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto,
 * TypeProto, TensorShapeProto, OperatorSetIdProto). Writing them directly keeps the exporter free
 * of a protobuf runtime and a generated schema.
 */

/** Growable byte sink with protobuf's wire encodings (varint, 32-bit, length-delimited). */
class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Unsigned varint; negative int64 values are written as their 64-bit two's complement (10 bytes). */
  varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    this.reserve(10);
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  tag(field: number, wireType: 0 | 1 | 2 | 5): void {
    this.varint((field << 3) | wireType);
  }

  bytes(data: Uint8Array): void {
    this.varint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  float32(value: number): void {
    this.reserve(4);
    new DataView(this.buf.buffer, this.len, 4).setFloat32(0, value, true);
    this.len += 4;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const utf8 = new TextEncoder();

/** A message body built field by field. */
export class Message {
  private readonly w = new Writer();

  int(field: number, value: number | bigint): this {
    this.w.tag(field, 0);
    this.w.varint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.w.tag(field, 5);
    this.w.float32(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.raw(field, utf8.encode(value));
  }

  raw(field: number, data: Uint8Array): this {
    this.w.tag(field, 2);
    this.w.bytes(data);
    return this;
  }

  message(field: number, value: Message): this {
    return this.raw(field, value.finish());
  }

  /** Packed repeated varints (proto3 default for repeated scalars; proto2 parsers accept it too). */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    const inner = new Writer();
    for (const v of values) inner.varint(v);
    return this.raw(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.w.finish();
  }
}

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;

/** AttributeProto.AttributeType values used here. */
const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export type AttributeValue = number | string | number[] | { int: number } | TensorValue;

/** A constant tensor: f32 or int64 data, row-major. */
export interface TensorValue {
  name?: string;
  dims: number[];
  data: Float32Array | BigInt64Array;
}

export function tensorProto(t: TensorValue): Message {
  const m = new Message();
  if (t.dims.length) m.packedInts(1, t.dims);
  m.int(2, t.data instanceof Float32Array ? DataType.FLOAT : DataType.INT64);
  if (t.name !== undefined) m.string(8, t.name);
  // raw_data is little-endian, which typed arrays are on every platform this runs on.
  m.raw(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return m;
}

/**
 * An attribute: a JS number is written as INT when it is an integer and `floatAttrs` does not name
 * it, else FLOAT; arrays of integers as INTS; `{ int }` forces INT.
 */
function attributeProto(name: string, value: AttributeValue, isFloat: boolean): Message {
  const m = new Message().string(1, name);
  if (typeof value === 'string') return m.int(20, AttributeType.STRING).raw(4, utf8.encode(value));
  if (typeof value === 'number') {
    if (isFloat || !Number.isInteger(value)) return m.int(20, AttributeType.FLOAT).float(2, value);
    return m.int(20, AttributeType.INT).int(3, value);
  }
  if (Array.isArray(value)) {
    if (isFloat) {
      for (const v of value) m.float(7, v);
      return m.int(20, AttributeType.FLOATS);
    }
    return m.int(20, AttributeType.INTS).packedInts(8, value);
  }
  if ('int' in value) return m.int(20, AttributeType.INT).int(3, value.int);
  return m.int(20, AttributeType.TENSOR).message(5, tensorProto(value));
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attrs?: Record<string, AttributeValue>;
  /** Attribute names whose numbers are floats even when integral (epsilon = 1, alpha = 0, ...). */
  floatAttrs?: string[];
}

export function nodeProto(n: NodeSpec): Message {
  const m = new Message();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  m.string(3, n.name).string(4, n.op);
  for (const [key, value] of Object.entries(n.attrs ?? {})) {
    m.message(5, attributeProto(key, value, n.floatAttrs?.includes(key) ?? false));
  }
  return m;
}

/** A graph input or output: element type and dims, where a string dim is symbolic ('batch'). */
export interface ValueInfo {
  name: string;
  elemType: number;
  dims: (number | string)[];
}

export function valueInfoProto(v: ValueInfo): Message {
  const shape = new Message();
  for (const d of v.dims) {
    shape.message(1, typeof d === 'number' ? new Message().int(1, d) : new Message().string(2, d));
  }
  const tensorType = new Message().int(1, v.elemType).message(2, shape);
  return new Message().string(1, v.name).message(2, new Message().message(1, tensorType));
}

export interface ModelSpec {
  irVersion: number;
  opset: number;
  producer: string;
  producerVersion: string;
  graphName: string;
  docString: string;
  nodes: NodeSpec[];
  initializers: TensorValue[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

export function encodeModel(spec: ModelSpec): Uint8Array {
  const graph = new Message();
  for (const n of spec.nodes) graph.message(1, nodeProto(n));
  graph.string(2, spec.graphName);
  for (const t of spec.initializers) graph.message(5, tensorProto(t));
  graph.string(10, spec.docString);
  for (const i of spec.inputs) graph.message(11, valueInfoProto(i));
  for (const o of spec.outputs) graph.message(12, valueInfoProto(o));
  return new Message()
    .int(1, spec.irVersion)
    .string(2, spec.producer)
    .string(3, spec.producerVersion)
    .message(7, graph)
    .message(8, new Message().string(1, '').int(2, spec.opset))
    .finish();
}
