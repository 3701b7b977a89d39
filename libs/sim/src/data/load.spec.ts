import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tempDir } from '@edgefl/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetError, type DatasetErrorCode } from './errors.js';
import { datasetsDirectory, loadDataset, type LoadDatasetOptions } from './load.js';
import type { Table } from './types.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir('sim-load');
});
afterAll(async () => {
  await dir.remove();
});

function csv(name: string, text: string): string {
  const path = join(dir.path, name);
  writeFileSync(path, text);
  return path;
}

function codeOf(options: LoadDatasetOptions): { code: DatasetErrorCode; message: string } {
  try {
    loadDataset(options);
  } catch (error) {
    if (error instanceof DatasetError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a DatasetError');
}

function classCounts(t: Table, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const l of t.labels) counts[l]!++;
  return counts;
}

function columnStats(t: Table, c: number): { mean: number; sd: number } {
  let mean = 0;
  for (let r = 0; r < t.rows; r++) mean += t.features[r * t.cols + c]! / t.rows;
  let v = 0;
  for (let r = 0; r < t.rows; r++) v += (t.features[r * t.cols + c]! - mean) ** 2 / t.rows;
  return { mean, sd: Math.sqrt(v) };
}

describe('built-in data sets (shared/datasets)', () => {
  it('finds the shared data sets directory', () => {
    expect(datasetsDirectory()).toMatch(/shared[\\/]datasets$/);
  });

  it.each([
    ['digits', 1797, 64, 10, 'multiclass', [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]],
    ['iris', 150, 4, 3, 'multiclass', [50, 50, 50]],
    ['wine', 178, 13, 3, 'multiclass', [59, 71, 48]],
    ['breast_cancer', 569, 30, 2, 'binary', [212, 357]],
  ] as const)(
    '%s: %i rows, %i features, %i classes, stratified split',
    (name, rows, cols, classes, task, counts) => {
      const d = loadDataset({ name, seed: 7 });
      expect(d.task).toBe(task);
      expect(d.featureNames).toHaveLength(cols);
      expect(d.classNames).toHaveLength(classes);
      expect(d.train.cols).toBe(cols);
      expect(d.train.rows + d.test.rows).toBe(rows);
      expect(d.test.rows).toBe(Math.round(rows * 0.2));
      const train = classCounts(d.train, classes);
      const test = classCounts(d.test, classes);
      counts.forEach((n, c) => {
        expect(train[c]! + test[c]!).toBe(n);
        // stratified: each class's share of the test split is its share of the data, to one row
        expect(Math.abs(test[c]! - n * 0.2)).toBeLessThanOrEqual(1);
      });
    },
  );

  it('names classes and features as scikit-learn does', () => {
    const iris = loadDataset({ name: 'iris', seed: 1 });
    expect(iris.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(iris.featureNames[2]).toBe('petal length (cm)');
    const cancer = loadDataset({ name: 'breast_cancer', seed: 1 });
    expect(cancer.classNames).toEqual(['malignant', 'benign']);
    expect(cancer.featureNames[0]).toBe('mean radius');
    expect(cancer.featureNames[29]).toBe('worst fractal dimension');
    expect(loadDataset({ name: 'digits', seed: 1 }).classNames).toEqual(
      Array.from({ length: 10 }, (_, i) => String(i)),
    );
  });

  it('standardizes on the training split only, and applies the same statistics to the test split', () => {
    const d = loadDataset({ name: 'wine', seed: 3 });
    for (let c = 0; c < d.train.cols; c++) {
      const s = columnStats(d.train, c);
      expect(Math.abs(s.mean)).toBeLessThan(1e-5);
      expect(s.sd).toBeCloseTo(1, 4);
    }
    // proline (column 12) is in the hundreds: its test values were scaled with the training mean and sd
    const proline = d.standardization.mean[12]!;
    expect(proline).toBeGreaterThan(500);
    const testMean = columnStats(d.test, 12).mean;
    expect(Math.abs(testMean)).toBeGreaterThan(1e-6); // not re-centred on the test split
    expect(Math.abs(testMean)).toBeLessThan(1);
  });

  it('turns zero-variance features into zeros (digits has always-blank pixels)', () => {
    const d = loadDataset({ name: 'digits', seed: 5 });
    expect(d.standardization.std[0]).toBe(0); // pixel_0_0 is 0 in every image
    for (let r = 0; r < d.test.rows; r++) expect(d.test.features[r * 64]).toBe(0);
    expect(d.train.features.every(Number.isFinite)).toBe(true);
    expect(d.test.features.every(Number.isFinite)).toBe(true);
  });

  it('is deterministic in the seed, and the seed changes the split', () => {
    const a = loadDataset({ name: 'iris', seed: 11 });
    const b = loadDataset({ name: 'iris', seed: 11 });
    const c = loadDataset({ name: 'iris', seed: 12 });
    expect(Buffer.from(a.test.features.buffer).equals(Buffer.from(b.test.features.buffer))).toBe(true);
    expect(Buffer.from(a.test.features.buffer).equals(Buffer.from(c.test.features.buffer))).toBe(false);
  });

  it('honours testFraction', () => {
    const d = loadDataset({ name: 'breast_cancer', seed: 2, testFraction: 0.3 });
    expect(d.test.rows).toBe(Math.round(569 * 0.3));
  });
});

describe('a CSV the user points at', () => {
  it('reads a header CSV with a named text label, in any column, and standardizes its features', () => {
    const lines = ['amount,label,age'];
    for (let i = 0; i < 40; i++) lines.push(`${i * 10},${i % 4 === 0 ? 'yes' : 'no'},${30 + (i % 7)}`);
    const path = csv('header.csv', lines.join('\r\n') + '\r\n');
    const d = loadDataset({ path, label: 'label', seed: 1 });
    expect(d.task).toBe('binary');
    expect(d.featureNames).toEqual(['amount', 'age']);
    expect(d.classNames).toEqual(['no', 'yes']);
    expect(d.labelName).toBe('label');
    expect(d.train.rows + d.test.rows).toBe(40);
    expect(classCounts(d.test, 2)).toEqual([6, 2]);
    expect(d.standardization.mean[0]).toBeCloseTo(
      // the training rows' mean amount, recomputed from the de-standardized values
      Array.from(
        { length: d.train.rows },
        (_, r) => d.train.features[r * 2]! * d.standardization.std[0]!,
      ).reduce((a, b) => a + b, 0) /
        d.train.rows +
        d.standardization.mean[0]!,
      3,
    );
  });

  it('reads a gzipped CSV and a column index label (negative from the end)', () => {
    const lines = ['a,b,c,y'];
    for (let i = 0; i < 30; i++) lines.push(`${i},${i * 2},${i % 3},${i % 3}`);
    const path = join(dir.path, 'data.csv.gz');
    writeFileSync(path, gzipSync(lines.join('\n')));
    const d = loadDataset({ name: path, label: '-1', seed: 4 });
    expect(d.featureNames).toEqual(['a', 'b', 'c']);
    expect(d.classNames).toEqual(['0', '1', '2']);
    expect(d.task).toBe('multiclass');
  });

  it.each<[string, string, Partial<LoadDatasetOptions>, DatasetErrorCode, RegExp]>([
    ['unknown name', '', { name: 'mnist' }, 'unknown-dataset', /unknown data set "mnist".*digits, iris/],
    ['missing file', '', { path: 'no/such/file.csv', label: 'y' }, 'file-not-found', /no such file/],
    [
      'missing label column',
      'a,b,y\n1,2,0\n',
      { label: 'target' },
      'missing-label',
      /no column named "target".*a, b, y/,
    ],
    ['no label given', 'a,b,y\n1,2,0\n', {}, 'missing-label', /name the label column.*a, b, y/],
    [
      'non-numeric feature',
      'a,b,y\n1,2,0\n3,4,1\n5,oops,0\n',
      { label: 'y' },
      'non-numeric',
      /row 3 \(line 4\), column "b": "oops" is not a number/,
    ],
    [
      'empty feature cell',
      'a,b,y\n1,,0\n',
      { label: 'y' },
      'non-numeric',
      /row 1 \(line 2\), column "b": empty/,
    ],
    [
      'ragged row',
      'a,b,y\n1,2,0\n1,2\n',
      { label: 'y' },
      'ragged-row',
      /row 2 \(line 3\) has 2 cells, expected 3/,
    ],
    ['too few rows', 'a,y\n1,0\n2,1\n3,0\n', { label: 'y' }, 'too-few-rows', /3 rows; at least 10/],
    [
      'single class',
      `a,y\n${Array.from({ length: 20 }, (_, i) => `${i},spam`).join('\n')}\n`,
      { label: 'y' },
      'single-class',
      /every row has the label spam/,
    ],
    ['unclosed quote', 'a,y\n"1,0\n', { label: 'y' }, 'not-csv', /not valid CSV/],
    ['name on a headerless file', '1,2,0\n3,4,1\n', { label: 'y' }, 'missing-label', /no header row/],
    ['bad test fraction', 'a,y\n1,0\n', { label: 'y', testFraction: 1 }, 'invalid-option', /testFraction/],
  ])('%s → DatasetError', (what, text, options, code, message) => {
    const path = text === '' ? undefined : csv(`${what.replaceAll(' ', '-')}.csv`, text);
    const got = codeOf({ seed: 1, ...(path === undefined ? {} : { path }), ...options });
    expect(got.code).toBe(code);
    expect(got.message).toMatch(message);
  });
});
