// On-device training throughput: one epoch of 5,000 samples of the fraud MLP (30 → 64 → 32 → 1, ReLU, sigmoid
// head), mini-batch 32, Adam, through the SDK's Trainer (hand-written Float32Array kernels), next to the same epoch
// in a reference implementation in the same run: plain numpy float32 code written for this bench
// (bench/device/numpy_mlp.py, same data, same initial weights, same batch order). With TFJS_DIR pointing at a
// directory where @tensorflow/tfjs is installed (npm install @tensorflow/tfjs in a scratch directory), TensorFlow.js's
// CPU and WASM backends are measured too: the maintained JS tensor libraries the kernels were chosen against.
// Each figure is the best of EPOCHS epochs (from the same initial weights), the machine being shared.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { targetsFromLabels, Trainer } from '@edgefl/device-sdk';
import { FRAUD_MLP, initWeights, SeededRng } from '@edgefl/model';
import { figure, writeReport, type Figure } from './lib/report.ts';

const ROWS = 5_000;
const BATCH = 32;
const LR = 0.01;
const EPOCHS = Number(process.env.DEVICE_TRAINING_EPOCHS ?? 5);
const spec = FRAUD_MLP;
const rng = new SeededRng(20261206);
const x = new Float32Array(ROWS * 30).map(() => rng.normal());
// a fraud-like rule with noise: a few features interact
const labels = Array.from({ length: ROWS }, (_, r) =>
  x[r * 30]! * x[r * 30 + 1]! + 0.5 * x[r * 30 + 2]! + 0.3 * rng.normal() > 0.8 ? 1 : 0,
);
const y = targetsFromLabels(spec, labels);
const initial = initWeights(spec, 7, 0.1);

let oursBest = Infinity;
let oursLoss = 0;
const trainer = new Trainer(spec, BATCH);
for (let e = 0; e < EPOCHS; e++) {
  const t = performance.now();
  const r = trainer.train(
    initial,
    { features: 30, rows: ROWS, x, y },
    { epochs: 1, batchSize: BATCH, learningRate: LR, optimizer: 'adam', seed: 1 },
  );
  oursBest = Math.min(oursBest, (performance.now() - t) / 1000);
  oursLoss = r.epochLoss[0]!;
}

const figures: Figure[] = [];
const notes: string[] = [`ours: epoch loss ${oursLoss.toFixed(4)}`];
const dir = mkdtempSync(join(tmpdir(), 'edgefl-bench-training-'));
let numpy: { seconds: number; loss: number } | null = null;
try {
  writeFileSync(join(dir, 'x.f32'), new Uint8Array(x.buffer));
  writeFileSync(join(dir, 'y.f32'), new Uint8Array(y.buffer));
  const order = new Uint32Array(ROWS).map((_, i) => i);
  writeFileSync(join(dir, 'order.u32'), new Uint8Array(order.buffer));
  const flat = new Float32Array(initial.reduce((n, t) => n + t.data.length, 0));
  let at = 0;
  for (const t of initial) {
    flat.set(t.data, at);
    at += t.data.length;
  }
  writeFileSync(join(dir, 'w.f32'), new Uint8Array(flat.buffer));
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ rows: ROWS, batch: BATCH, lr: LR }));
  const py = spawnSync(
    'python3',
    [join(import.meta.dirname, 'device', 'numpy_mlp.py'), dir, String(EPOCHS)],
    { encoding: 'utf8' },
  );
  if (py.status === 0) numpy = JSON.parse(py.stdout.trim().split('\n').at(-1)!);
  else notes.push(`numpy reference did not run: ${py.stderr.trim().split('\n').at(-1)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (numpy) notes.push(`numpy: epoch loss ${numpy.loss.toFixed(4)} (unshuffled order; ours shuffles)`);
figures.push(
  figure(
    'one epoch, 5,000 samples, batch 32, Adam: samples/s',
    'samples/s',
    ROWS / oursBest,
    numpy ? { name: 'numpy float32 (written for the bench)', value: ROWS / numpy.seconds } : null,
  ),
);

/** The part of TensorFlow.js's API this bench uses (it is not a dependency of the repository). */
interface TfTensor {
  dispose(): void;
}
interface Tf {
  version: { tfjs: string };
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  tensor2d(values: Float32Array, shape: [number, number]): TfTensor;
  tensor(values: Float32Array, shape: number[]): TfTensor;
  variable(initial: TfTensor): TfTensor;
  train: { adam(lr: number): { minimize(loss: () => TfTensor): void; dispose(): void } };
  tidy(fn: () => void): void;
  slice(t: TfTensor, begin: number[], size: number[]): TfTensor;
  relu(t: TfTensor): TfTensor;
  add(a: TfTensor, b: TfTensor): TfTensor;
  matMul(a: TfTensor, b: TfTensor): TfTensor;
  losses: { sigmoidCrossEntropy(labels: TfTensor, logits: TfTensor): TfTensor };
}

const tfjsDir = process.env.TFJS_DIR;
if (tfjsDir) {
  const tf = (await import(
    pathToFileURL(join(tfjsDir, 'node_modules', '@tensorflow', 'tfjs', 'dist', 'tf.node.js')).href
  )) as Tf;
  await import(
    pathToFileURL(
      join(tfjsDir, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist', 'tf-backend-wasm.node.js'),
    ).href
  );
  for (const backend of ['cpu', 'wasm']) {
    await tf.setBackend(backend);
    await tf.ready();
    const xs = tf.tensor2d(x, [ROWS, 30]);
    const ys = tf.tensor2d(y, [ROWS, 1]);
    let best = Infinity;
    for (let e = 0; e < EPOCHS; e++) {
      const vars = initial.map((t) => tf.variable(tf.tensor(t.data, t.dims)));
      const opt = tf.train.adam(LR);
      const t0 = performance.now();
      for (let s = 0; s < ROWS; s += BATCH) {
        const n = Math.min(BATCH, ROWS - s);
        tf.tidy(() => {
          const xb = tf.slice(xs, [s, 0], [n, 30]);
          const yb = tf.slice(ys, [s, 0], [n, 1]);
          opt.minimize(() => {
            let h = tf.relu(tf.add(tf.matMul(xb, vars[0]!), vars[1]!));
            h = tf.relu(tf.add(tf.matMul(h, vars[2]!), vars[3]!));
            return tf.losses.sigmoidCrossEntropy(yb, tf.add(tf.matMul(h, vars[4]!), vars[5]!));
          });
        });
      }
      best = Math.min(best, (performance.now() - t0) / 1000);
      vars.forEach((v) => v.dispose());
      opt.dispose();
    }
    figures.push(
      figure(`one epoch, samples/s vs TensorFlow.js ${backend}`, 'samples/s', ROWS / oursBest, {
        name: `tfjs ${tf.version.tfjs} ${backend} backend`,
        value: ROWS / best,
      }),
    );
  }
} else {
  notes.push(
    'TFJS_DIR unset: TensorFlow.js not measured (see the device-sdk README for the figures measured when choosing the kernels)',
  );
}
writeReport({ name: 'device-training', figures, notes });
