import { stream, type SimRandom } from '../random.js';
import { DatasetError } from './errors.js';
import type { SplitDataset, Table } from './types.js';

export interface PartitionOptions {
  devices: number;
  seed: number;
  /**
   * Label skew: each device's class mix is drawn from Dirichlet(α·p), p the pool's class shares (Hsu, Qi & Brown
   * 2019, "Measuring the Effects of Non-Identical Data Distribution for Federated Visual Classification"). Small α:
   * a few classes per device; α → ∞: every device sees p (IID). Default 0.5; `Infinity` is IID.
   */
  alpha?: number;
  /**
   * Quantity skew: device sizes are minRows plus a Dirichlet(β·1) share of the remaining rows. Small β: a few
   * devices hold most of the data; default `Infinity`: equal sizes (±1 row).
   */
  quantityAlpha?: number;
  /** Fewest rows any device gets (default 10). */
  minRows?: number;
  /**
   * A group (region) per row: each device is assigned one group, devices spread over groups in proportion to their
   * rows, and a device draws only rows of its group. Label and quantity skew then apply within each group.
   */
  groups?: { readonly of: ArrayLike<number>; readonly names: readonly string[] };
}

export interface Partition {
  /** Row indices (into the partitioned table) of each device; disjoint, together every row. */
  readonly rows: readonly Int32Array[];
  /** Each device's group (an index into groupNames), when partitioned by group. */
  readonly groups?: Int32Array;
  readonly groupNames?: readonly string[];
}

export const DEFAULT_PARTITION_ALPHA = 0.5;
export const DEFAULT_MIN_ROWS = 10;

function checkConcentration(name: string, v: number): void {
  if (!(v > 0)) throw new DatasetError('invalid-option', `${name} must be > 0 (Infinity for none), got ${v}`);
}

/** Splits `total` into integers proportional to `shares` (largest remainders). */
function apportion(shares: ArrayLike<number>, total: number): number[] {
  let sum = 0;
  for (let i = 0; i < shares.length; i++) sum += shares[i]!;
  const exact = Array.from({ length: shares.length }, (_, i) => (sum > 0 ? (shares[i]! / sum) * total : 0));
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact
    .map((e, i) => ({ i, rest: e - Math.floor(e) }))
    .sort((a, b) => b.rest - a.rest || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) out[order[k]!.i]!++;
  return out;
}

/** Partitions the rows `members` (labels given) among `devices` devices; appends to `out`. */
function partitionPool(
  members: number[],
  labels: ArrayLike<number>,
  classes: number,
  devices: number,
  alpha: number,
  quantityAlpha: number,
  minRows: number,
  rng: SimRandom,
  where: string,
): Int32Array[] {
  const n = members.length;
  if (devices * minRows > n)
    throw new DatasetError(
      'too-few-rows',
      `${where}${n} rows cannot give ${devices} devices ${minRows} rows each (lower the device count or minRows)`,
    );
  const spare = n - devices * minRows;
  const sizes = (
    Number.isFinite(quantityAlpha)
      ? apportion(rng.dirichlet(new Float64Array(devices).fill(quantityAlpha)), spare)
      : apportion(new Float64Array(devices).fill(1), spare)
  ).map((s) => s + minRows);

  const pools: number[][] = Array.from({ length: classes }, () => []);
  for (const row of members) pools[labels[row]!]!.push(row);
  for (const pool of pools) rng.shuffle(pool);
  const prior = pools.map((p) => p.length / n);
  const present = prior.map((p, c) => (p > 0 ? c : -1)).filter((c) => c >= 0);

  const out: Int32Array[] = new Array<Int32Array>(devices);
  const mix = new Float64Array(classes);
  const available = new Float64Array(classes);
  for (const d of rng.shuffle(Array.from({ length: devices }, (_, i) => i))) {
    mix.fill(0);
    if (Number.isFinite(alpha)) {
      const q = rng.dirichlet(present.map((c) => alpha * prior[c]!));
      present.forEach((c, k) => (mix[c] = q[k]!));
    } else mix.set(prior);
    const rows = new Int32Array(sizes[d]!);
    for (let k = 0; k < rows.length; k++) {
      // the device's mix over the classes that still have rows; when its classes ran out, what is left
      let mass = 0;
      for (let c = 0; c < classes; c++) mass += available[c] = pools[c]!.length > 0 ? mix[c]! : 0;
      if (mass <= 0) for (let c = 0; c < classes; c++) available[c] = pools[c]!.length;
      rows[k] = pools[rng.categorical(available)]!.pop()!;
    }
    out[d] = rows;
  }
  return out;
}

/**
 * Seeded non-IID partition of a table's rows across devices: Dirichlet label skew, Dirichlet quantity skew, a
 * minimum per device, and optionally one group (region) per device. Every row goes to exactly one device.
 */
export function partitionRows(
  labels: ArrayLike<number>,
  classes: number,
  options: PartitionOptions,
): Partition {
  const { devices, seed } = options;
  const alpha = options.alpha ?? DEFAULT_PARTITION_ALPHA;
  const quantityAlpha = options.quantityAlpha ?? Infinity;
  const minRows = options.minRows ?? DEFAULT_MIN_ROWS;
  if (!Number.isSafeInteger(devices) || devices < 1)
    throw new DatasetError('invalid-option', `devices must be a positive integer, got ${devices}`);
  if (!Number.isSafeInteger(minRows) || minRows < 1)
    throw new DatasetError('invalid-option', `minRows must be a positive integer, got ${minRows}`);
  checkConcentration('alpha', alpha);
  checkConcentration('quantityAlpha', quantityAlpha);
  for (let i = 0; i < labels.length; i++)
    if (!(labels[i]! >= 0 && labels[i]! < classes && Number.isInteger(labels[i])))
      throw new DatasetError(
        'invalid-option',
        `label ${labels[i]} of row ${i} is not a class of 0..${classes - 1}`,
      );
  const rng = stream(seed, 'partition');

  if (!options.groups) {
    const members = Array.from({ length: labels.length }, (_, i) => i);
    return { rows: partitionPool(members, labels, classes, devices, alpha, quantityAlpha, minRows, rng, '') };
  }

  const { of, names } = options.groups;
  if (of.length !== labels.length)
    throw new DatasetError('invalid-option', `${of.length} group entries for ${labels.length} rows`);
  const members: number[][] = names.map(() => []);
  for (let i = 0; i < of.length; i++) {
    const g = of[i]!;
    if (!(g >= 0 && g < names.length)) throw new DatasetError('invalid-option', `row ${i}: no group ${g}`);
    members[g]!.push(i);
  }
  const used = members.map((m, g) => (m.length > 0 ? g : -1)).filter((g) => g >= 0);
  if (devices < used.length)
    throw new DatasetError(
      'invalid-option',
      `${devices} devices cannot cover ${used.length} regions (${used.map((g) => names[g]).join(', ')})`,
    );
  // one device per region, the rest in proportion to the regions' rows
  const extra = apportion(
    used.map((g) => members[g]!.length),
    devices - used.length,
  );
  const assignment: number[] = [];
  used.forEach((g, k) => {
    for (let i = 0; i < extra[k]! + 1; i++) assignment.push(g);
  });
  rng.shuffle(assignment);
  const rows = new Array<Int32Array>(devices);
  for (const g of used) {
    const ids = assignment.map((a, d) => (a === g ? d : -1)).filter((d) => d >= 0);
    const parts = partitionPool(
      members[g]!,
      labels,
      classes,
      ids.length,
      alpha,
      quantityAlpha,
      minRows,
      rng,
      `region ${names[g]}: `,
    );
    ids.forEach((d, k) => (rows[d] = parts[k]!));
  }
  return { rows, groups: Int32Array.from(assignment), groupNames: names };
}

/**
 * Partitions a data set's training split (never its test split); a data set with regions (fraud) is partitioned
 * by region unless `byRegion` is false.
 */
export function partitionDataset(
  dataset: SplitDataset,
  options: Omit<PartitionOptions, 'groups'> & { byRegion?: boolean },
): Partition {
  const groups =
    dataset.regions && options.byRegion !== false
      ? { of: dataset.regions.train, names: dataset.regions.names }
      : undefined;
  return partitionRows(dataset.train.labels, dataset.classNames.length, {
    ...options,
    ...(groups && { groups }),
  });
}

/** The rows of a table a device holds, as its own Table (a copy: ~4·(cols + 1) bytes per row). */
export function deviceTable(table: Table, rows: Int32Array): Table {
  const features = new Float32Array(rows.length * table.cols);
  const labels = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    features.set(table.features.subarray(r * table.cols, (r + 1) * table.cols), i * table.cols);
    labels[i] = table.labels[r]!;
  }
  return { features, labels, rows: rows.length, cols: table.cols };
}

/** Class shares of a device's rows. */
export function classShares(labels: ArrayLike<number>, rows: Int32Array, classes: number): Float64Array {
  const shares = new Float64Array(classes);
  for (const r of rows) shares[labels[r]!]! += 1 / rows.length;
  return shares;
}

/**
 * Label skew of a partition: the mean over devices of the total variation distance between the device's class
 * shares and the pool's (0 = every device has the pool's mix; near 1 = devices hold disjoint classes).
 */
export function labelSkew(labels: ArrayLike<number>, partition: Partition, classes: number): number {
  const all = new Int32Array(labels.length).map((_, i) => i);
  const pool = classShares(labels, all, classes);
  let sum = 0;
  for (const rows of partition.rows) {
    const mine = classShares(labels, rows, classes);
    let tv = 0;
    for (let c = 0; c < classes; c++) tv += Math.abs(mine[c]! - pool[c]!) / 2;
    sum += tv;
  }
  return sum / partition.rows.length;
}
