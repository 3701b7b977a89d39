import { InvalidUpdateError } from './errors.js';
import { SUM_TILE, weightedSumRange } from './kernels.js';
import type { AggregateResult, ClientUpdate, StreamingAccumulator, Weights } from './types.js';
import { allFinite, assertValidUpdates, checkUpdate, shapeOf, type UpdateConstraints } from './validate.js';

/**
 * FedAvg (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from Decentralized Data"):
 * (Σ nᵢ·wᵢ) / Σ nᵢ per coordinate, accumulated in float64. Every update is checked (shape, example count,
 * NaN/Inf) and a bad one throws `InvalidUpdateError` instead of being averaged; the finite check is fused
 * with the summation (a NaN or Inf input makes the float64 tile sum non-finite, which cannot happen otherwise).
 * Memory: the output plus one float64 tile.
 */
export function fedAvg(
  updates: readonly ClientUpdate[],
  constraints: UpdateConstraints = {},
): AggregateResult {
  const shape = assertValidUpdates(updates, { ...constraints, skipFiniteCheck: true });
  const coef = updates.map((u) => u.numExamples);
  const total = coef.reduce((a, b) => a + b, 0);
  const weights = weightedSum(updates, coef, shape, 1 / total);
  if (constraints.maxNorm !== undefined) assertValidUpdates(updates, constraints); // norm needs its own pass
  return { weights };
}

/**
 * Σ coefᵢ·wᵢ · outScale per coordinate (float64 accumulation, float32 output), for the given subset of clients.
 * Throws `InvalidUpdateError('non-finite')` naming the first client whose slice contains NaN/Inf.
 */
export function weightedSum(
  updates: readonly ClientUpdate[],
  coef: readonly number[],
  shape: readonly number[],
  outScale = 1,
): Weights {
  const acc = new Float64Array(SUM_TILE);
  return shape.map((len, l) => {
    const out = new Float32Array(len);
    const cols = updates.map((u) => u.weights[l]!);
    // the kernel stops at the first tile whose sums are not finite; name the culprit in that tile
    if (!weightedSumRange(cols, coef, outScale, out, 0, len, acc)) {
      for (let base = 0; base < len; base += SUM_TILE) {
        const end = Math.min(len, base + SUM_TILE);
        if (!weightedSumRange(cols, coef, outScale, out, base, end, acc))
          throw nonFiniteCulprit(updates, l, base, end);
      }
    }
    return out;
  });
}

function nonFiniteCulprit(
  updates: readonly ClientUpdate[],
  layer: number,
  from: number,
  to: number,
): InvalidUpdateError {
  for (let i = 0; i < updates.length; i++) {
    if (!allFinite(updates[i]!.weights[layer]!.subarray(from, to))) {
      return new InvalidUpdateError('non-finite', `layer ${layer} contains NaN or Infinity`, i);
    }
  }
  // float64 overflow of finite float32 inputs is impossible unless a coefficient is absurd
  return new InvalidUpdateError(
    'bad-num-examples',
    'weighted sum overflowed; example counts are out of range',
  );
}

/**
 * Streaming weighted sum / average: `add()` one update at a time, O(d) memory (a float64 accumulator).
 * A bad update throws `InvalidUpdateError` before it touches the state.
 */
export class WeightedSumAccumulator implements StreamingAccumulator {
  readonly requiresAllUpdates = false as const;
  private acc: Float64Array[] | null = null;
  private shape: number[] | null;
  private n = 0;
  private totalWeight = 0;

  constructor(
    private readonly mode: 'fedavg' | 'sum' | 'mean',
    private readonly constraints: UpdateConstraints = {},
  ) {
    this.shape = constraints.shape ? [...constraints.shape] : null;
  }

  get count(): number {
    return this.n;
  }

  /** Sum of the weights applied so far (Σ nᵢ for FedAvg, the count otherwise). */
  get total(): number {
    return this.totalWeight;
  }

  add(update: ClientUpdate): void {
    const bad = checkUpdate(update, this.shape ?? undefined, {
      ...this.constraints,
      requireNumExamples: this.mode === 'fedavg',
    });
    if (bad) throw new InvalidUpdateError(bad.reason, bad.message);
    if (!this.shape) this.shape = shapeOf(update.weights);
    const acc = (this.acc ??= this.shape.map((len) => new Float64Array(len)));
    const w = this.mode === 'fedavg' ? update.numExamples : 1;
    for (let l = 0; l < acc.length; l++) {
      const a = acc[l]!;
      const x = update.weights[l]!;
      for (let j = 0; j < a.length; j++) a[j] = a[j]! + w * x[j]!;
    }
    this.n++;
    this.totalWeight += w;
  }

  result(): AggregateResult {
    if (!this.acc || this.n === 0) throw new InvalidUpdateError('empty', 'no updates were accepted');
    const scale = this.mode === 'sum' ? 1 : 1 / this.totalWeight;
    return { weights: this.acc.map((a) => Float32Array.from(a, (v) => v * scale)) };
  }

  /** The raw float64 sums (for callers that post-process, e.g. central DP). */
  sums(): readonly Float64Array[] {
    if (!this.acc) throw new InvalidUpdateError('empty', 'no updates were accepted');
    return this.acc;
  }
}

/** Streaming FedAvg (weighted by example count). */
export function createFedAvgAccumulator(constraints: UpdateConstraints = {}): WeightedSumAccumulator {
  return new WeightedSumAccumulator('fedavg', constraints);
}

/** Streaming plain sum (secure-aggregation style: example counts are not required). */
export function createSumAccumulator(constraints: UpdateConstraints = {}): WeightedSumAccumulator {
  return new WeightedSumAccumulator('sum', { ...constraints, requireNumExamples: false });
}
