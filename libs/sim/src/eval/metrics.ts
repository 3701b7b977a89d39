import { predict, Trainer, type OptimizerName } from '@edgefl/device-sdk';
import { initWeights, type ModelSpec, type NamedTensor } from '@edgefl/model';
import type { Table, Task } from '../data/types.js';
import { datasetOf } from '../fleet/fleet.js';

/**
 * ROC AUC of scores for binary labels (1 = positive) by the Mann–Whitney U statistic: AUC = (R₊ − n₊(n₊ + 1)/2) /
 * (n₊·n₋), R₊ the sum of the positives' ranks, tied scores given their average rank (so a tie counts one half, as in
 * scikit-learn's roc_auc_score). O(n log n). Hand-written: 20 lines, and no dependency here computes it. Null when
 * one class is missing (the AUC is undefined).
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number | null {
  const n = scores.length;
  if (labels.length !== n) throw new RangeError(`${n} scores for ${labels.length} labels`);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(scores[i])) throw new RangeError(`score ${i} is not finite: ${scores[i]}`);
    if (labels[i] !== 0 && labels[i] !== 1)
      throw new RangeError(`label ${i} is ${labels[i]}; binary labels are 0 or 1`);
  }
  order.sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const rank = (i + j + 2) / 2; // ranks i+1 … j+1, averaged
    for (let k = i; k <= j; k++)
      if (labels[order[k]!] === 1) {
        positives++;
        rankSum += rank;
      }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** A model's figures on a table: accuracy, and ROC AUC of the positive class's probability for binary tasks. */
export interface Evaluation {
  readonly accuracy: number;
  readonly rocAuc: number | null;
}

/**
 * Evaluates weights on a table through the device SDK's forward pass (the one the ONNX export is tested against to
 * 1e-5): argmax for a softmax head, p ≥ 0.5 for one sigmoid output; ROC AUC for binary tasks (the sigmoid output, or
 * the softmax's class-1 probability), null for multiclass.
 */
export function evaluate(
  spec: ModelSpec,
  weights: readonly NamedTensor[],
  table: Table,
  task: Task,
): Evaluation {
  if (table.rows === 0) return { accuracy: 0, rocAuc: null };
  if (table.cols !== spec.inputs)
    throw new RangeError(`the table has ${table.cols} features; the model takes ${spec.inputs}`);
  const out = predict(spec, weights, table.features, table.rows);
  const k = spec.outputs;
  let correct = 0;
  const positive = task === 'binary' ? new Float64Array(table.rows) : null;
  for (let r = 0; r < table.rows; r++) {
    let picked = 0;
    if (k === 1) picked = out[r]! >= 0.5 ? 1 : 0;
    else for (let c = 1; c < k; c++) if (out[r * k + c]! > out[r * k + picked]!) picked = c;
    if (picked === table.labels[r]) correct++;
    if (positive) positive[r] = k === 1 ? out[r]! : out[r * k + 1]!;
  }
  return {
    accuracy: correct / table.rows,
    rocAuc: positive ? rocAuc(positive, table.labels) : null,
  };
}

/** Options of the centralized baseline. */
export interface BaselineOptions {
  /** Evaluation points (the fleet's rounds). */
  readonly rounds: number;
  /** Passes over the training split per round: the devices' local epochs, so both see the data as often. */
  readonly epochsPerRound: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly optimizer?: OptimizerName;
  readonly seed: number;
  /** The starting weights (default: initWeights(spec, seed, 0.1), as the demo's first version). */
  readonly initial?: readonly NamedTensor[];
}

/**
 * The centralized baseline: the same architecture trained in one place on the whole training split with the device
 * SDK's Trainer, `epochsPerRound` passes per round (what each device makes over its own rows per round), evaluated on
 * the held-out test split after every round. Returns one Evaluation per round.
 */
export function centralizedBaseline(
  spec: ModelSpec,
  train: Table,
  test: Table,
  task: Task,
  o: BaselineOptions,
): Evaluation[] {
  if (!(Number.isInteger(o.rounds) && o.rounds >= 1))
    throw new RangeError(`rounds must be ≥ 1, got ${o.rounds}`);
  const data = datasetOf(spec, train);
  const trainer = new Trainer(spec, o.batchSize);
  let weights: NamedTensor[] = [...(o.initial ?? initWeights(spec, o.seed, 0.1))];
  const out: Evaluation[] = [];
  for (let r = 0; r < o.rounds; r++) {
    weights = trainer.train(weights, data, {
      epochs: o.epochsPerRound,
      batchSize: o.batchSize,
      learningRate: o.learningRate,
      optimizer: o.optimizer ?? 'sgd',
      seed: o.seed + r,
    }).weights;
    out.push(evaluate(spec, weights, test, task));
  }
  return out;
}
