import {
  activate,
  parameterShapes,
  type Activation,
  type Head,
  type ModelSpec,
  type NamedTensor,
} from '@edgefl/model';

/**
 * Forward and backward passes of libs/model's model families (logistic regression and MLPs: dense layers
 * `y = act(x·W + b)` with W [in, out] row-major, then a sigmoid or softmax head), over typed arrays.
 *
 * Hand-written: ONNX Runtime's training API does not exist for Node, and the maintained JS tensor libraries measured
 * on this workload (TensorFlow.js CPU and WASM backends, see the README's "Training" section) were slower than these
 * loops for the small dense layers devices train. The kernels are generic over Float32Array (training) and
 * Float64Array (the finite-difference gradient checks in the tests).
 *
 * Loss: binary cross-entropy for a sigmoid head (one or several independent outputs), categorical cross-entropy for a
 * softmax head; both give dL/dlogits = (p − y) / batch, which is what backward() starts from.
 */
export type Floats = Float32Array | Float64Array;
type FloatCtor = Float32ArrayConstructor | Float64ArrayConstructor;

export interface Layer {
  inputs: number;
  outputs: number;
  activation: Activation | Head;
}

/** The layers of a spec, in order (the last one ends in the head). */
export function layersOf(spec: ModelSpec): Layer[] {
  const sizes = [spec.inputs, ...spec.hidden.map((h) => h.units), spec.outputs];
  return sizes.slice(1).map((outputs, i) => ({
    inputs: sizes[i]!,
    outputs,
    activation: i < spec.hidden.length ? spec.hidden[i]!.activation : spec.head,
  }));
}

/** Flat parameter arrays in libs/model's order: dense0.weight, dense0.bias, dense1.weight, … */
export type Params<T extends Floats = Float32Array> = T[];

export function paramsFromTensors(spec: ModelSpec, tensors: readonly NamedTensor[]): Params {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  return parameterShapes(spec).map(({ name, dims }) => {
    const t = byName.get(name);
    const n = dims.reduce((a, b) => a * b, 1);
    if (!t || t.data.length !== n) throw new RangeError(`weights lack ${name} [${dims.join(',')}]`);
    return t.data.slice();
  });
}

export function tensorsFromParams(spec: ModelSpec, params: readonly Float32Array[]): NamedTensor[] {
  return parameterShapes(spec).map(({ name, dims }, i) => ({ name, dims, data: params[i]!.slice() }));
}

/** Multiplies dY by the derivative of the activation, given the activation's output y (in place on dY). */
function activationBackward(dy: Floats, y: Floats, activation: Activation): void {
  switch (activation) {
    case 'identity':
      return;
    case 'relu':
      for (let i = 0; i < dy.length; i++) if (y[i]! <= 0) dy[i] = 0;
      return;
    case 'tanh':
      for (let i = 0; i < dy.length; i++) dy[i] = dy[i]! * (1 - y[i]! * y[i]!);
      return;
    case 'sigmoid':
      for (let i = 0; i < dy.length; i++) dy[i] = dy[i]! * y[i]! * (1 - y[i]!);
      return;
  }
}

/** Y[rows, out] = X[rows, in] · W[in, out] + b (i-k-j order: the inner loop runs along contiguous rows). */
function dense(
  x: Floats,
  w: Floats,
  b: Floats,
  y: Floats,
  rows: number,
  inputs: number,
  outputs: number,
): void {
  for (let r = 0; r < rows; r++) {
    const yAt = r * outputs;
    for (let o = 0; o < outputs; o++) y[yAt + o] = b[o]!;
    const xAt = r * inputs;
    for (let k = 0; k < inputs; k++) {
      const xv = x[xAt + k]!;
      if (xv === 0) continue; // ReLU outputs are often zero
      const wAt = k * outputs;
      for (let o = 0; o < outputs; o++) y[yAt + o] = y[yAt + o]! + xv * w[wAt + o]!;
    }
  }
}

/**
 * Workspace for one batch size: activations of every layer and the gradient buffers, allocated once and reused
 * across steps (a training step allocates nothing).
 */
export class MlpWorkspace<T extends Floats = Float32Array> {
  readonly layers: Layer[];
  /** acts[0] is the input; acts[l + 1] the output of layer l. */
  readonly acts: T[];
  readonly deltas: T[];
  readonly grads: T[];
  constructor(
    readonly spec: ModelSpec,
    readonly batch: number,
    ctor: FloatCtor = Float32Array,
  ) {
    this.layers = layersOf(spec);
    this.acts = [
      new ctor(batch * spec.inputs) as T,
      ...this.layers.map((l) => new ctor(batch * l.outputs) as T),
    ];
    this.deltas = this.layers.map((l) => new ctor(batch * l.outputs) as T);
    this.grads = parameterShapes(spec).map(({ dims }) => new ctor(dims.reduce((a, b) => a * b, 1)) as T);
  }
}

/** Forward pass of `rows` ≤ workspace.batch rows already copied into ws.acts[0]; returns the head's output. */
export function forwardInto<T extends Floats>(
  ws: MlpWorkspace<T>,
  params: readonly Floats[],
  rows: number,
): T {
  for (let l = 0; l < ws.layers.length; l++) {
    const layer = ws.layers[l]!;
    const y = ws.acts[l + 1]!;
    dense(ws.acts[l]!, params[2 * l]!, params[2 * l + 1]!, y, rows, layer.inputs, layer.outputs);
    activate(y.subarray(0, rows * layer.outputs), layer.activation, rows, layer.outputs);
  }
  return ws.acts[ws.layers.length]!;
}

const EPS = 1e-12;

/** Mean loss of the head's output `p` against targets `y` (both rows × outputs). */
export function loss(head: Head, p: Floats, y: Floats, rows: number, outputs: number): number {
  let sum = 0;
  const n = rows * outputs;
  if (head === 'softmax') {
    for (let i = 0; i < n; i++) if (y[i]! > 0) sum -= y[i]! * Math.log(Math.max(p[i]!, EPS));
  } else {
    for (let i = 0; i < n; i++) {
      const pi = p[i]!;
      sum -= y[i]! * Math.log(Math.max(pi, EPS)) + (1 - y[i]!) * Math.log(Math.max(1 - pi, EPS));
    }
  }
  return sum / rows;
}

/**
 * Backward pass after forwardInto(ws, params, rows): fills ws.grads with dLoss/dparams for the mean loss over the
 * rows against `targets` (rows × outputs; one-hot for softmax).
 */
export function backward<T extends Floats>(
  ws: MlpWorkspace<T>,
  params: readonly Floats[],
  targets: Floats,
  rows: number,
): void {
  const last = ws.layers.length - 1;
  const out = ws.acts[last + 1]!;
  const top = ws.deltas[last]!;
  const width = ws.layers[last]!.outputs;
  for (let i = 0; i < rows * width; i++) top[i] = (out[i]! - targets[i]!) / rows;
  for (let l = last; l >= 0; l--) {
    const { inputs, outputs } = ws.layers[l]!;
    const delta = ws.deltas[l]!;
    const x = ws.acts[l]!;
    const gw = ws.grads[2 * l]!;
    const gb = ws.grads[2 * l + 1]!;
    gw.fill(0);
    gb.fill(0);
    for (let r = 0; r < rows; r++) {
      const dAt = r * outputs;
      for (let o = 0; o < outputs; o++) gb[o] = gb[o]! + delta[dAt + o]!;
      const xAt = r * inputs;
      for (let k = 0; k < inputs; k++) {
        const xv = x[xAt + k]!;
        if (xv === 0) continue;
        const gAt = k * outputs;
        for (let o = 0; o < outputs; o++) gw[gAt + o] = gw[gAt + o]! + xv * delta[dAt + o]!;
      }
    }
    if (l === 0) break;
    // delta of the layer below: (delta · Wᵀ) ⊙ act'(its output)
    const w = params[2 * l]!;
    const below = ws.deltas[l - 1]!;
    for (let r = 0; r < rows; r++) {
      const dAt = r * outputs;
      const bAt = r * inputs;
      for (let k = 0; k < inputs; k++) {
        const wAt = k * outputs;
        let s = 0;
        for (let o = 0; o < outputs; o++) s += delta[dAt + o]! * w[wAt + o]!;
        below[bAt + k] = s;
      }
    }
    activationBackward(
      below.subarray(0, rows * inputs),
      x.subarray(0, rows * inputs),
      ws.layers[l - 1]!.activation as Activation,
    );
  }
}
