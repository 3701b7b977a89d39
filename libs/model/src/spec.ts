import { z } from 'zod';
import { ModelSpecError } from './errors.js';
import { SeededRng } from './rng.js';
import { assertTensor, elementCount, tensorMap, type NamedTensor } from './tensor.js';

/** Hidden-layer activations (each maps to one ONNX operator). */
export const ACTIVATIONS = ['relu', 'tanh', 'sigmoid', 'identity'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

/** Output heads: sigmoid (binary / multi-label) or softmax (multi-class, over the last axis). */
export const HEADS = ['sigmoid', 'softmax'] as const;
export type Head = (typeof HEADS)[number];

export interface DenseLayer {
  units: number;
  activation: Activation;
}

/**
 * The families devices train: logistic regression (no hidden layer) and MLPs (dense layers with activations), each
 * ending in a dense output layer and a sigmoid or softmax head. Weights are named float32 tensors
 * `dense<i>.weight` [in, out] and `dense<i>.bias` [out], i = 0 … hidden.length (the last is the output layer).
 */
export interface ModelSpec {
  family: 'logistic-regression' | 'mlp';
  inputs: number;
  hidden: DenseLayer[];
  outputs: number;
  head: Head;
}

const MAX_UNITS = 1 << 20;
const MAX_PARAMETERS = 1 << 28;

const units = z.number().int().min(1).max(MAX_UNITS);
/** The JSON shape of a ModelSpec (what the artifact header carries). */
export const ModelSpecSchema = z
  .object({
    family: z.enum(['logistic-regression', 'mlp']),
    inputs: units,
    hidden: z.array(z.object({ units, activation: z.enum(ACTIVATIONS) }).strict()).max(64),
    outputs: units,
    head: z.enum(HEADS),
  })
  .strict();

/** Validates an untrusted value as a ModelSpec; throws ModelSpecError with the first problem. */
export function parseModelSpec(value: unknown): ModelSpec {
  const parsed = ModelSpecSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ModelSpecError(`model spec: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const spec: ModelSpec = parsed.data;
  if (spec.family === 'logistic-regression' && spec.hidden.length > 0) {
    throw new ModelSpecError('model spec: logistic regression has no hidden layers');
  }
  if (spec.family === 'mlp' && spec.hidden.length === 0) {
    throw new ModelSpecError('model spec: an MLP has at least one hidden layer');
  }
  if (spec.head === 'softmax' && spec.outputs < 2) {
    throw new ModelSpecError('model spec: a softmax head needs at least 2 outputs');
  }
  if (parameterCount(spec) > MAX_PARAMETERS) {
    throw new ModelSpecError(`model spec: more than ${MAX_PARAMETERS} parameters`);
  }
  return spec;
}

/** Logistic regression: binary with a sigmoid head (outputs 1), or multinomial with a softmax head. */
export function logisticRegression(
  inputs: number,
  outputs = 1,
  head: Head = outputs === 1 ? 'sigmoid' : 'softmax',
): ModelSpec {
  return parseModelSpec({ family: 'logistic-regression', inputs, hidden: [], outputs, head });
}

/** An MLP; a hidden layer given as a number uses ReLU. */
export function mlp(
  inputs: number,
  hidden: Array<number | DenseLayer>,
  outputs: number,
  head: Head,
): ModelSpec {
  return parseModelSpec({
    family: 'mlp',
    inputs,
    hidden: hidden.map((h) => (typeof h === 'number' ? { units: h, activation: 'relu' } : h)),
    outputs,
    head,
  });
}

/** The reference workloads every benchmark measures (docs/architecture.md, "Reference workloads"). */
export const FRAUD_MLP: ModelSpec = mlp(30, [64, 32], 1, 'sigmoid');
export const DIGITS_MLP: ModelSpec = mlp(64, [128], 10, 'softmax');
/** "5 MB model": 1280 → 1024 → 1; its 1280×1024 weight matrix holds 1,310,720 float32 (≈ 5 MiB). */
export const FIVE_MB_MODEL: ModelSpec = mlp(1280, [1024], 1, 'sigmoid');

export interface TensorShape {
  name: string;
  dims: number[];
}

/** The named tensors a spec needs, in a fixed order. */
export function parameterShapes(spec: ModelSpec): TensorShape[] {
  const sizes = [spec.inputs, ...spec.hidden.map((h) => h.units), spec.outputs];
  const shapes: TensorShape[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    shapes.push({ name: `dense${i}.weight`, dims: [sizes[i]!, sizes[i + 1]!] });
    shapes.push({ name: `dense${i}.bias`, dims: [sizes[i + 1]!] });
  }
  return shapes;
}

export function parameterCount(spec: ModelSpec): number {
  return parameterShapes(spec).reduce((n, s) => n + elementCount(s.dims), 0);
}

/** Weights N(0, std²) (biases zero), deterministic given the seed. */
export function initWeights(spec: ModelSpec, seed: number, std = 0.02): NamedTensor[] {
  const rng = new SeededRng(seed);
  return parameterShapes(spec).map(({ name, dims }) => {
    const data = new Float32Array(elementCount(dims));
    if (name.endsWith('.weight')) for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
    return { name, dims, data };
  });
}

/** Checks that `weights` hold exactly the spec's tensors with the right shapes; returns them in spec order. */
export function checkWeights(spec: ModelSpec, weights: readonly NamedTensor[]): NamedTensor[] {
  const byName = tensorMap(weights);
  const shapes = parameterShapes(spec);
  if (byName.size !== shapes.length) {
    throw new ModelSpecError(`expected ${shapes.length} tensors for this spec, got ${byName.size}`);
  }
  return shapes.map(({ name, dims }) => {
    const t = byName.get(name);
    if (!t) throw new ModelSpecError(`missing tensor ${name}`);
    assertTensor(t);
    if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) {
      throw new ModelSpecError(
        `tensor ${name}: expected dims [${dims.join(',')}], got [${t.dims.join(',')}]`,
      );
    }
    return t;
  });
}

/**
 * Applies an activation or head in place to `rows` × `cols` values (softmax over each row): the same function the
 * ONNX operators compute. Exported for the device runtime's training kernels (float32 or float64).
 */
export function activate(
  x: Float32Array | Float64Array,
  activation: Activation | Head,
  rows: number,
  cols: number,
): void {
  switch (activation) {
    case 'identity':
      return;
    case 'relu':
      for (let i = 0; i < x.length; i++) if (x[i]! < 0) x[i] = 0;
      return;
    case 'tanh':
      for (let i = 0; i < x.length; i++) x[i] = Math.tanh(x[i]!);
      return;
    case 'sigmoid':
      for (let i = 0; i < x.length; i++) x[i] = 1 / (1 + Math.exp(-x[i]!));
      return;
    case 'softmax':
      for (let r = 0; r < rows; r++) {
        let max = -Infinity;
        for (let c = 0; c < cols; c++) max = Math.max(max, x[r * cols + c]!);
        let sum = 0;
        for (let c = 0; c < cols; c++) sum += x[r * cols + c] = Math.exp(x[r * cols + c]! - max);
        for (let c = 0; c < cols; c++) x[r * cols + c]! /= sum;
      }
      return;
  }
}

/**
 * The reference forward pass: `input` holds `batch` rows of `spec.inputs` values; returns `batch` rows of
 * `spec.outputs` values. Computed in float64 from the float32 weights; the ONNX model libs/model builds gives the
 * same outputs to 1e-5.
 */
export function forward(
  spec: ModelSpec,
  weights: readonly NamedTensor[],
  input: Float32Array,
  batch: number,
): Float32Array {
  const ordered = checkWeights(spec, weights);
  if (!Number.isSafeInteger(batch) || batch < 1 || input.length !== batch * spec.inputs) {
    throw new ModelSpecError(`input must hold batch × ${spec.inputs} values`);
  }
  let x = Float64Array.from(input);
  let width = spec.inputs;
  const layers = spec.hidden.length + 1;
  for (let l = 0; l < layers; l++) {
    const w = ordered[2 * l]!;
    const b = ordered[2 * l + 1]!;
    const out = w.dims[1]!;
    const y = new Float64Array(batch * out);
    for (let r = 0; r < batch; r++) {
      for (let o = 0; o < out; o++) y[r * out + o] = b.data[o]!;
      for (let k = 0; k < width; k++) {
        const xv = x[r * width + k]!;
        if (xv === 0) continue;
        const row = k * out;
        for (let o = 0; o < out; o++) y[r * out + o]! += xv * w.data[row + o]!;
      }
    }
    activate(y, l < spec.hidden.length ? spec.hidden[l]!.activation : spec.head, batch, out);
    x = y;
    width = out;
  }
  return Float32Array.from(x);
}
