// Distribution drift between a baseline window and a current window: the population stability index (PSI) and the
// Kullback-Leibler divergence over equal bins, the histograms and quantile bin edges they need, and the drift of a
// device feature summary (DeviceTelemetry.featureSummaries) against its baseline. Pure functions, no framework.
//
// References:
// - PSI: N. Siddiqi, "Credit Risk Scorecards" (Wiley, 2006), ch. 8; B. Yurdakul, "Statistical Properties of
//   Population Stability Index" (Western Michigan University, 2018). PSI = Σ (aᵢ − eᵢ) ln(aᵢ / eᵢ) over bin shares
//   e (expected, the baseline) and a (actual, the current window). Rule of thumb: < 0.1 no significant change,
//   0.1–0.25 moderate, > 0.25 significant. PSI is the symmetrised KL divergence (Jeffreys' J): KL(a‖e) + KL(e‖a).
// - KL: S. Kullback, R. A. Leibler, "On Information and Sufficiency", Ann. Math. Statist. 22(1), 1951.
//   KL(P‖Q) = Σ pᵢ ln(pᵢ / qᵢ), in nats (natural log), as scipy.stats.entropy(p, q) computes it.
// - Closed-form KL between normals (the fallback when two summaries' bins are not comparable): for N(μ₀, σ₀²) and
//   N(μ₁, σ₁²), KL = ln(σ₁/σ₀) + (σ₀² + (μ₀ − μ₁)²) / (2σ₁²) − ½ (e.g. Pardo, "Statistical Inference Based on
//   Divergence Measures", 2006, §1.2).
// - Pooled mean and variance of summaries: T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating Formulae and a Pairwise
//   Algorithm for Computing Sample Variances" (Stanford CS tech. report STAN-CS-79-773, 1979).
//
// Smoothing (empty bins): a share of zero makes ln(a/e) infinite. Both distributions are smoothed the same way
// before PSI or KL: every share below `epsilon` (default 1e-4) is raised to `epsilon`, and the shares are then
// renormalised to sum to 1. A distribution without empty bins (nor shares below epsilon) is left exactly as it is,
// so on such counts `klDivergence` equals scipy.stats.entropy on the raw counts.
import type { FeatureSummary } from '@edgefl/contracts';
import { AnalysisError } from './errors.js';

export const DEFAULT_EPSILON = 1e-4;

export interface DivergenceOptions {
  /** Smallest share a bin may have after smoothing, in (0, 1 / bins); default 1e-4. */
  epsilon?: number;
}

function checkCounts(name: string, counts: readonly number[]): number {
  if (!Array.isArray(counts) || counts.length === 0) throw new AnalysisError('EMPTY', `${name}: no bins`);
  let total = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (typeof c !== 'number' || !Number.isFinite(c) || c < 0) {
      throw new AnalysisError('NOT_FINITE', `${name}[${i}] is not a finite, non-negative count`);
    }
    total += c;
  }
  if (total <= 0) throw new AnalysisError('EMPTY', `${name}: counts sum to zero`);
  return total;
}

function epsilonOf(options: DivergenceOptions | undefined, bins: number): number {
  const epsilon = options?.epsilon ?? DEFAULT_EPSILON;
  if (typeof epsilon !== 'number' || !(epsilon > 0) || epsilon * bins >= 1) {
    throw new AnalysisError('BAD_OPTION', `epsilon must be in (0, 1/${bins}) for ${bins} bins`);
  }
  return epsilon;
}

/**
 * Bin shares of `counts` after the smoothing every divergence here applies: shares below `epsilon` are raised to it
 * and all are renormalised to sum to 1 (unchanged when no share is below epsilon).
 */
export function smoothedShares(counts: readonly number[], options?: DivergenceOptions): number[] {
  const total = checkCounts('counts', counts);
  const epsilon = epsilonOf(options, counts.length);
  const shares = counts.map((c) => c / total);
  if (shares.every((s) => s >= epsilon)) return shares;
  const raised = shares.map((s) => Math.max(s, epsilon));
  const sum = raised.reduce((a, b) => a + b, 0);
  return raised.map((s) => s / sum);
}

function pair(
  what: string,
  first: readonly number[],
  second: readonly number[],
  options: DivergenceOptions | undefined,
): [number[], number[]] {
  checkCounts(`${what}: first distribution`, first);
  checkCounts(`${what}: second distribution`, second);
  if (first.length !== second.length) {
    throw new AnalysisError(
      'LENGTH_MISMATCH',
      `${what}: ${first.length} bins against ${second.length}; both must have the same bins`,
    );
  }
  return [smoothedShares(first, options), smoothedShares(second, options)];
}

/**
 * Population stability index of `actual` (current window) against `expected` (baseline), both counts over the
 * same bins (any scale: counts or shares). ≥ 0, symmetric, 0 for identical shares. Empty bins are smoothed (see top).
 */
export function psi(
  expected: readonly number[],
  actual: readonly number[],
  options?: DivergenceOptions,
): number {
  const [e, a] = pair('psi', expected, actual, options);
  let sum = 0;
  for (let i = 0; i < e.length; i++) sum += (a[i]! - e[i]!) * Math.log(a[i]! / e[i]!);
  return Math.max(0, sum);
}

/**
 * Kullback-Leibler divergence KL(P‖Q) in nats, P and Q counts over the same bins (any scale). ≥ 0, 0 for identical
 * shares, not symmetric. Empty bins are smoothed (see top), so the result is finite.
 */
export function klDivergence(
  p: readonly number[],
  q: readonly number[],
  options?: DivergenceOptions,
): number {
  const [ps, qs] = pair('klDivergence', p, q, options);
  let sum = 0;
  for (let i = 0; i < ps.length; i++) sum += ps[i]! * Math.log(ps[i]! / qs[i]!);
  return Math.max(0, sum);
}

/** Checks bin edges: at least 2, finite, strictly increasing. */
export function checkEdges(edges: readonly number[], name = 'edges'): void {
  if (!Array.isArray(edges) || edges.length < 2) {
    throw new AnalysisError('BAD_EDGES', `${name}: need at least 2 bin edges`);
  }
  for (let i = 0; i < edges.length; i++) {
    const e = edges[i];
    if (typeof e !== 'number' || !Number.isFinite(e)) {
      throw new AnalysisError('BAD_EDGES', `${name}[${i}] is not a finite number`);
    }
    if (i > 0 && e <= edges[i - 1]!)
      throw new AnalysisError('BAD_EDGES', `${name} must be strictly increasing`);
  }
}

/** The bin of `x` over checked `edges`: [e₀, e₁), [e₁, e₂), …, [eₙ₋₁, eₙ]; below e₀ → 0, above eₙ → the last. */
function binOf(edges: readonly number[], x: number): number {
  const last = edges.length - 2;
  if (x < edges[1]!) return 0;
  if (x >= edges[last]!) return last;
  let lo = 1;
  let hi = last; // edges[lo] <= x < edges[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (x < edges[mid]!) hi = mid;
    else lo = mid;
  }
  return lo;
}

/**
 * Counts of `values` over `edges` (edges.length − 1 bins, left-closed, the last one closed). Values outside the edges
 * count in the first or last bin, as the device SDK's feature summaries do, so counts sum to values.length.
 */
export function histogram(values: readonly number[], edges: readonly number[]): number[] {
  checkEdges(edges);
  const counts = new Array<number>(edges.length - 1).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new AnalysisError('NOT_FINITE', `values[${i}] is not a finite number`);
    }
    counts[binOf(edges, v)]!++;
  }
  return counts;
}

/** Quantile `q` of sorted values, linear interpolation between order statistics (Hyndman & Fan type 7, numpy's). */
function quantileSorted(sorted: readonly number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/**
 * Edges of `bins` equal-frequency bins of `values` (usually the baseline window): the 0, 1/bins, …, 1 quantiles
 * (type 7), duplicates dropped, so heavy ties give fewer, still strictly increasing edges. A constant sample v gets
 * [v − d, v, v + δ, v + d] (d = max(|v|, 1), δ = d·1e-9): its own narrow bin with one on either side, so a shift
 * either way shows.
 */
export function quantileEdges(values: readonly number[], bins: number): number[] {
  if (!Number.isInteger(bins) || bins < 1 || bins > 10_000) {
    throw new AnalysisError('BAD_OPTION', 'bins must be an integer in 1..10000');
  }
  if (!Array.isArray(values) || values.length === 0) throw new AnalysisError('EMPTY', 'values: none');
  for (let i = 0; i < values.length; i++) {
    if (typeof values[i] !== 'number' || !Number.isFinite(values[i])) {
      throw new AnalysisError('NOT_FINITE', `values[${i}] is not a finite number`);
    }
  }
  const sorted = Float64Array.from(values).sort();
  const arr = Array.from(sorted);
  const edges: number[] = [];
  for (let k = 0; k <= bins; k++) {
    const e = quantileSorted(arr, k / bins);
    if (edges.length === 0 || e > edges[edges.length - 1]!) edges.push(e);
  }
  if (edges.length < 2) {
    const v = edges[0]!;
    const d = Math.max(Math.abs(v), 1);
    return [v - d, v, v + d * 1e-9, v + d];
  }
  return edges;
}

/** How `driftBetween` compared two summaries. */
export type DriftMethod =
  /** Over the devices' bins (both summaries carry bins over identical edges). */
  | 'bins'
  /** From mean and std, each summary taken as a normal distribution (the bins were absent or not comparable). */
  | 'normal';

export interface FeatureDrift {
  feature: string;
  method: DriftMethod;
  /** Population stability index (with `normal`: KL(current‖baseline) + KL(baseline‖current) of the two normals). */
  psi: number;
  /** KL(current‖baseline) in nats: how unlikely the current window is under the baseline. */
  kl: number;
  /** Values in the baseline and the current summary. */
  baselineCount: number;
  currentCount: number;
}

function checkSummary(name: string, s: FeatureSummary): void {
  if (typeof s !== 'object' || s === null || typeof s.name !== 'string') {
    throw new AnalysisError('EMPTY', `${name}: not a feature summary`);
  }
  for (const field of ['count', 'mean', 'std', 'min', 'max'] as const) {
    if (typeof s[field] !== 'number' || !Number.isFinite(s[field])) {
      throw new AnalysisError('NOT_FINITE', `${name}.${field} is not a finite number`);
    }
  }
  if (s.count <= 0 || !Number.isInteger(s.count)) {
    throw new AnalysisError('EMPTY', `${name}.count must be a positive integer`);
  }
  if (s.std < 0) throw new AnalysisError('NOT_FINITE', `${name}.std is negative`);
  if ((s.bins === null) !== (s.binEdges === null)) {
    throw new AnalysisError('LENGTH_MISMATCH', `${name}: bins and binEdges must both be set or both be null`);
  }
  if (s.bins !== null && s.binEdges !== null) {
    checkEdges(s.binEdges, `${name}.binEdges`);
    if (s.bins.length !== s.binEdges.length - 1) {
      throw new AnalysisError(
        'LENGTH_MISMATCH',
        `${name}: ${s.bins.length} bins for ${s.binEdges.length} edges`,
      );
    }
    checkCounts(`${name}.bins`, s.bins);
  }
}

function sameEdges(a: readonly number[] | null, b: readonly number[] | null): boolean {
  return a !== null && b !== null && a.length === b.length && a.every((e, i) => e === b[i]);
}

/** KL(N(m0, s0²) ‖ N(m1, s1²)). */
function normalKl(m0: number, s0: number, m1: number, s1: number): number {
  return Math.log(s1 / s0) + (s0 * s0 + (m0 - m1) ** 2) / (2 * s1 * s1) - 0.5;
}

/**
 * Drift of one feature: `current` against `baseline` (FeatureSummary, e.g. pooled by `mergeSummaries`).
 *
 * - Both carry bins over identical `binEdges` → PSI and KL over the bins (smoothing as at the top).
 * - Otherwise (no bins on either side, or edges that differ) → the documented fallback from mean and std: each side
 *   is taken as a normal distribution and PSI is Jeffreys' divergence KL(c‖b) + KL(b‖c) of the two normals (what PSI
 *   tends to over ever finer bins of two normals), KL is KL(c‖b). A std below
 *   `stdFloor` = max(1e-9, 1e-6 · max(|mean|, 1)) is raised to it, so a constant feature stays finite. The normal
 *   fallback only sees shifts of location and scale, not of shape.
 */
export function driftBetween(
  baseline: FeatureSummary,
  current: FeatureSummary,
  options?: DivergenceOptions,
): FeatureDrift {
  checkSummary('baseline', baseline);
  checkSummary('current', current);
  if (baseline.name !== current.name) {
    throw new AnalysisError('FEATURE_MISMATCH', 'baseline and current summarise different features');
  }
  const base = { feature: current.name, baselineCount: baseline.count, currentCount: current.count };
  if (sameEdges(baseline.binEdges, current.binEdges) && baseline.bins && current.bins) {
    return {
      ...base,
      method: 'bins',
      psi: psi(baseline.bins, current.bins, options),
      kl: klDivergence(current.bins, baseline.bins, options),
    };
  }
  const floor = (s: FeatureSummary) => Math.max(s.std, 1e-9, 1e-6 * Math.max(Math.abs(s.mean), 1));
  const sb = floor(baseline);
  const sc = floor(current);
  const kl = Math.max(0, normalKl(current.mean, sc, baseline.mean, sb));
  const back = Math.max(0, normalKl(baseline.mean, sb, current.mean, sc));
  return { ...base, method: 'normal', psi: kl + back, kl };
}

/**
 * Pools summaries of one feature (many devices, or many heartbeats) into one: total count, pooled mean and
 * population std (Chan, Golub & LeVeque's pairwise update), min, max, and bins summed when every summary has bins
 * over the same edges (else bins and binEdges are null). Summaries of other features are refused.
 */
export function mergeSummaries(summaries: readonly FeatureSummary[]): FeatureSummary {
  if (!Array.isArray(summaries) || summaries.length === 0) {
    throw new AnalysisError('EMPTY', 'mergeSummaries: no summaries');
  }
  summaries.forEach((s, i) => checkSummary(`summaries[${i}]`, s));
  const first = summaries[0]!;
  let count = 0;
  let mean = 0;
  let m2 = 0;
  let min = Infinity;
  let max = -Infinity;
  const edges = first.binEdges;
  let bins: number[] | null = first.bins ? new Array<number>(first.bins.length).fill(0) : null;
  for (const s of summaries) {
    if (s.name !== first.name) {
      throw new AnalysisError('FEATURE_MISMATCH', 'mergeSummaries: summaries of different features');
    }
    const n = count + s.count;
    const delta = s.mean - mean;
    mean += (delta * s.count) / n;
    m2 += s.std * s.std * s.count + (delta * delta * count * s.count) / n;
    count = n;
    min = Math.min(min, s.min);
    max = Math.max(max, s.max);
    const add = s.bins;
    if (bins !== null && add !== null && sameEdges(edges, s.binEdges)) {
      for (let i = 0; i < add.length; i++) bins[i]! += add[i]!;
    } else {
      bins = null;
    }
  }
  return {
    name: first.name,
    count,
    mean,
    std: Math.sqrt(Math.max(0, m2 / count)),
    min,
    max,
    bins,
    binEdges: bins ? [...edges!] : null,
  };
}
