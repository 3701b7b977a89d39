import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCsvTable, type RawTable } from './csv.js';
import { DatasetError } from './errors.js';
import { FRAUD_DEFAULT_ROWS, generateFraud, type FraudOptions } from './fraud.js';
import { gatherTable, standardizeOnTrain, stratifiedSplit } from './split.js';
import type { SplitDataset, Table } from './types.js';

const BREAST_CANCER_MEASURES = [
  'radius',
  'texture',
  'perimeter',
  'area',
  'smoothness',
  'compactness',
  'concavity',
  'concave points',
  'symmetry',
  'fractal dimension',
];

interface BuiltinFile {
  readonly file: string;
  readonly featureNames: readonly string[];
  /** Class names for files without scikit-learn's metadata line. */
  readonly classNames?: readonly string[];
  readonly about: string;
}

/** scikit-learn's bundled data sets in `shared/datasets/` (feature names as sklearn.datasets gives them). */
export const BUILTIN_FILES: Readonly<Record<'digits' | 'iris' | 'wine' | 'breast_cancer', BuiltinFile>> = {
  digits: {
    file: 'digits.csv.gz',
    featureNames: Array.from({ length: 64 }, (_, i) => `pixel_${Math.floor(i / 8)}_${i % 8}`),
    about: '1,797 8×8 handwritten digits, 64 pixel intensities 0..16, 10 classes',
  },
  iris: {
    file: 'iris.csv',
    featureNames: ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)'],
    about: '150 flowers, 4 measurements, 3 species',
  },
  wine: {
    file: 'wine_data.csv',
    featureNames: [
      'alcohol',
      'malic_acid',
      'ash',
      'alcalinity_of_ash',
      'magnesium',
      'total_phenols',
      'flavanoids',
      'nonflavanoid_phenols',
      'proanthocyanins',
      'color_intensity',
      'hue',
      'od280/od315_of_diluted_wines',
      'proline',
    ],
    about: '178 wines, 13 chemical measurements, 3 cultivars',
  },
  breast_cancer: {
    file: 'breast_cancer.csv',
    featureNames: ['mean', 'error', 'worst'].flatMap((kind) =>
      BREAST_CANCER_MEASURES.map((m) => `${kind} ${m}`),
    ),
    about: '569 tumours, 30 nucleus measurements, binary (0 = malignant, 1 = benign)',
  },
};

/** Every name `loadDataset` knows without a path. */
export const BUILTIN_DATASETS = [
  ...(Object.keys(BUILTIN_FILES) as (keyof typeof BUILTIN_FILES)[]),
  'fraud',
] as const;
export type BuiltinDataset = (typeof BUILTIN_DATASETS)[number];

export interface LoadDatasetOptions {
  /** A built-in data set (BUILTIN_DATASETS), or a path to a CSV file (a name with a `/` or a `.csv`/`.gz` ending). */
  name?: string;
  /** A CSV file (`--dataset path/to/file.csv`); wins over `name`. */
  path?: string;
  /** The label column of a CSV: a header name, or a column index (negative from the end). */
  label?: string;
  seed: number;
  /** Share of the rows held out for testing (default 0.2); stratified by class. */
  testFraction?: number;
  /** Where the built-in files are (default: DATASETS_DIR_ENV, else `shared/datasets` beside an ancestor directory). */
  datasetsDir?: string;
  /** For `fraud`: transactions and fraud rate (FraudOptions; the seed is `seed`). */
  fraud?: Omit<FraudOptions, 'seed'>;
}

/** Overrides where the built-in data sets are looked for. */
export const DATASETS_DIR_ENV = 'EDGEFL_DATASETS_DIR';

/** Fewest rows a data set may have: every class in training, at least one test row. */
export const MIN_DATASET_ROWS = 10;

function ancestors(start: string): string[] {
  const out: string[] = [];
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    out.push(dir);
    if (dirname(dir) === dir) return out;
  }
}

/**
 * The directory holding the built-in data sets: the explicit one, `$EDGEFL_DATASETS_DIR`, or the first
 * `shared/datasets` found beside the current directory, this module, or one of their ancestors (the repository's
 * checkout sits next to `shared/`).
 */
export function datasetsDirectory(explicit?: string): string {
  const given = explicit ?? process.env[DATASETS_DIR_ENV];
  if (given) {
    if (!existsSync(given) || !statSync(given).isDirectory())
      throw new DatasetError('file-not-found', `data sets directory ${given} does not exist`);
    return given;
  }
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [...ancestors(process.cwd()), ...ancestors(here)]) {
    const candidate = join(dir, 'shared', 'datasets');
    if (existsSync(join(candidate, BUILTIN_FILES.digits.file))) return candidate;
  }
  throw new DatasetError(
    'file-not-found',
    `cannot find shared/datasets beside ${process.cwd()} or its ancestors; set ${DATASETS_DIR_ENV}`,
  );
}

const looksLikePath = (name: string) => /[\\/]/.test(name) || /\.(csv|tsv|gz)$/i.test(name);

function checkOptions(o: LoadDatasetOptions): void {
  if (!Number.isSafeInteger(o.seed))
    throw new DatasetError('invalid-option', `seed must be an integer, got ${o.seed}`);
  const f = o.testFraction ?? 0.2;
  if (!(f > 0 && f < 1)) throw new DatasetError('invalid-option', `testFraction must be in (0, 1), got ${f}`);
}

function checkClasses(raw: Pick<RawTable, 'labels' | 'classNames'>, source: string): void {
  if (raw.labels.length < MIN_DATASET_ROWS)
    throw new DatasetError(
      'too-few-rows',
      `${source} has ${raw.labels.length} rows; at least ${MIN_DATASET_ROWS} are needed for a train/test split`,
    );
  const present = new Set(raw.labels);
  if (present.size < 2)
    throw new DatasetError(
      'single-class',
      `${source}: every row has the label ${raw.classNames[raw.labels[0]!] ?? '?'}; a classifier needs two classes or more`,
    );
}

/**
 * Loads a data set and splits it once, stratified and seeded, into the devices' training pool and a held-out test
 * split that no device ever gets. Numeric features are standardized with the training split's statistics (a
 * zero-variance feature becomes 0). Two classes make a `binary` task (label 1 is the positive class), more a
 * `multiclass` one. Every failure is a DatasetError with a `code`.
 */
export function loadDataset(options: LoadDatasetOptions): SplitDataset {
  checkOptions(options);
  const testFraction = options.testFraction ?? 0.2;
  const target = options.path ?? options.name;
  if (target === undefined || target === '')
    throw new DatasetError(
      'unknown-dataset',
      `name a data set (${BUILTIN_DATASETS.join(', ')}) or a CSV path`,
    );

  if (options.path === undefined && target === 'fraud') return loadFraud(options, testFraction);

  let raw: RawTable;
  let name: string;
  if (options.path === undefined && target in BUILTIN_FILES) {
    const builtin = BUILTIN_FILES[target as keyof typeof BUILTIN_FILES];
    const path = join(datasetsDirectory(options.datasetsDir), builtin.file);
    raw = readCsvTable(path, { label: options.label ?? '-1', featureNames: builtin.featureNames });
    name = target;
  } else if (options.path !== undefined || looksLikePath(target) || existsSync(target)) {
    raw = readCsvTable(target, options.label === undefined ? {} : { label: options.label });
    name = target;
  } else {
    throw new DatasetError(
      'unknown-dataset',
      `unknown data set "${target}": use one of ${BUILTIN_DATASETS.join(', ')}, or a path to a CSV file`,
    );
  }
  checkClasses(raw, name);
  const { train: trainRows, test: testRows } = stratifiedSplit(
    raw.labels,
    raw.classNames.length,
    testFraction,
    options.seed,
  );
  const train = gatherTable(raw.features, raw.labels, raw.cols, trainRows);
  const test = gatherTable(raw.features, raw.labels, raw.cols, testRows);
  return {
    name,
    task: raw.classNames.length === 2 ? 'binary' : 'multiclass',
    featureNames: raw.featureNames,
    classNames: raw.classNames,
    labelName: raw.labelName,
    train,
    test,
    standardization: standardizeOnTrain(train, test),
  };
}

function loadFraud(options: LoadDatasetOptions, testFraction: number): SplitDataset {
  const table = generateFraud({ rows: FRAUD_DEFAULT_ROWS, ...options.fraud, seed: options.seed });
  checkClasses({ labels: table.labels, classNames: ['legit', 'fraud'] }, 'fraud');
  // Stratify by (label, region), so every region's fraud reaches the test split.
  const regions = table.regionNames.length;
  const strata = new Int32Array(table.rows);
  for (let i = 0; i < table.rows; i++) strata[i] = table.labels[i]! * regions + table.regions[i]!;
  const { train: trainRows, test: testRows } = stratifiedSplit(
    strata,
    2 * regions,
    testFraction,
    options.seed,
  );
  const train = gatherTable(table.features, table.labels, table.cols, trainRows);
  const test = gatherTable(table.features, table.labels, table.cols, testRows);
  const regionsOf = (rows: Int32Array) => Uint8Array.from(rows, (r) => table.regions[r]!);
  return {
    name: 'fraud',
    task: 'binary',
    featureNames: table.featureNames,
    classNames: ['legit', 'fraud'],
    labelName: 'is_fraud',
    train,
    test,
    standardization: standardizeOnTrain(train, test),
    regions: { names: table.regionNames, train: regionsOf(trainRows), test: regionsOf(testRows) },
  };
}

/** Bytes a Table holds (features float32 + labels int32). */
export function tableBytes(table: Table): number {
  return table.features.byteLength + table.labels.byteLength;
}
