import { addProximalGradient, createSeededUniform } from '@edgefl/fl';
import type { ModelSpec, NamedTensor } from '@edgefl/model';
import {
  backward,
  forwardInto,
  loss,
  MlpWorkspace,
  paramsFromTensors,
  tensorsFromParams,
  type Params,
} from './mlp.js';

/** A labelled data set held on the device: `rows` rows of `features` inputs, targets rows × outputs. */
export interface Dataset {
  features: number;
  rows: number;
  /** Row-major rows × features. */
  x: Float32Array;
  /** Row-major rows × outputs (one-hot for a softmax head, 0/1 for sigmoid outputs). */
  y: Float32Array;
}

export type OptimizerName = 'sgd' | 'adam';

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer?: OptimizerName;
  /** FedProx μ (Li et al. 2020): adds μ(w − w_global) to every gradient; 0 = plain local SGD/Adam. */
  proximalMu?: number;
  /** Seed of the per-epoch shuffle. */
  seed?: number;
  /** Adam's β₁, β₂, ε (Kingma & Ba 2015, defaults as in the paper). */
  adam?: { beta1?: number; beta2?: number; epsilon?: number };
  /** Checked between mini-batches; training stops with the weights reached so far when it aborts. */
  signal?: AbortSignal;
}

export interface TrainResult {
  weights: NamedTensor[];
  /** Mean loss of each epoch (over its mini-batches, before each step). */
  epochLoss: number[];
  steps: number;
  samples: number;
}

/** One-hot rows for class indices (softmax heads) or a 0/1 column (a single sigmoid output). */
export function targetsFromLabels(spec: ModelSpec, labels: ArrayLike<number>): Float32Array {
  const y = new Float32Array(labels.length * spec.outputs);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    if (spec.outputs === 1) {
      if (c !== 0 && c !== 1) throw new RangeError(`label ${c} of row ${i}: a sigmoid head needs 0 or 1`);
      y[i] = c;
    } else {
      if (!Number.isInteger(c) || c < 0 || c >= spec.outputs)
        throw new RangeError(`label ${c} of row ${i}: not a class of 0..${spec.outputs - 1}`);
      y[i * spec.outputs + c] = 1;
    }
  }
  return y;
}

function checkOptions(o: TrainOptions): void {
  if (!Number.isInteger(o.epochs) || o.epochs < 1 || o.epochs > 10_000)
    throw new RangeError('epochs must be an integer in 1..10000');
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1 || o.batchSize > 1 << 16)
    throw new RangeError('batchSize must be an integer in 1..65536');
  if (!(o.learningRate > 0 && Number.isFinite(o.learningRate)))
    throw new RangeError('learningRate must be a positive finite number');
  const mu = o.proximalMu ?? 0;
  if (!(mu >= 0 && Number.isFinite(mu))) throw new RangeError('proximalMu must be a finite number >= 0');
}

/**
 * Mini-batch training of a libs/model spec on local data: SGD or Adam, shuffled per epoch (seeded), FedProx's
 * proximal term when μ > 0 (the global weights are the ones training starts from). Deterministic given the seed.
 */
export class Trainer {
  readonly #spec: ModelSpec;
  readonly #ws: MlpWorkspace;
  readonly #batch: number;

  constructor(spec: ModelSpec, batchSize: number) {
    this.#spec = spec;
    this.#batch = batchSize;
    this.#ws = new MlpWorkspace(spec, batchSize);
  }

  /** Trains a copy of `initial`; the input tensors are not modified. */
  train(initial: readonly NamedTensor[], data: Dataset, options: TrainOptions): TrainResult {
    checkOptions(options);
    if (options.batchSize !== this.#batch) throw new RangeError('batch size differs from the trainer');
    const spec = this.#spec;
    if (data.features !== spec.inputs)
      throw new RangeError(`data has ${data.features} features, the model ${spec.inputs}`);
    if (
      data.rows < 1 ||
      data.x.length !== data.rows * spec.inputs ||
      data.y.length !== data.rows * spec.outputs
    )
      throw new RangeError('data arrays do not match rows × features / outputs');
    const params = paramsFromTensors(spec, initial);
    const global = params.map((p) => p.slice());
    const mu = options.proximalMu ?? 0;
    const step = createStep(options, params);
    const ws = this.#ws;
    const order = new Uint32Array(data.rows).map((_, i) => i);
    const uniform = createSeededUniform(options.seed ?? 1);
    const yBatch = new Float32Array(this.#batch * spec.outputs);
    const epochLoss: number[] = [];
    let steps = 0;
    let samples = 0;
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(uniform() * (i + 1));
        const t = order[i]!;
        order[i] = order[j]!;
        order[j] = t;
      }
      let sum = 0;
      let batches = 0;
      for (let start = 0; start < data.rows; start += this.#batch) {
        if (options.signal?.aborted) return this.#result(params, epochLoss, steps, samples);
        const rows = Math.min(this.#batch, data.rows - start);
        const x = ws.acts[0]!;
        for (let r = 0; r < rows; r++) {
          const src = order[start + r]!;
          x.set(data.x.subarray(src * spec.inputs, (src + 1) * spec.inputs), r * spec.inputs);
          yBatch.set(data.y.subarray(src * spec.outputs, (src + 1) * spec.outputs), r * spec.outputs);
        }
        const p = forwardInto(ws, params, rows);
        sum += loss(spec.head, p, yBatch, rows, spec.outputs);
        batches++;
        backward(ws, params, yBatch, rows);
        if (mu > 0) addProximalGradient(ws.grads, params, global, mu);
        step(ws.grads);
        steps++;
        samples += rows;
      }
      epochLoss.push(sum / batches);
    }
    return this.#result(params, epochLoss, steps, samples);
  }

  #result(params: Params, epochLoss: number[], steps: number, samples: number): TrainResult {
    return { weights: tensorsFromParams(this.#spec, params), epochLoss, steps, samples };
  }
}

/** An optimiser step over the parameter arrays (in place). */
function createStep(options: TrainOptions, params: Params): (grads: readonly Float32Array[]) => void {
  const lr = options.learningRate;
  if ((options.optimizer ?? 'sgd') === 'sgd') {
    return (grads) => {
      for (let l = 0; l < params.length; l++) {
        const p = params[l]!;
        const g = grads[l]!;
        for (let j = 0; j < p.length; j++) p[j] = p[j]! - lr * g[j]!;
      }
    };
  }
  // Adam, Kingma & Ba 2015, Algorithm 1 (with bias correction)
  const b1 = options.adam?.beta1 ?? 0.9;
  const b2 = options.adam?.beta2 ?? 0.999;
  const eps = options.adam?.epsilon ?? 1e-8;
  const m = params.map((p) => new Float32Array(p.length));
  const v = params.map((p) => new Float32Array(p.length));
  let t = 0;
  return (grads) => {
    t++;
    const c1 = 1 - b1 ** t;
    const c2 = 1 - b2 ** t;
    const stepSize = (lr * Math.sqrt(c2)) / c1;
    const epsHat = eps * Math.sqrt(c2);
    for (let l = 0; l < params.length; l++) {
      const p = params[l]!;
      const g = grads[l]!;
      const ml = m[l]!;
      const vl = v[l]!;
      for (let j = 0; j < p.length; j++) {
        const gj = g[j]!;
        const mj = (ml[j] = b1 * ml[j]! + (1 - b1) * gj);
        const vj = (vl[j] = b2 * vl[j]! + (1 - b2) * gj * gj);
        p[j] = p[j]! - (stepSize * mj) / (Math.sqrt(vj) + epsHat);
      }
    }
  };
}

/** The training forward pass over many rows (in batches of the workspace size): rows × outputs. */
export function predict(
  spec: ModelSpec,
  weights: readonly NamedTensor[],
  x: Float32Array,
  rows: number,
): Float32Array {
  const params = paramsFromTensors(spec, weights);
  const batch = Math.min(rows, 256);
  const ws = new MlpWorkspace(spec, batch);
  const out = new Float32Array(rows * spec.outputs);
  for (let start = 0; start < rows; start += batch) {
    const n = Math.min(batch, rows - start);
    ws.acts[0]!.set(x.subarray(start * spec.inputs, (start + n) * spec.inputs));
    const p = forwardInto(ws, params, n);
    out.set(p.subarray(0, n * spec.outputs), start * spec.outputs);
  }
  return out;
}
