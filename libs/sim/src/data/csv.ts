import { readFileSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { DatasetError } from './errors.js';

/** A CSV read into numbers, before the split: features rows × cols (float64, unstandardized) and raw labels. */
export interface RawTable {
  readonly featureNames: string[];
  readonly rows: number;
  readonly cols: number;
  /** rows × cols, row-major. */
  readonly features: Float64Array;
  /** Class index per row, into classNames. */
  readonly labels: Int32Array;
  readonly classNames: string[];
  /** The label column's name (the header's, `target` for scikit-learn's layout, `column <i>` without a header). */
  readonly labelName: string;
}

export interface ReadCsvOptions {
  /**
   * The label column: a header name, or a 0-based column index (negative counts from the end). Optional for
   * scikit-learn's layout (label last) and required otherwise.
   */
  label?: string;
  /** Feature names to use when the file has no header row of its own (scikit-learn's files). */
  featureNames?: readonly string[];
}

interface CsvRecord {
  record: string[];
  info: { lines: number };
}

const isNumber = (cell: string) => cell !== '' && Number.isFinite(Number(cell));
const isCount = (cell: string) => /^\d+$/.test(cell);

function readText(path: string): string {
  let raw: Buffer;
  try {
    if (!statSync(path).isFile()) throw new DatasetError('unreadable', `${path} is not a file`);
    raw = readFileSync(path);
  } catch (error) {
    if (error instanceof DatasetError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DatasetError('file-not-found', `${path}: no such file`);
    throw new DatasetError('unreadable', `cannot read ${path}: ${code ?? String(error)}`);
  }
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      raw = gunzipSync(raw);
    } catch (error) {
      throw new DatasetError('unreadable', `${path}: not a valid gzip file (${(error as Error).message})`);
    }
  }
  return raw.toString('utf8');
}

function labelIndexOf(label: string, header: string[] | null, width: number, path: string): number {
  if (header) {
    const named = header.indexOf(label);
    if (named >= 0) return named;
  }
  if (/^-?\d+$/.test(label)) {
    const i = Number(label);
    const index = i < 0 ? width + i : i;
    if (index >= 0 && index < width) return index;
    throw new DatasetError('missing-label', `${path} has ${width} columns: no column ${label}`);
  }
  if (!header)
    throw new DatasetError(
      'missing-label',
      `${path} has no header row, so the label column must be a column index (0..${width - 1}, or -1 for the last), not "${label}"`,
    );
  throw new DatasetError(
    'missing-label',
    `${path} has no column named "${label}" (columns: ${header.join(', ').slice(0, 400)})`,
  );
}

/**
 * Reads a CSV of numeric features and one label column with csv-parse (a `.gz` or gzip-magic file is gunzipped,
 * a UTF-8 BOM and CRLF are fine). Three layouts: a header row (any non-numeric cell on line 1); scikit-learn's
 * bundled files (line 1 is `n_samples,n_features,<class names…>`, the label last, an integer index into the class
 * names); or no header at all (every cell numeric; the label is then a column index). Labels may be numbers or
 * text; classes are numbered in sorted order (numerically when every label is a number), except in scikit-learn's
 * layout where the header's class names give the order.
 */
export function readCsvTable(path: string, options: ReadCsvOptions = {}): RawTable {
  const text = readText(path);
  let records: CsvRecord[];
  try {
    records = parse(text, {
      skip_empty_lines: true,
      trim: true,
      relax_column_count: true,
      bom: true,
      info: true,
    }) as unknown as CsvRecord[];
  } catch (error) {
    throw new DatasetError('not-csv', `${path} is not valid CSV: ${(error as Error).message}`);
  }
  if (records.length === 0) throw new DatasetError('too-few-rows', `${path} is empty`);
  const first = records[0]!.record;
  const second = records[1]?.record;
  let header: string[] | null = null;
  let classNamesFromHeader: string[] | null = null;
  let body = records;
  const sklearnLayout =
    second !== undefined &&
    first.length >= 2 &&
    isCount(first[0]!) &&
    isCount(first[1]!) &&
    Number(first[0]) === records.length - 1 &&
    Number(first[1]) + 1 === second.length;
  if (sklearnLayout) {
    body = records.slice(1);
    if (first.length > 2) classNamesFromHeader = first.slice(2).filter((c) => c !== '');
  } else if (!first.every(isNumber)) {
    header = first;
    body = records.slice(1);
  }
  if (body.length === 0) throw new DatasetError('too-few-rows', `${path} has no data rows`);
  const width = header?.length ?? body[0]!.record.length;
  if (width < 2)
    throw new DatasetError('too-few-rows', `${path} has ${width} column: it needs features and a label`);
  let labelIndex: number;
  if (options.label !== undefined) labelIndex = labelIndexOf(options.label, header, width, path);
  else if (sklearnLayout) labelIndex = width - 1;
  else
    throw new DatasetError(
      'missing-label',
      header
        ? `${path}: name the label column (--label <column>; columns: ${header.join(', ').slice(0, 400)})`
        : `${path} has no header row: give the label column's index (--label -1 for the last)`,
    );

  const cols = width - 1;
  const featureNames = Array.from({ length: width }, (_, c) => header?.[c] ?? `f${c}`).filter(
    (_, c) => c !== labelIndex,
  );
  if (!header && options.featureNames) {
    if (options.featureNames.length !== cols)
      throw new DatasetError(
        'invalid-option',
        `${path}: ${options.featureNames.length} feature names given, the file has ${cols} features`,
      );
    featureNames.splice(0, cols, ...options.featureNames);
  }
  const labelName = header?.[labelIndex] ?? (sklearnLayout ? 'target' : `column ${labelIndex}`);
  const features = new Float64Array(body.length * cols);
  const rawLabels: string[] = new Array<string>(body.length);
  for (let r = 0; r < body.length; r++) {
    const { record, info } = body[r]!;
    const where = `row ${r + 1} (line ${info.lines})`;
    if (record.length !== width)
      throw new DatasetError('ragged-row', `${path} ${where} has ${record.length} cells, expected ${width}`);
    let k = 0;
    for (let c = 0; c < width; c++) {
      const cell = record[c]!;
      if (c === labelIndex) continue;
      if (!isNumber(cell))
        throw new DatasetError(
          'non-numeric',
          `${path} ${where}, column "${featureNames[k]}": ${cell === '' ? 'empty' : JSON.stringify(cell.slice(0, 40))} is not a number (features must be numeric)`,
        );
      features[r * cols + k++] = Number(cell);
    }
    const label = record[labelIndex]!;
    if (label === '') throw new DatasetError('missing-label', `${path} ${where} has an empty label`);
    rawLabels[r] = label;
  }

  const labels = new Int32Array(body.length);
  let classNames: string[];
  if (classNamesFromHeader && classNamesFromHeader.length >= 2) {
    classNames = classNamesFromHeader;
    for (let r = 0; r < body.length; r++) {
      const v = rawLabels[r]!;
      const i = Number(v);
      if (!isCount(v) || i >= classNames.length)
        throw new DatasetError(
          'non-numeric',
          `${path} row ${r + 1}: label ${JSON.stringify(v)} is not a class index 0..${classNames.length - 1}`,
        );
      labels[r] = i;
    }
  } else {
    const numeric = rawLabels.every(isNumber);
    const canonical = numeric ? rawLabels.map((v) => String(Number(v))) : rawLabels;
    classNames = [...new Set(canonical)].sort(numeric ? (a, b) => Number(a) - Number(b) : undefined);
    const index = new Map(classNames.map((name, i) => [name, i]));
    for (let r = 0; r < body.length; r++) labels[r] = index.get(canonical[r]!)!;
  }
  return { featureNames, rows: body.length, cols, features, labels, classNames, labelName };
}
