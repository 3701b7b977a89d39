import type { Table } from '../data/types.js';
import { SimRandom } from '../random.js';

/**
 * Attack models of the fleet simulator: pure functions over an update's layers (Float32Array per tensor, spec order),
 * deterministic given their inputs and seed. Model poisoning replaces the update an attacking device sends; data
 * poisoning (label flip) changes what it trains on. See libs/sim/README.md for the papers and the honest-update
 * estimate ALIE and IPM use.
 */
export const ATTACK_KINDS = ['sign-flip', 'scale', 'noise', 'alie', 'ipm', 'label-flip'] as const;
export type AttackKind = (typeof ATTACK_KINDS)[number];

export type Update = readonly Float32Array[];

export function isAttackKind(kind: string): kind is AttackKind {
  return (ATTACK_KINDS as readonly string[]).includes(kind);
}

/** Parameters of the attacks (each has a default; see ATTACK_DEFAULTS). */
export interface AttackParams {
  /** sign-flip: the update sent is −factor × the honest one (default 1). */
  readonly flipFactor?: number;
  /** scale (boosting): the update sent is factor × the honest one (default 10). */
  readonly boostFactor?: number;
  /** noise: standard deviation of the Gaussian noise added to every coordinate (default 0.1). */
  readonly noiseSd?: number;
  /** alie: z of mean − z·std; default from n and f as in Baruch et al. (alieZ). */
  readonly alieZ?: number;
  /** ipm: ε of −ε × mean of the honest updates (default 0.5). */
  readonly ipmEpsilon?: number;
}

export const ATTACK_DEFAULTS = {
  flipFactor: 1,
  boostFactor: 10,
  noiseSd: 0.1,
  ipmEpsilon: 0.5,
} as const;

function positive(value: number, name: string): number {
  if (!(Number.isFinite(value) && value > 0))
    throw new RangeError(`${name} must be a positive number, got ${value}`);
  return value;
}

/** Sign flip: −factor × the honest update. */
export function signFlip(update: Update, factor: number = ATTACK_DEFAULTS.flipFactor): Float32Array[] {
  positive(factor, 'flip factor');
  return update.map((l) => l.map((v) => -factor * v));
}

/** Scaled update (boosting, Bagdasaryan et al. 2020's model replacement without the backdoor): factor × the update. */
export function scaleUpdate(update: Update, factor: number = ATTACK_DEFAULTS.boostFactor): Float32Array[] {
  positive(factor, 'boost factor');
  return update.map((l) => l.map((v) => factor * v));
}

/** Gaussian noise: the honest update plus N(0, sd²) on every coordinate, drawn from the seeded stream. */
export function gaussianNoise(
  update: Update,
  sd: number = ATTACK_DEFAULTS.noiseSd,
  random: SimRandom,
): Float32Array[] {
  positive(sd, 'noise sd');
  return update.map((l) => l.map((v) => v + random.normal(0, sd)));
}

/** Coordinate-wise mean and (population) standard deviation of updates of the same shape. */
export function meanAndStd(updates: readonly Update[]): { mean: Float32Array[]; std: Float32Array[] } {
  if (updates.length === 0) throw new RangeError('mean and std of no updates');
  const shape = updates[0]!.map((l) => l.length);
  for (const u of updates)
    if (u.length !== shape.length || u.some((l, i) => l.length !== shape[i]))
      throw new RangeError('updates of different shapes');
  const n = updates.length;
  const mean = shape.map((len) => new Float32Array(len));
  const std = shape.map((len) => new Float32Array(len));
  for (let l = 0; l < shape.length; l++)
    for (let j = 0; j < shape[l]!; j++) {
      let s = 0;
      for (const u of updates) s += u[l]![j]!;
      const m = s / n;
      let v = 0;
      for (const u of updates) v += (u[l]![j]! - m) ** 2;
      mean[l]![j] = m;
      std[l]![j] = Math.sqrt(v / n);
    }
  return { mean, std };
}

/**
 * Inverse of the standard normal CDF, Φ⁻¹(p) for p in (0, 1): Acklam's rational approximation (relative error below
 * 1.2e-9), hand-written because it is 30 lines and no dependency here has it.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normal quantile needs p in (0, 1), got ${p}`);
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
    );
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

/**
 * z of "A little is enough" (Baruch, Baruch & Goldberg, NeurIPS 2019, §4): with n workers of which f collude,
 * s = ⌊n/2 + 1⌋ − f honest workers must be "won over", and z = Φ⁻¹((n − s)/n) is the largest shift (in standard
 * deviations) that still leaves the attackers closer to the mean than s honest workers. 0 when (n − s)/n ≤ 1/2
 * (too few attackers to shift anything unnoticed).
 */
export function alieZ(n: number, f: number): number {
  if (!(Number.isInteger(n) && n >= 1 && Number.isInteger(f) && f >= 0 && f < n))
    throw new RangeError(`alieZ needs integers n ≥ 1 and 0 ≤ f < n, got n=${n} f=${f}`);
  const s = Math.floor(n / 2 + 1) - f;
  const share = (n - s) / n;
  if (share <= 0.5) return 0;
  if (share >= 1) return normalQuantile(1 - 1e-9);
  return normalQuantile(share);
}

/**
 * "A little is enough": every attacker sends mean − z·std (coordinate-wise) of the honest updates it estimates
 * (`honest`: the updates the colluding attackers computed honestly on their own data).
 */
export function alie(honest: readonly Update[], z: number): Float32Array[] {
  if (!Number.isFinite(z) || z < 0) throw new RangeError(`ALIE z must be a finite number ≥ 0, got ${z}`);
  const { mean, std } = meanAndStd(honest);
  return mean.map((m, l) => m.map((v, j) => v - z * std[l]![j]!));
}

/**
 * Inner-product manipulation (Xie, Koyejo & Gupta, UAI 2020, "Fall of empires"): every attacker sends −ε × the mean
 * of the honest updates it estimates, so the aggregate's inner product with the true gradient turns negative while
 * the attackers' updates stay small (ε = 0.1 slips through Krum and the median; a large ε defeats the mean).
 */
export function ipm(honest: readonly Update[], epsilon: number = ATTACK_DEFAULTS.ipmEpsilon): Float32Array[] {
  positive(epsilon, 'IPM epsilon');
  const { mean } = meanAndStd(honest);
  return mean.map((l) => l.map((v) => -epsilon * v));
}

/**
 * Label flip (data poisoning, as in Fang et al. 2020 and Tolpegin et al. 2020): the attacker trains on its rows with
 * label c replaced by (classes − 1 − c) — 0 ↔ 1 for a binary task. Returns a copy; features are shared.
 */
export function flipLabels(table: Table, classes: number): Table {
  if (!(Number.isInteger(classes) && classes >= 2))
    throw new RangeError(`label flip needs ≥ 2 classes, got ${classes}`);
  const labels = Int32Array.from(table.labels, (c) => {
    if (!(c >= 0 && c < classes)) throw new RangeError(`label ${c} is not one of ${classes} classes`);
    return classes - 1 - c;
  });
  return { ...table, labels };
}
