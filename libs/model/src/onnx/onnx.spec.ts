import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../errors.js';
import { SeededRng } from '../rng.js';
import {
  DIGITS_MLP,
  FRAUD_MLP,
  forward,
  initWeights,
  logisticRegression,
  mlp,
  type ModelSpec,
} from '../spec.js';
import { buildOnnx } from './build.js';
import {
  onnxFloatDataToRawData,
  onnxLayout,
  readOnnxSpec,
  readOnnxTensors,
  summariseOnnxGraph,
} from './read.js';

async function runOnnx(
  bytes: Uint8Array,
  input: Float32Array,
  batch: number,
  inputs: number,
): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const result = await session.run({ input: new ort.Tensor('float32', input, [batch, inputs]) });
    return result['output']!.data as Float32Array;
  } finally {
    await session.release();
  }
}

const cases: Array<[string, ModelSpec]> = [
  ['logistic regression, sigmoid head', logisticRegression(30)],
  ['multinomial logistic regression, softmax head', logisticRegression(16, 4)],
  ['fraud MLP 30→64→32→1 (ReLU, sigmoid)', FRAUD_MLP],
  ['digits MLP 64→128→10 (ReLU, softmax)', DIGITS_MLP],
  [
    'MLP with tanh, sigmoid and identity layers, multi-label sigmoid head',
    mlp(
      8,
      [
        { units: 16, activation: 'tanh' },
        { units: 8, activation: 'sigmoid' },
        { units: 6, activation: 'identity' },
      ],
      3,
      'sigmoid',
    ),
  ],
];

describe('ONNX builder', () => {
  it.each(cases)(
    'onnxruntime-node loads %s and matches the reference forward pass to 1e-5',
    async (_name, spec) => {
      const weights = initWeights(spec, 11, 0.3);
      // non-zero biases, so the bias path is checked too
      const rng = new SeededRng(5);
      for (const t of weights)
        if (t.name.endsWith('.bias')) for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal() * 0.1;
      const batch = 7;
      const input = new Float32Array(batch * spec.inputs).map(() => rng.normal());
      const bytes = buildOnnx(spec, weights, { modelVersion: 3, metadata: { modelId: 'm' } });
      const got = await runOnnx(bytes, input, batch, spec.inputs);
      const want = forward(spec, weights, input, batch);
      expect(got.length).toBe(want.length);
      let maxDiff = 0;
      for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
      expect(maxDiff).toBeLessThanOrEqual(1e-5);
      expect(readOnnxSpec(bytes)).toEqual(spec);
    },
  );

  it('finds the initializers by offset (what the delta codec diffs) and reads them back exactly', () => {
    const weights = initWeights(FRAUD_MLP, 4);
    const bytes = buildOnnx(FRAUD_MLP, weights);
    const layout = onnxLayout(bytes);
    expect(layout.tensors.map((t) => t.name).sort()).toEqual(weights.map((t) => t.name).sort());
    const read = new Map(readOnnxTensors(bytes).map((t) => [t.name, t]));
    for (const t of weights) {
      expect(read.get(t.name)!.dims).toEqual(t.dims);
      expect(read.get(t.name)!.data).toEqual(t.data);
    }
  });

  it('refuses malformed ONNX with a typed error', () => {
    const bytes = buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, 4));
    for (const bad of [
      bytes.subarray(0, bytes.byteLength - 100),
      bytes.subarray(0, 7),
      new Uint8Array([0xff, 0xff, 0xff]),
      new TextEncoder().encode('hello world'),
    ]) {
      expect(() => onnxLayout(bad)).toThrow(ModelFormatError);
    }
    expect(() => onnxLayout(new Uint8Array(0))).toThrow(ModelFormatError);
  });
});

describe('ONNX graph summary and float_data', () => {
  const model = buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, 2));

  it('summarises opsets, nodes, fed inputs (not initializers) and outputs', () => {
    const g = summariseOnnxGraph(model);
    expect(g.opsets.some((o) => o.domain === '' && o.version > 0)).toBe(true);
    expect(g.nodeCount).toBeGreaterThan(0);
    expect(g.inputs).toHaveLength(1);
    expect(g.inputs[0]!.elemType).toBe(1);
    expect(g.inputs[0]!.dims[1]).toBe(30);
    expect(g.outputs).toHaveLength(1);
    expect(summariseOnnxGraph(new Uint8Array([0x08, 0x08, 0x3a, 0x00])).opsets).toEqual([]);
  });

  it('moves packed float_data initializers to raw_data without changing a length, and leaves raw_data alone', () => {
    expect(onnxFloatDataToRawData(model)).toBe(model);
    const floatData = new Uint8Array(model);
    for (const t of onnxLayout(model).tensors) {
      let n = t.count * 4;
      let varint = 1;
      while (n >= 0x80) {
        n >>>= 7;
        varint++;
      }
      floatData[t.offset - varint - 1] = 0x22;
    }
    expect(onnxLayout(floatData).tensors).toEqual([]);
    expect(Buffer.from(onnxFloatDataToRawData(floatData)).equals(Buffer.from(model))).toBe(true);
    expect(() => onnxFloatDataToRawData(new Uint8Array([0x3a, 0x05]))).toThrow(ModelFormatError);
  });
});
