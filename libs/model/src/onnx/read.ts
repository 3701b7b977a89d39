import protobuf from 'protobufjs';
import { ModelFormatError } from '../errors.js';
import { parseModelSpec, type ModelSpec } from '../spec.js';
import { elementCount, float32FromBytes, type NamedTensor } from '../tensor.js';
import type { TensorLayout, TensorSpan } from '../layout.js';
import { ModelProto, ONNX_EXTERNAL, ONNX_FLOAT } from './proto.js';

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

type Reader = protobuf.Reader;

function toNumber(value: number | protobuf.Long): number {
  const n = typeof value === 'number' ? value : Number(value.toString());
  if (!Number.isSafeInteger(n))
    throw new ModelFormatError('unsupported-onnx', 'an ONNX integer is out of range');
  return n;
}

/** Calls `onField(field, wireType, reader, end)` for each field of the message in [start, end); it must consume it. */
function forEachField(reader: Reader, end: number, onField: (field: number, wire: number) => boolean): void {
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) throw new ModelFormatError('bad-header', 'not an ONNX model (field number 0)');
    if (!onField(field, wire)) reader.skipType(wire);
  }
  if (reader.pos !== end) throw new ModelFormatError('truncated', 'ONNX message overruns its length');
}

/** Reads a length prefix and returns where the field ends (checked against `max`). */
function endOf(reader: Reader, max: number): number {
  const length = reader.uint32();
  const end = reader.pos + length;
  if (end > max) throw new ModelFormatError('truncated', 'ONNX model is truncated');
  return end;
}

/**
 * Finds the float32 initializers stored as raw_data in an ONNX model by walking the protobuf wire format
 * (ModelProto.graph = 7 → GraphProto.initializer = 5 → TensorProto raw_data = 9), so the delta codec can rebuild
 * the file byte for byte around them. Other initializers (float_data, other types, external data) stay part of the
 * file's non-tensor bytes. Malformed input → ModelFormatError.
 */
export function onnxLayout(bytes: Uint8Array): TensorLayout {
  const reader = protobuf.Reader.create(bytes);
  const tensors: TensorSpan[] = [];
  let sawGraph = false;
  let sawIr = false;
  try {
    forEachField(reader, bytes.byteLength, (field, wire) => {
      if (field === 1 && wire === WIRE_VARINT) {
        sawIr = true;
        return false;
      }
      if (field !== 7 || wire !== WIRE_LEN) return false;
      sawGraph = true;
      const graphEnd = endOf(reader, bytes.byteLength);
      forEachField(reader, graphEnd, (gField, gWire) => {
        if (gField !== 5 || gWire !== WIRE_LEN) return false;
        const tensorEnd = endOf(reader, graphEnd);
        const dims: number[] = [];
        let dataType = 0;
        let name = '';
        let raw: { offset: number; length: number } | undefined;
        let external = false;
        forEachField(reader, tensorEnd, (tField, tWire) => {
          if (tField === 1 && tWire === WIRE_VARINT) dims.push(toNumber(reader.int64()));
          else if (tField === 1 && tWire === WIRE_LEN) {
            const packedEnd = endOf(reader, tensorEnd);
            while (reader.pos < packedEnd) dims.push(toNumber(reader.int64()));
          } else if (tField === 2 && tWire === WIRE_VARINT) dataType = reader.int32();
          else if (tField === 8 && tWire === WIRE_LEN) name = reader.string();
          else if (tField === 9 && tWire === WIRE_LEN) {
            const end = endOf(reader, tensorEnd);
            raw = { offset: reader.pos, length: end - reader.pos };
            reader.pos = end;
          } else if (tField === 14 && tWire === WIRE_VARINT) external = reader.int32() === ONNX_EXTERNAL;
          else return false;
          return true;
        });
        if (dataType === ONNX_FLOAT && raw && !external && name !== '') {
          const count = elementCount(dims);
          if (dims.some((d) => d < 0) || raw.length !== count * 4) {
            throw new ModelFormatError(
              'bad-tensor',
              `ONNX initializer ${name}: raw_data does not match its dims`,
            );
          }
          tensors.push({ name, dims, offset: raw.offset, count });
        }
        return true;
      });
      return true;
    });
  } catch (error) {
    if (error instanceof ModelFormatError) throw error;
    // protobufjs throws RangeError ("index out of range") on truncated varints and lengths
    throw new ModelFormatError('truncated', `not a readable ONNX model: ${(error as Error).message}`);
  }
  if (!sawGraph || !sawIr)
    throw new ModelFormatError('bad-header', 'not an ONNX model (no ir_version or graph)');
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name))
      throw new ModelFormatError('bad-tensor', `ONNX initializer ${t.name} appears twice`);
    names.add(t.name);
  }
  tensors.sort((a, b) => a.offset - b.offset);
  return { format: 'onnx', size: bytes.byteLength, tensors };
}

/** The float32 raw-data initializers of an ONNX model, in file order. */
export function readOnnxTensors(bytes: Uint8Array): NamedTensor[] {
  return onnxLayout(bytes).tensors.map((t) => ({
    name: t.name,
    dims: t.dims,
    data: float32FromBytes(bytes, t.offset, t.count),
  }));
}

/** The model spec an edgefl-built ONNX model carries in its metadata (`edgefl.spec`), or null for other models. */
export function readOnnxSpec(bytes: Uint8Array): ModelSpec | null {
  let decoded: { metadataProps?: Array<{ key?: string; value?: string }> };
  try {
    decoded = ModelProto.toObject(ModelProto.decode(bytes)) as typeof decoded;
  } catch (error) {
    throw new ModelFormatError('truncated', `not a readable ONNX model: ${(error as Error).message}`);
  }
  const entry = decoded.metadataProps?.find((p) => p.key === 'edgefl.spec');
  if (!entry?.value) return null;
  try {
    return parseModelSpec(JSON.parse(entry.value));
  } catch {
    throw new ModelFormatError('bad-header', 'ONNX metadata edgefl.spec is not a valid model spec');
  }
}

/** What a runnability check needs of an ONNX graph: opsets, node count, and the declared inputs and outputs. */
export interface OnnxGraphSummary {
  opsets: Array<{ domain: string; version: number }>;
  nodeCount: number;
  /** Graph inputs that are not initializers (what a caller feeds), with their element type and dims (-1 = symbolic). */
  inputs: Array<{ name: string; elemType: number; dims: number[] }>;
  outputs: string[];
}

type DecodedDim = { dimValue?: number | protobuf.Long; dimParam?: string };
type DecodedValueInfo = {
  name?: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: DecodedDim[] } } };
};

/** Decodes the parts of an ONNX model's graph a runnability check looks at. Malformed input → ModelFormatError. */
export function summariseOnnxGraph(bytes: Uint8Array): OnnxGraphSummary {
  let decoded: {
    opsetImport?: Array<{ domain?: string; version?: number | protobuf.Long }>;
    graph?: {
      node?: unknown[];
      initializer?: Array<{ name?: string }>;
      input?: DecodedValueInfo[];
      output?: DecodedValueInfo[];
    };
  };
  try {
    decoded = ModelProto.toObject(ModelProto.decode(bytes), { defaults: false }) as typeof decoded;
  } catch (error) {
    throw new ModelFormatError('truncated', `not a readable ONNX model: ${(error as Error).message}`);
  }
  const initializers = new Set((decoded.graph?.initializer ?? []).map((t) => t.name ?? ''));
  return {
    opsets: (decoded.opsetImport ?? []).map((o) => ({
      domain: o.domain ?? '',
      version: o.version === undefined ? 0 : toNumber(o.version),
    })),
    nodeCount: decoded.graph?.node?.length ?? 0,
    inputs: (decoded.graph?.input ?? [])
      .filter((i) => !initializers.has(i.name ?? ''))
      .map((i) => ({
        name: i.name ?? '',
        elemType: i.type?.tensorType?.elemType ?? 0,
        dims: (i.type?.tensorType?.shape?.dim ?? []).map((d) =>
          d.dimValue === undefined ? -1 : toNumber(d.dimValue),
        ),
      })),
    outputs: (decoded.graph?.output ?? []).map((o) => o.name ?? ''),
  };
}

const FLOAT_DATA_TAG = (4 << 3) | WIRE_LEN; // TensorProto.float_data, packed
const RAW_DATA_TAG = (9 << 3) | WIRE_LEN; // TensorProto.raw_data

/**
 * Moves float32 initializers stored as packed `float_data` to `raw_data`. Both hold the same bytes (packed
 * little-endian float32 is exactly ONNX's raw_data encoding, protobuf encoding spec "packed repeated fields"), and
 * both tags are one byte, so the rewrite changes one tag byte per tensor and no length anywhere: the model means
 * the same, and the delta codec (which reads raw_data) can use it. Returns the input when nothing is stored as
 * float_data. Unpacked float_data → ModelFormatError (say which form is needed).
 */
export function onnxFloatDataToRawData(bytes: Uint8Array): Uint8Array {
  const reader = protobuf.Reader.create(bytes);
  const tags: number[] = [];
  try {
    forEachField(reader, bytes.byteLength, (field, wire) => {
      if (field !== 7 || wire !== WIRE_LEN) return false;
      const graphEnd = endOf(reader, bytes.byteLength);
      forEachField(reader, graphEnd, (gField, gWire) => {
        if (gField !== 5 || gWire !== WIRE_LEN) return false;
        const tensorEnd = endOf(reader, graphEnd);
        let floatTag = -1;
        let hasRaw = false;
        let dataType = 0;
        let name = '';
        forEachField(reader, tensorEnd, (tField, tWire) => {
          if (tField === 4 && tWire === WIRE_LEN) {
            floatTag = reader.pos - 1; // the one-byte tag just read
            reader.pos = endOf(reader, tensorEnd);
          } else if (tField === 4) {
            throw new ModelFormatError(
              'unsupported-onnx',
              'an initializer stores float_data unpacked; store float32 weights as packed float_data or raw_data',
            );
          } else if (tField === 9) {
            hasRaw = true;
            return false;
          } else if (tField === 2 && tWire === WIRE_VARINT) dataType = reader.int32();
          else if (tField === 8 && tWire === WIRE_LEN) name = reader.string();
          else return false;
          return true;
        });
        if (floatTag >= 0 && bytes[floatTag] === FLOAT_DATA_TAG) {
          if (dataType !== ONNX_FLOAT || hasRaw)
            throw new ModelFormatError(
              'bad-tensor',
              `ONNX initializer ${name}: float_data on a tensor that is not float32-only`,
            );
          tags.push(floatTag);
        }
        return true;
      });
      return true;
    });
  } catch (error) {
    if (error instanceof ModelFormatError) throw error;
    throw new ModelFormatError('truncated', `not a readable ONNX model: ${(error as Error).message}`);
  }
  if (tags.length === 0) return bytes;
  const out = new Uint8Array(bytes);
  for (const at of tags) out[at] = RAW_DATA_TAG;
  return out;
}
