import { ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from '@edgefl/model';
import { InferError } from '../serving/errors.js';
import { MAX_ROWS_PER_REQUEST, type ModelIo } from '../serving/inference.service.js';

/** The tensor datatypes of the Open Inference Protocol. */
export const OIP_DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
] as const;

/** The model's one input and one output, as the protocol names and types them. */
export const INPUT_NAME = ONNX_INPUT_NAME;
export const OUTPUT_NAME = ONNX_OUTPUT_NAME;
export const DATATYPE = 'FP32';

/** What an inference request asks for, validated against the model. */
export interface ParsedRequest {
  id: string | undefined;
  rows: number;
  input: Float32Array;
  /** The output names asked for (empty: all). */
  outputs: string[];
  /** `parameters.device_id`: the id the A/B split hashes and the inference log names. */
  deviceId: string | null;
}

const bad = (message: string) => new InferError('bad-input', message);
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Flattens nested row-major data into `out`, refusing anything but finite numbers. */
function flatten(data: unknown, out: number[], limit: number): void {
  if (!Array.isArray(data)) throw bad('input data must be an array of numbers (flat or nested row-major)');
  for (const item of data) {
    if (Array.isArray(item)) flatten(item, out, limit);
    else if (typeof item === 'number' && Number.isFinite(item)) out.push(item);
    else throw bad(`input data holds ${JSON.stringify(item)?.slice(0, 40)}; FP32 data must be numbers`);
    if (out.length > limit) throw bad(`input data holds more than the ${limit} elements its shape says`);
  }
}

/**
 * Validates an OIP inference request body (`{ id?, parameters?, inputs: [{ name, shape, datatype, data }],
 * outputs?: [{ name }] }`) against the model: its one input by name, shape `[batch, inputs]`, datatype FP32 and an
 * element count equal to the shape's product. Every refusal says what was expected.
 */
export function parseInferRequest(body: unknown, io: ModelIo): ParsedRequest {
  if (!isObject(body)) throw bad('the inference request must be a JSON object');
  const { id, parameters, inputs, outputs } = body;
  if (id !== undefined && typeof id !== 'string') throw bad('id must be a string');
  if (parameters !== undefined && !isObject(parameters)) throw bad('parameters must be an object');
  const deviceId = parameters?.['device_id'];
  if (
    deviceId !== undefined &&
    (typeof deviceId !== 'string' || deviceId.length === 0 || deviceId.length > 256)
  )
    throw bad('parameters.device_id must be a non-empty string');
  if (!Array.isArray(inputs) || inputs.length === 0) throw bad('inputs must be a non-empty array of tensors');
  const seen = new Set<string>();
  let parsed: { rows: number; input: Float32Array } | null = null;
  for (const tensor of inputs) {
    if (!isObject(tensor)) throw bad('each input must be an object { name, shape, datatype, data }');
    const { name, shape, datatype, data } = tensor;
    if (typeof name !== 'string') throw bad('input name must be a string');
    if (seen.has(name)) throw bad(`input '${name}' is given twice`);
    seen.add(name);
    if (name !== INPUT_NAME) throw bad(`unexpected input '${name}'; the model's input is '${INPUT_NAME}'`);
    if (typeof datatype !== 'string' || !(OIP_DATATYPES as readonly string[]).includes(datatype))
      throw bad(`input '${name}': unknown datatype ${JSON.stringify(datatype)}`);
    if (datatype !== DATATYPE)
      throw bad(`input '${name}': unexpected datatype ${datatype}, the model expects ${DATATYPE}`);
    if (isObject(tensor['parameters']) && tensor['parameters']['binary_data_size'] !== undefined)
      throw bad('the binary tensor data extension is not supported; send data as JSON');
    if (
      !Array.isArray(shape) ||
      !shape.every((d): d is number => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)
    )
      throw bad(`input '${name}': shape must be an array of non-negative integers`);
    if (shape.length !== 2 || shape[1] !== io.inputs)
      throw bad(
        `input '${name}': unexpected shape [${shape.join(',')}], the model expects [-1,${io.inputs}]`,
      );
    const rows = shape[0]!;
    if (rows < 1) throw bad(`input '${name}': the batch dimension must be at least 1`);
    if (rows > MAX_ROWS_PER_REQUEST)
      throw bad(`input '${name}': at most ${MAX_ROWS_PER_REQUEST} rows per request (got ${rows})`);
    const expected = rows * io.inputs;
    const values: number[] = [];
    flatten(data, values, expected);
    if (values.length !== expected)
      throw bad(
        `input '${name}': ${values.length} elements, the shape [${shape.join(',')}] needs ${expected}`,
      );
    parsed = { rows, input: Float32Array.from(values) };
  }
  if (!parsed) throw bad(`the model's input '${INPUT_NAME}' is missing`);
  const wanted: string[] = [];
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) throw bad('outputs must be an array of { name }');
    for (const o of outputs) {
      if (!isObject(o) || typeof o['name'] !== 'string') throw bad('each requested output must be { name }');
      if (o['name'] !== OUTPUT_NAME)
        throw bad(`unknown output '${o['name']}'; the model's output is '${OUTPUT_NAME}'`);
      wanted.push(o['name']);
    }
  }
  return { id, rows: parsed.rows, input: parsed.input, outputs: wanted, deviceId: deviceId ?? null };
}
