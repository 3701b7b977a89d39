import * as ort from 'onnxruntime-node';
import {
  buildOnnx,
  forward,
  initWeights,
  logisticRegression,
  mlp,
  FRAUD_MLP,
  type ModelSpec,
} from '@edgefl/model';
import { describe, expect, it } from 'vitest';
import { backward, forwardInto, loss, MlpWorkspace, paramsFromTensors } from './mlp.js';
import { predict, targetsFromLabels, Trainer, type Dataset } from './trainer.js';

function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** A separable task: label = 1 when the first two features sum above 0 (binary), or argmax of three features. */
function dataset(spec: ModelSpec, rows: number, seed: number): Dataset {
  const g = gaussian(seed);
  const x = new Float32Array(rows * spec.inputs).map(() => g());
  const labels = Array.from({ length: rows }, (_, r) => {
    const v = x.subarray(r * spec.inputs, (r + 1) * spec.inputs);
    if (spec.outputs === 1) return v[0]! + v[1]! > 0 ? 1 : 0;
    let best = 0;
    for (let c = 1; c < spec.outputs; c++) if (v[c]! > v[best]!) best = c;
    return best;
  });
  return { features: spec.inputs, rows, x, y: targetsFromLabels(spec, labels) };
}

const FAMILIES: Array<[string, ModelSpec]> = [
  ['logistic regression (sigmoid)', logisticRegression(5)],
  ['multinomial logistic regression (softmax)', logisticRegression(4, 3)],
  ['MLP relu → sigmoid', mlp(6, [5, 4], 1, 'sigmoid')],
  [
    'MLP tanh/sigmoid/identity → softmax',
    mlp(
      5,
      [
        { units: 4, activation: 'tanh' },
        { units: 3, activation: 'sigmoid' },
        { units: 4, activation: 'identity' },
      ],
      3,
      'softmax',
    ),
  ],
];

describe('training kernels: finite-difference gradient checks (float64)', () => {
  it.each(FAMILIES)('%s: backward() matches central differences to 1e-6 relative', (_name, spec) => {
    const rows = 7;
    const data = dataset(spec, rows, 3);
    const params = paramsFromTensors(spec, initWeights(spec, 11, 0.5)).map((p) => Float64Array.from(p));
    // biases away from zero so ReLU kinks are not hit exactly
    params.forEach((p, i) => {
      if (i % 2 === 1) for (let j = 0; j < p.length; j++) p[j] = 0.1 * (j + 1);
    });
    const ws = new MlpWorkspace<Float64Array>(spec, rows, Float64Array);
    ws.acts[0]!.set(data.x);
    const y = Float64Array.from(data.y);
    const f = () => loss(spec.head, forwardInto(ws, params, rows), y, rows, spec.outputs);
    f();
    backward(ws, params, y, rows);
    const analytic = ws.grads.map((g) => g.slice());
    const h = 1e-6;
    let checked = 0;
    params.forEach((p, l) => {
      for (let j = 0; j < p.length; j++) {
        const keep = p[j]!;
        p[j] = keep + h;
        const up = f();
        p[j] = keep - h;
        const down = f();
        p[j] = keep;
        const numeric = (up - down) / (2 * h);
        const a = analytic[l]![j]!;
        expect(Math.abs(a - numeric), `param ${l}[${j}]`).toBeLessThanOrEqual(
          1e-6 * Math.max(1, Math.abs(numeric)),
        );
        checked++;
      }
    });
    expect(checked).toBeGreaterThanOrEqual(6);
  });
});

describe('training', () => {
  it('SGD and Adam reduce the loss and reach high accuracy on a separable task; deterministic given the seed', () => {
    const spec = FRAUD_MLP;
    const data = dataset(spec, 2000, 5);
    for (const optimizer of ['sgd', 'adam'] as const) {
      const trainer = new Trainer(spec, 32);
      const options = {
        epochs: 5,
        batchSize: 32,
        learningRate: optimizer === 'sgd' ? 0.5 : 0.01,
        optimizer,
        seed: 9,
      };
      const a = trainer.train(initWeights(spec, 1, 0.1), data, options);
      const b = trainer.train(initWeights(spec, 1, 0.1), data, options);
      expect(a.epochLoss.at(-1)!).toBeLessThan(a.epochLoss[0]! * 0.6);
      expect(a.weights.map((t) => Array.from(t.data))).toEqual(b.weights.map((t) => Array.from(t.data)));
      const p = predict(spec, a.weights, data.x, data.rows);
      let right = 0;
      for (let r = 0; r < data.rows; r++) if ((p[r]! >= 0.5 ? 1 : 0) === data.y[r]) right++;
      expect(right / data.rows, optimizer).toBeGreaterThan(0.95);
    }
  });

  it('FedProx: a larger μ keeps the trained weights closer to the global ones', () => {
    const spec = mlp(6, [8], 3, 'softmax');
    const data = dataset(spec, 500, 8);
    const global = initWeights(spec, 2, 0.1);
    const distance = (mu: number) => {
      const trained = new Trainer(spec, 16).train(global, data, {
        epochs: 3,
        batchSize: 16,
        learningRate: 0.2,
        proximalMu: mu,
      }).weights;
      let d = 0;
      trained.forEach((t, i) => t.data.forEach((v, j) => (d += (v - global[i]!.data[j]!) ** 2)));
      return Math.sqrt(d);
    };
    const free = distance(0);
    const tight = distance(5);
    expect(tight).toBeLessThan(free * 0.7);
  });

  it('stops at the next mini-batch when its signal aborts', () => {
    const spec = FRAUD_MLP;
    const controller = new AbortController();
    controller.abort();
    const r = new Trainer(spec, 32).train(initWeights(spec, 1), dataset(spec, 100, 1), {
      epochs: 3,
      batchSize: 32,
      learningRate: 0.1,
      signal: controller.signal,
    });
    expect(r.steps).toBe(0);
  });

  it.each(FAMILIES)(
    '%s: trained weights exported with libs/model buildOnnx give the training forward pass to 1e-5 in onnxruntime',
    async (_n, spec) => {
      const data = dataset(spec, 300, 4);
      const trained = new Trainer(spec, 20).train(initWeights(spec, 3, 0.3), data, {
        epochs: 2,
        batchSize: 20,
        learningRate: 0.05,
        optimizer: 'adam',
      }).weights;
      const ours = predict(spec, trained, data.x, data.rows);
      const session = await ort.InferenceSession.create(buildOnnx(spec, trained));
      const out = await session.run({ input: new ort.Tensor('float32', data.x, [data.rows, spec.inputs]) });
      const theirs = out['output']!.data as Float32Array;
      let max = 0;
      for (let i = 0; i < ours.length; i++) max = Math.max(max, Math.abs(ours[i]! - theirs[i]!));
      expect(max).toBeLessThanOrEqual(1e-5);
      // and libs/model's float64 reference forward pass agrees too
      const reference = forward(spec, trained, data.x, data.rows);
      for (let i = 0; i < ours.length; i++)
        expect(Math.abs(ours[i]! - reference[i]!)).toBeLessThanOrEqual(1e-5);
      await session.release();
    },
  );

  it('refuses labels the head cannot take and data of the wrong width', () => {
    expect(() => targetsFromLabels(FRAUD_MLP, [2])).toThrow(/0 or 1/);
    expect(() => targetsFromLabels(mlp(3, [2], 3, 'softmax'), [3])).toThrow(/class/);
    const data = dataset(mlp(3, [2], 1, 'sigmoid'), 10, 1);
    expect(() =>
      new Trainer(FRAUD_MLP, 4).train(initWeights(FRAUD_MLP, 1), data, {
        epochs: 1,
        batchSize: 4,
        learningRate: 0.1,
      }),
    ).toThrow(/features/);
  });
});
