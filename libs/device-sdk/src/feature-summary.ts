// Per-input summaries of what a device infers on, attached to its heartbeats (DeviceTelemetry.featureSummaries) so
// the telemetry service can measure feature drift (PSI / KL over the bins, or mean/std) without raw data leaving the
// device. Memory is fixed at construction: features × (5 numbers + bins), whatever the number of inputs seen.
import type { FeatureSummary } from '@edgefl/contracts/edge';
import { DeviceError } from './errors.js';

/** Hard caps, so a configuration cannot make the summarizer (or the heartbeat) unbounded. */
export const FEATURE_SUMMARY_LIMITS = { maxFeatures: 256, maxEdges: 65 } as const;

export interface FeatureSummaryOptions {
  /**
   * Feature names, in input order; the summarizer covers exactly these many leading inputs. Default: every input
   * of the first row seen (up to `maxFeatures`), named by index ("0", "1", …).
   */
  names?: readonly string[];
  /**
   * Increasing, finite bin edges (2..65): one list for every feature, or one per feature name (features without
   * an entry get no bins). Fixed by configuration so every device's bins of a feature are comparable. Values
   * below the first edge count in the first bin, above the last edge in the last bin.
   */
  binEdges?: readonly number[] | Readonly<Record<string, readonly number[]>>;
  /** At most this many leading inputs are summarised (default 64, at most 256). */
  maxFeatures?: number;
}

/** What the summarizer refused since it was created (rows are refused whole, values one by one). */
export interface FeatureSummaryStats {
  /** Rows observed. */
  rows: number;
  /** Rows shorter than the configured feature names (not summarised at all). */
  shortRows: number;
  /** NaN or ±Infinity values skipped (the other values of the row count). */
  nonFinite: number;
}

interface Running {
  count: number;
  mean: number;
  /** Sum of squared deviations from the mean (Welford's M2). */
  m2: number;
  min: number;
  max: number;
  bins: Float64Array | null;
}

function checkEdges(edges: readonly number[], what: string): number[] {
  if (!Array.isArray(edges) || edges.length < 2 || edges.length > FEATURE_SUMMARY_LIMITS.maxEdges) {
    throw new DeviceError(
      'bad-config',
      `featureSummaries.binEdges${what}: need 2..${FEATURE_SUMMARY_LIMITS.maxEdges} edges`,
    );
  }
  for (let i = 0; i < edges.length; i++) {
    const e = edges[i];
    if (typeof e !== 'number' || !Number.isFinite(e)) {
      throw new DeviceError('bad-config', `featureSummaries.binEdges${what}[${i}] is not a finite number`);
    }
    if (i > 0 && e <= edges[i - 1]!) {
      throw new DeviceError('bad-config', `featureSummaries.binEdges${what} must be strictly increasing`);
    }
  }
  return [...edges];
}

/** The bin of `x` over `edges` (binary search; clamped to the first and last bin). */
export function binIndex(edges: readonly number[], x: number): number {
  const last = edges.length - 2;
  if (x < edges[1]!) return 0;
  if (x >= edges[last]!) return last;
  // invariant: edges[lo] <= x < edges[hi]
  let lo = 1;
  let hi = last;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (x < edges[mid]!) hi = mid;
    else lo = mid;
  }
  return lo;
}

/**
 * Running mean and variance by Welford's online algorithm (B. P. Welford, "Note on a method for calculating
 * corrected sums of squares and products", Technometrics 4(3), 1962; Knuth TAOCP vol. 2, 4.2.2), numerically stable
 * in one pass, plus min/max and fixed-edge bin counts. `drain()` returns the summaries since the previous drain (one
 * heartbeat's worth) and starts again.
 */
export class FeatureSummarizer {
  readonly #names: string[] | null;
  readonly #edges: readonly number[] | Readonly<Record<string, readonly number[]>> | undefined;
  readonly #maxFeatures: number;
  #featureEdges: Array<number[] | null> = [];
  #running: Running[] = [];
  #width = 0;
  readonly #stats: FeatureSummaryStats = { rows: 0, shortRows: 0, nonFinite: 0 };

  constructor(options: FeatureSummaryOptions = {}) {
    const maxFeatures = options.maxFeatures ?? 64;
    if (
      !Number.isInteger(maxFeatures) ||
      maxFeatures < 1 ||
      maxFeatures > FEATURE_SUMMARY_LIMITS.maxFeatures
    ) {
      throw new DeviceError(
        'bad-config',
        `featureSummaries.maxFeatures must be an integer in 1..${FEATURE_SUMMARY_LIMITS.maxFeatures}`,
      );
    }
    this.#maxFeatures = maxFeatures;
    if (options.names !== undefined) {
      const names = [...options.names];
      if (names.length < 1 || names.length > maxFeatures) {
        throw new DeviceError('bad-config', `featureSummaries.names: need 1..${maxFeatures} names`);
      }
      if (names.some((n) => typeof n !== 'string' || n.length === 0 || n.length > 128)) {
        throw new DeviceError(
          'bad-config',
          'featureSummaries.names: each name is a string of 1..128 characters',
        );
      }
      if (new Set(names).size !== names.length) {
        throw new DeviceError('bad-config', 'featureSummaries.names: names must be unique');
      }
      this.#names = names;
    } else {
      this.#names = null;
    }
    const edges = options.binEdges;
    if (Array.isArray(edges)) {
      this.#edges = checkEdges(edges, '');
    } else if (edges !== undefined) {
      const perFeature: Record<string, number[]> = {};
      for (const [name, list] of Object.entries(edges as Record<string, readonly number[]>)) {
        if (this.#names && !this.#names.includes(name)) {
          throw new DeviceError('bad-config', `featureSummaries.binEdges names an unknown feature "${name}"`);
        }
        perFeature[name] = checkEdges(list, `["${name}"]`);
      }
      this.#edges = perFeature;
    }
    if (this.#names) this.#allocate(this.#names.length);
  }

  /** Number of features summarised (0 until the first row when names are not configured). */
  get width(): number {
    return this.#width;
  }

  stats(): FeatureSummaryStats {
    return { ...this.#stats };
  }

  #nameOf(i: number): string {
    return this.#names ? this.#names[i]! : String(i);
  }

  #allocate(width: number): void {
    this.#width = width;
    this.#featureEdges = [];
    for (let i = 0; i < width; i++) {
      const e = this.#edges;
      this.#featureEdges.push(
        e === undefined
          ? null
          : Array.isArray(e)
            ? (e as number[])
            : ((e as Record<string, number[]>)[this.#nameOf(i)] ?? null),
      );
    }
    this.#reset();
  }

  #reset(): void {
    this.#running = this.#featureEdges.map((edges) => ({
      count: 0,
      mean: 0,
      m2: 0,
      min: Infinity,
      max: -Infinity,
      bins: edges ? new Float64Array(edges.length - 1) : null,
    }));
  }

  /**
   * Adds one input row. Without configured names the first row fixes the width (its length, capped); a later row
   * of another length (a new model's inputs) starts the summaries afresh at that width.
   */
  observe(row: ArrayLike<number>): void {
    this.#stats.rows++;
    if (this.#names) {
      if (row.length < this.#width) {
        this.#stats.shortRows++;
        return;
      }
    } else {
      const width = Math.min(row.length, this.#maxFeatures);
      if (width !== this.#width) this.#allocate(width);
    }
    for (let i = 0; i < this.#width; i++) {
      const x = row[i]!;
      if (!Number.isFinite(x)) {
        this.#stats.nonFinite++;
        continue;
      }
      const r = this.#running[i]!;
      r.count++;
      const delta = x - r.mean;
      r.mean += delta / r.count;
      r.m2 += delta * (x - r.mean);
      if (x < r.min) r.min = x;
      if (x > r.max) r.max = x;
      if (r.bins) r.bins[binIndex(this.#featureEdges[i]!, x)]!++;
    }
  }

  /** Summaries of the features that saw at least one value since the last drain (null when none did); resets. */
  drain(): FeatureSummary[] | null {
    const out: FeatureSummary[] = [];
    this.#running.forEach((r, i) => {
      if (r.count === 0) return;
      const edges = this.#featureEdges[i] ?? null;
      out.push({
        name: this.#nameOf(i),
        count: r.count,
        mean: r.mean,
        std: Math.sqrt(Math.max(0, r.m2 / r.count)),
        min: r.min,
        max: r.max,
        bins: r.bins ? Array.from(r.bins) : null,
        binEdges: edges ? [...edges] : null,
      });
    });
    this.#reset();
    return out.length > 0 ? out : null;
  }
}
