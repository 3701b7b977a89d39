import { standardize } from '@edgefl/device-sdk';
import { stream } from '../random.js';
import { DatasetError } from './errors.js';
import type { Table } from './types.js';

/** Row indices of a stratified train/test split. */
export interface SplitIndices {
  readonly train: Int32Array;
  readonly test: Int32Array;
}

/**
 * Stratified, seeded split: each class puts round(n_c · testFraction) of its rows in the test split (largest
 * remainders settle the total at round(n · testFraction)), always keeping at least one row of every class for
 * training, and at least one in the test split for a class of two rows or more. Both splits come out shuffled.
 */
export function stratifiedSplit(
  labels: Int32Array,
  classes: number,
  testFraction: number,
  seed: number,
): SplitIndices {
  if (!(testFraction > 0 && testFraction < 1))
    throw new DatasetError('invalid-option', `testFraction must be in (0, 1), got ${testFraction}`);
  const rng = stream(seed, 'split');
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]!]!.push(i);
  const wanted = byClass.map((rows) => rows.length * testFraction);
  const take = wanted.map(Math.floor);
  let missing = Math.round(labels.length * testFraction) - take.reduce((a, b) => a + b, 0);
  const order = wanted
    .map((w, c) => ({ c, rest: w - Math.floor(w) }))
    .sort((a, b) => b.rest - a.rest || a.c - b.c);
  for (const { c } of order) {
    if (missing <= 0) break;
    take[c]!++;
    missing--;
  }
  const train: number[] = [];
  const test: number[] = [];
  byClass.forEach((rows, c) => {
    const n = rows.length;
    const t = n < 2 ? 0 : Math.min(Math.max(take[c]!, 1), n - 1);
    rng.shuffle(rows);
    test.push(...rows.slice(0, t));
    train.push(...rows.slice(t));
  });
  if (test.length === 0 || train.length === 0)
    throw new DatasetError(
      'too-few-rows',
      `${labels.length} rows cannot give both a training and a test split`,
    );
  return { train: Int32Array.from(rng.shuffle(train)), test: Int32Array.from(rng.shuffle(test)) };
}

/** The rows `indices` of a row-major float64 matrix as a Table (float32 features). */
export function gatherTable(
  features: Float64Array,
  labels: Int32Array,
  cols: number,
  indices: Int32Array,
): Table {
  const out = new Float32Array(indices.length * cols);
  const y = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i]!;
    for (let c = 0; c < cols; c++) out[i * cols + c] = features[r * cols + c]!;
    y[i] = labels[r]!;
  }
  return { features: out, labels: y, rows: indices.length, cols };
}

/**
 * Standardizes the training split in place (device-sdk's `standardize`: mean 0, sd 1, a zero-variance feature
 * becomes 0) and applies the training split's statistics to the test split, so nothing of the test split leaks into
 * training.
 */
export function standardizeOnTrain(train: Table, test: Table): { mean: Float64Array; std: Float64Array } {
  const stats = standardize(train.features, train.rows, train.cols);
  const { mean, std } = stats;
  const x = test.features;
  for (let r = 0; r < test.rows; r++)
    for (let c = 0; c < test.cols; c++) {
      const s = std[c]!;
      x[r * test.cols + c] = s > 0 ? (x[r * test.cols + c]! - mean[c]!) / s : 0;
    }
  return stats;
}
