import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { DeviceError } from './errors.js';

export interface CsvDataset {
  featureNames: string[];
  rows: number;
  features: number;
  /** rows × features, row-major. */
  x: Float32Array;
  /** Class index per row (numeric labels as they are; text labels numbered in sorted order). */
  labels: number[];
  /** The text label of each class index, when the labels were text. */
  classes: string[] | null;
}

const numeric = (cell: string) => cell.trim() !== '' && Number.isFinite(Number(cell));

/**
 * Reads a CSV of numeric features and one label column (`.gz` is gunzipped). `label` names a column of the header
 * row, or is a column index (negative counts from the end). Without a header row (every cell numeric) a first line
 * of another length is taken as scikit-learn's `n_samples,n_features,…` metadata line and skipped. A missing label
 * column or a non-numeric feature is a DeviceError 'dataset' naming the row and column.
 */
export function loadCsvDataset(path: string, label: string): CsvDataset {
  let text: string;
  try {
    const raw = readFileSync(path);
    text = (path.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
  } catch (error) {
    throw new DeviceError(
      'dataset',
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  let records: string[][];
  try {
    records = parse(text, { skip_empty_lines: true, trim: true, relax_column_count: true }) as string[][];
  } catch (error) {
    throw new DeviceError('dataset', `${path} is not CSV: ${(error as Error).message}`);
  }
  if (records.length < 2) throw new DeviceError('dataset', `${path} has no data rows`);
  const first = records[0]!;
  let header: string[] | null = null;
  let body = records;
  if (!first.every(numeric)) {
    header = first;
    body = records.slice(1);
  } else if (first.length !== records[1]!.length) {
    body = records.slice(1);
  }
  const width = body[0]!.length;
  let labelIndex: number;
  if (/^-?\d+$/.test(label)) {
    const i = Number(label);
    labelIndex = i < 0 ? width + i : i;
    if (labelIndex < 0 || labelIndex >= width)
      throw new DeviceError('dataset', `--label ${label}: ${path} has ${width} columns`);
  } else {
    if (!header)
      throw new DeviceError('dataset', `--label ${label}: ${path} has no header row; give a column index`);
    labelIndex = header.indexOf(label);
    if (labelIndex < 0)
      throw new DeviceError(
        'dataset',
        `${path} has no column named ${label} (columns: ${header.join(', ').slice(0, 300)})`,
      );
  }
  const features = width - 1;
  const x = new Float32Array(body.length * features);
  const rawLabels: string[] = [];
  body.forEach((row, r) => {
    if (row.length !== width)
      throw new DeviceError('dataset', `${path} row ${r + 1}: ${row.length} columns, expected ${width}`);
    let k = 0;
    for (let c = 0; c < width; c++) {
      if (c === labelIndex) continue;
      if (!numeric(row[c]!))
        throw new DeviceError('dataset', `${path} row ${r + 1}, column ${header?.[c] ?? c}: not a number`);
      x[r * features + k++] = Number(row[c]);
    }
    rawLabels.push(row[labelIndex]!);
  });
  const allNumeric = rawLabels.every(numeric);
  const classes = allNumeric ? null : [...new Set(rawLabels)].sort();
  const labels = rawLabels.map((l) => (classes ? classes.indexOf(l) : Number(l)));
  const featureNames = header
    ? header.filter((_, c) => c !== labelIndex)
    : Array.from({ length: features }, (_, i) => `f${i}`);
  return { featureNames, rows: body.length, features, x, labels, classes };
}

/** Standardises every feature to mean 0 and standard deviation 1 (constant features become 0), in place; returns the statistics. */
export function standardize(
  x: Float32Array,
  rows: number,
  features: number,
): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(features);
  const std = new Float64Array(features);
  for (let r = 0; r < rows; r++) for (let f = 0; f < features; f++) mean[f]! += x[r * features + f]! / rows;
  for (let r = 0; r < rows; r++)
    for (let f = 0; f < features; f++) {
      const d = x[r * features + f]! - mean[f]!;
      std[f]! += (d * d) / rows;
    }
  for (let f = 0; f < features; f++) std[f] = Math.sqrt(std[f]!);
  for (let r = 0; r < rows; r++)
    for (let f = 0; f < features; f++) {
      const s = std[f]!;
      x[r * features + f] = s > 0 ? (x[r * features + f]! - mean[f]!) / s : 0;
    }
  return { mean, std };
}
