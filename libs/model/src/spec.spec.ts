import { describe, expect, it } from 'vitest';
import { ModelSpecError } from './errors.js';
import {
  DIGITS_MLP,
  FIVE_MB_MODEL,
  FRAUD_MLP,
  forward,
  initWeights,
  logisticRegression,
  mlp,
  parameterCount,
  parameterShapes,
  parseModelSpec,
} from './spec.js';

describe('model spec', () => {
  it('describes the reference workloads with named tensors', () => {
    expect(parameterShapes(FRAUD_MLP).map((s) => `${s.name}:${s.dims.join('x')}`)).toEqual([
      'dense0.weight:30x64',
      'dense0.bias:64',
      'dense1.weight:64x32',
      'dense1.bias:32',
      'dense2.weight:32x1',
      'dense2.bias:1',
    ]);
    expect(parameterCount(DIGITS_MLP)).toBe(64 * 128 + 128 + 128 * 10 + 10);
    expect(parameterShapes(FIVE_MB_MODEL)[0]!.dims).toEqual([1280, 1024]);
  });

  it.each([
    [
      'softmax with one output',
      { family: 'logistic-regression', inputs: 3, hidden: [], outputs: 1, head: 'softmax' },
    ],
    [
      'hidden layers in logistic regression',
      {
        family: 'logistic-regression',
        inputs: 3,
        hidden: [{ units: 2, activation: 'relu' }],
        outputs: 1,
        head: 'sigmoid',
      },
    ],
    ['MLP without hidden layers', { family: 'mlp', inputs: 3, hidden: [], outputs: 1, head: 'sigmoid' }],
    [
      'unknown activation',
      { family: 'mlp', inputs: 3, hidden: [{ units: 2, activation: 'gelu' }], outputs: 1, head: 'sigmoid' },
    ],
    ['zero inputs', { family: 'logistic-regression', inputs: 0, hidden: [], outputs: 1, head: 'sigmoid' }],
    [
      'extra field',
      { family: 'logistic-regression', inputs: 2, hidden: [], outputs: 1, head: 'sigmoid', x: 1 },
    ],
    ['not an object', 'mlp'],
  ])('refuses a bad spec: %s', (_name, value) => {
    expect(() => parseModelSpec(value)).toThrow(ModelSpecError);
  });

  it('initialises deterministically from a seed', () => {
    const a = initWeights(FRAUD_MLP, 1);
    const b = initWeights(FRAUD_MLP, 1);
    const c = initWeights(FRAUD_MLP, 2);
    expect(a[0]!.data).toEqual(b[0]!.data);
    expect(a[0]!.data).not.toEqual(c[0]!.data);
    const w = initWeights(FIVE_MB_MODEL, 3)[0]!.data;
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(0.0195);
    expect(std).toBeLessThan(0.0205);
  });

  it('computes logistic regression by hand', () => {
    const spec = logisticRegression(2);
    const weights = [
      { name: 'dense0.weight', dims: [2, 1], data: Float32Array.from([1, -2]) },
      { name: 'dense0.bias', dims: [1], data: Float32Array.from([0.5]) },
    ];
    const y = forward(spec, weights, Float32Array.from([1, 1, 0, 0]), 2);
    expect(y[0]).toBeCloseTo(1 / (1 + Math.exp(0.5)), 6);
    expect(y[1]).toBeCloseTo(1 / (1 + Math.exp(-0.5)), 6);
  });

  it('softmax rows sum to one; ReLU clips', () => {
    const spec = mlp(4, [{ units: 3, activation: 'relu' }], 5, 'softmax');
    const weights = initWeights(spec, 9, 0.5);
    const y = forward(spec, weights, Float32Array.from([1, 2, 3, 4, -1, -2, -3, -4]), 2);
    for (let r = 0; r < 2; r++)
      expect(y.subarray(r * 5, r * 5 + 5).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
  });

  it('refuses weights that do not fit the spec', () => {
    const weights = initWeights(FRAUD_MLP, 1);
    expect(() => forward(FRAUD_MLP, weights.slice(1), new Float32Array(30), 1)).toThrow(ModelSpecError);
    const wrong = weights.map((t, i) => (i === 0 ? { ...t, dims: [64, 30] } : t));
    expect(() => forward(FRAUD_MLP, wrong, new Float32Array(30), 1)).toThrow(/expected dims/);
    expect(() => forward(FRAUD_MLP, weights, new Float32Array(29), 1)).toThrow(ModelSpecError);
  });
});
