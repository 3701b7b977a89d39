import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeviceError, loadCsvDataset } from '@edgefl/device-sdk';
import { createSeededUniform } from '@edgefl/fl';
import type { SplitDataset, Table } from '@edgefl/sim';
import { UsageError } from '../usage-error.js';
import type { DemoOptions } from './options.js';

const FILES: Record<string, string> = {
  digits: 'digits.csv.gz',
  iris: 'iris.csv',
  wine: 'wine_data.csv',
  breast_cancer: 'breast_cancer.csv',
};

/** `shared/datasets` beside the working directory, this module, or one of their ancestors; or EDGEFL_DATASETS_DIR. */
function datasetsDir(): string {
  const given = process.env['EDGEFL_DATASETS_DIR'];
  if (given) return given;
  const starts = [process.cwd(), dirname(fileURLToPath(import.meta.url))];
  for (const start of starts)
    for (let dir = resolve(start); ; dir = dirname(dir)) {
      if (existsSync(join(dir, 'shared', 'datasets', FILES['digits']!)))
        return join(dir, 'shared', 'datasets');
      if (dirname(dir) === dir) break;
    }
  throw new UsageError('cannot find shared/datasets beside this checkout; set EDGEFL_DATASETS_DIR');
}

function gather(x: Float32Array, labels: readonly number[], cols: number, rows: readonly number[]): Table {
  const features = new Float32Array(rows.length * cols);
  const out = new Int32Array(rows.length);
  rows.forEach((r, i) => {
    features.set(x.subarray(r * cols, (r + 1) * cols), i * cols);
    out[i] = labels[r]!;
  });
  return { features, labels: out, rows: rows.length, cols };
}

/**
 * The demo's data: the data set split into a training pool and a held-out test split (20%, seeded), standardized
 * on the training split, and the training pool dealt to the devices.
 *
 * Bridge until libs/sim's `loadDataset` and partitions land (branch `sim`): it reads the file with the device SDK's
 * CSV reader, splits with a seeded shuffle and deals the rows round robin (IID). The demo calls only this function.
 */
export function prepareData(o: DemoOptions): { dataset: SplitDataset; partitions: Table[] } {
  const path = o.datasetPath ?? join(datasetsDir(), FILES[o.dataset]!);
  let csv;
  try {
    csv = loadCsvDataset(path, o.label ?? '-1');
  } catch (error) {
    if (error instanceof DeviceError) throw new UsageError(`--dataset ${o.dataset}: ${error.message}`);
    throw error;
  }
  const classes = new Set(csv.labels).size;
  if (classes < 2) throw new UsageError(`--dataset ${o.dataset}: the label column holds one class only`);
  if (csv.rows < o.devices * 2)
    throw new UsageError(`--dataset ${o.dataset} has ${csv.rows} rows: too few for ${o.devices} devices`);
  const uniform = createSeededUniform(o.seed);
  const order = Array.from({ length: csv.rows }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const testRows = Math.max(1, Math.round(csv.rows * 0.2));
  const test = gather(csv.x, csv.labels, csv.features, order.slice(0, testRows));
  const train = gather(csv.x, csv.labels, csv.features, order.slice(testRows));
  const mean = new Float64Array(csv.features);
  const std = new Float64Array(csv.features);
  for (let r = 0; r < train.rows; r++)
    for (let f = 0; f < train.cols; f++) mean[f]! += train.features[r * train.cols + f]! / train.rows;
  for (let r = 0; r < train.rows; r++)
    for (let f = 0; f < train.cols; f++)
      std[f]! += (train.features[r * train.cols + f]! - mean[f]!) ** 2 / train.rows;
  for (let f = 0; f < train.cols; f++) std[f] = Math.sqrt(std[f]!);
  for (const t of [train, test])
    for (let r = 0; r < t.rows; r++)
      for (let f = 0; f < t.cols; f++) {
        const i = r * t.cols + f;
        t.features[i] = std[f]! > 0 ? (t.features[i]! - mean[f]!) / std[f]! : 0;
      }
  const maxLabel = Math.max(...csv.labels);
  const dataset: SplitDataset = {
    name: o.dataset,
    task: classes === 2 ? 'binary' : 'multiclass',
    featureNames: csv.featureNames,
    classNames: csv.classes ?? Array.from({ length: maxLabel + 1 }, (_, i) => String(i)),
    train,
    test,
    standardization: { mean, std },
  };
  const dealt: number[][] = Array.from({ length: o.devices }, () => []);
  for (let r = 0; r < train.rows; r++) dealt[r % o.devices]!.push(r);
  const partitions = dealt.map((rows) => gather(train.features, Array.from(train.labels), train.cols, rows));
  return { dataset, partitions };
}
