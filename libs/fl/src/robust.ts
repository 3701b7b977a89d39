import { layerOf, structuralShape, throwFirstInvalid, trimCount } from './checks.js';
import { InvalidParameterError } from './errors.js';
import { weightedSum } from './fedavg.js';
import { COL_TILE, columnScratch, medianRange, trimmedMeanRange } from './kernels.js';
import { insertionSort, selectKth } from './select.js';
import type { AggregateResult, ClientUpdate, Weights } from './types.js';
import { assertValidUpdates, l2Norm } from './validate.js';

/** Coordinates per tile for pairwise distances (n·TILE·4 bytes of inputs stay in cache). */
const DIST_TILE = 2048;

/**
 * Applies `reduce` to every coordinate's column of n values (float64 copy, order = client order, which the
 * reducer may permute) and writes the float32 results. Tiles are transposed so each column is contiguous.
 */
function columnwise(
  updates: readonly ClientUpdate[],
  shape: readonly number[],
  reduce: (col: Float64Array, off: number, n: number) => number,
): Weights {
  const n = updates.length;
  const buf = new Float64Array(COL_TILE * n);
  return shape.map((len, l) => {
    const out = new Float32Array(len);
    for (let base = 0; base < len; base += COL_TILE) {
      const m = Math.min(COL_TILE, len - base);
      for (let i = 0; i < n; i++) {
        const src = updates[i]!.weights[l]!;
        for (let k = 0, p = i; k < m; k++, p += n) buf[p] = src[base + k]!;
      }
      for (let k = 0; k < m; k++) out[base + k] = reduce(buf, k * n, n);
    }
    return out;
  });
}

/**
 * Coordinate-wise median (Yin et al. 2018, "Byzantine-Robust Distributed Learning: Towards Optimal Statistical
 * Rates"), unweighted; with even n the mean of the two middle values (as numpy/Flower).
 */
export function median(updates: readonly ClientUpdate[]): AggregateResult {
  const constraints = { requireNumExamples: false };
  const shape = structuralShape(updates, constraints);
  const buf = columnScratch(updates.length);
  const weights = shape.map((len, l) => {
    const out = new Float32Array(len);
    if (!medianRange(layerOf(updates, l), out, 0, len, buf)) throwFirstInvalid(updates, constraints);
    return out;
  });
  return { weights };
}

/**
 * Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate, k = floor(β·n) values cut from each tail and
 * the unweighted mean of the rest. Requires 0 ≤ β and 2k < n.
 */
export function trimmedMean(updates: readonly ClientUpdate[], beta: number): AggregateResult {
  const constraints = { requireNumExamples: false };
  const shape = structuralShape(updates, constraints);
  const k = trimCount(updates.length, beta);
  const buf = columnScratch(updates.length);
  const weights = shape.map((len, l) => {
    const out = new Float32Array(len);
    if (!trimmedMeanRange(layerOf(updates, l), k, out, 0, len, buf)) throwFirstInvalid(updates, constraints);
    return out;
  });
  return { weights };
}

/**
 * Matrix of squared L2 distances between all pairs of updates (all layers flattened together), float64,
 * row-major n×n. Tiled so each tile of every client is read from cache n times, not from memory.
 */
export function pairwiseSquaredDistances(
  updates: readonly ClientUpdate[],
  shape: readonly number[],
): Float64Array {
  const n = updates.length;
  const dist = new Float64Array(n * n);
  for (let l = 0; l < shape.length; l++) {
    const len = shape[l]!;
    const layers = updates.map((u) => u.weights[l]!);
    for (let base = 0; base < len; base += DIST_TILE) {
      const end = Math.min(len, base + DIST_TILE);
      for (let i = 0; i < n; i++) {
        const a = layers[i]!;
        let j = i + 1;
        // four partners at a time: each value of `a` is loaded once for four distances
        for (; j + 4 <= n; j += 4) {
          const b = layers[j]!;
          const c = layers[j + 1]!;
          const d = layers[j + 2]!;
          const e = layers[j + 3]!;
          let sb = 0;
          let sc = 0;
          let sd = 0;
          let se = 0;
          for (let k = base; k < end; k++) {
            const x = a[k]!;
            const tb = x - b[k]!;
            const tc = x - c[k]!;
            const td = x - d[k]!;
            const te = x - e[k]!;
            sb += tb * tb;
            sc += tc * tc;
            sd += td * td;
            se += te * te;
          }
          dist[i * n + j] = dist[i * n + j]! + sb;
          dist[i * n + j + 1] = dist[i * n + j + 1]! + sc;
          dist[i * n + j + 2] = dist[i * n + j + 2]! + sd;
          dist[i * n + j + 3] = dist[i * n + j + 3]! + se;
        }
        for (; j < n; j++) {
          const b = layers[j]!;
          let s = 0;
          for (let k = base; k < end; k++) {
            const t = a[k]! - b[k]!;
            s += t * t;
          }
          dist[i * n + j] = dist[i * n + j]! + s;
        }
      }
    }
  }
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) dist[j * n + i] = dist[i * n + j]!;
  return dist;
}

/**
 * Krum scores (Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent"):
 * score(i) = sum of squared distances to its max(1, p−f−2) nearest others within the pool (p = pool size).
 */
export function krumScores(dist: Float64Array, n: number, f: number, pool: readonly number[]): number[] {
  const p = pool.length;
  const closest = Math.max(1, p - f - 2);
  const row = new Float64Array(Math.max(0, p - 1));
  return pool.map((i) => {
    let r = 0;
    for (const j of pool) if (j !== i) row[r++] = dist[i * n + j]!;
    const take = Math.min(closest, r);
    if (take === 0) return 0;
    if (take < r) selectKth(row, 0, r - 1, take - 1);
    let s = 0;
    for (let k = 0; k < take; k++) s += row[k]!;
    return s;
  });
}

function checkF(f: number, n: number): void {
  if (!Number.isInteger(f) || f < 0)
    throw new InvalidParameterError(`f must be a non-negative integer, got ${String(f)}`);
  if (f >= n) throw new InvalidParameterError(`f=${f} must be smaller than the number of updates (${n})`);
}

/** Pool positions ordered by (score, index): the lowest score first, ties to the lowest index. */
function rankByScore(pool: readonly number[], scores: readonly number[]): number[] {
  return pool
    .map((idx, pos) => ({ idx, s: scores[pos]! }))
    .sort((x, y) => x.s - y.s || x.idx - y.idx)
    .map((e) => e.idx);
}

/**
 * Krum (Blanchard et al. 2017): returns the update with the lowest score as is (ties → lowest index).
 * The guarantee needs n > 2f+2; with fewer updates the neighbourhood is max(1, n−f−2) as in Flower.
 */
export function krum(updates: readonly ClientUpdate[], f: number): AggregateResult {
  const shape = assertValidUpdates(updates, { requireNumExamples: false });
  const n = updates.length;
  checkF(f, n);
  const dist = pairwiseSquaredDistances(updates, shape);
  const pool = updates.map((_, i) => i);
  const best = rankByScore(pool, krumScores(dist, n, f, pool))[0]!;
  return { weights: updates[best]!.weights.map((l) => l.slice()), selected: [best] };
}

/**
 * Multi-Krum (Blanchard et al. 2017): the m lowest-scoring updates (ties → lowest index), averaged weighted by
 * example count as FedAvg. `selected` lists them in ascending index order.
 */
export function multiKrum(updates: readonly ClientUpdate[], f: number, m: number): AggregateResult {
  const shape = assertValidUpdates(updates);
  const n = updates.length;
  checkF(f, n);
  if (!Number.isInteger(m) || m < 1 || m > n)
    throw new InvalidParameterError(`m must be an integer in [1, ${n}], got ${String(m)}`);
  const dist = pairwiseSquaredDistances(updates, shape);
  const pool = updates.map((_, i) => i);
  const chosen = rankByScore(pool, krumScores(dist, n, f, pool))
    .slice(0, m)
    .sort((a, b) => a - b);
  const subset = chosen.map((i) => updates[i]!);
  const coef = subset.map((u) => u.numExamples);
  const total = coef.reduce((a, b) => a + b, 0);
  return { weights: weightedSum(subset, coef, shape, 1 / total), selected: chosen };
}

/**
 * Bulyan (El Mhamdi, Guerraoui, Rouault 2018, "The Hidden Vulnerability of Distributed Learning in Byzantium"):
 * needs n ≥ 4f+3. θ = n−2f updates are chosen by repeated Krum (each winner leaves the pool); then per
 * coordinate the mean of the β = θ−2f chosen values closest to their coordinate-wise median.
 * `selected` lists the θ chosen clients in the order Krum picked them.
 */
export function bulyan(updates: readonly ClientUpdate[], f: number): AggregateResult {
  const shape = assertValidUpdates(updates, { requireNumExamples: false });
  const n = updates.length;
  checkF(f, n);
  if (n < 4 * f + 3) throw new InvalidParameterError(`Bulyan needs n >= 4f+3 updates; n=${n}, f=${f}`);
  const dist = pairwiseSquaredDistances(updates, shape);
  const theta = n - 2 * f;
  const beta = theta - 2 * f;
  let pool = updates.map((_, i) => i);
  const chosen: number[] = [];
  for (let t = 0; t < theta; t++) {
    const best = rankByScore(pool, krumScores(dist, n, f, pool))[0]!;
    chosen.push(best);
    pool = pool.filter((i) => i !== best);
  }
  const subset = chosen.map((i) => updates[i]!);
  const reduce = (col: Float64Array, off: number, len: number): number => {
    const hi = off + len - 1;
    insertionSort(col, off, hi); // θ is small; the β closest to the median form a window around it
    const mid = off + (len >> 1);
    const med = Math.fround(len & 1 ? col[mid]! : (col[mid - 1]! + col[mid]!) / 2);
    let lo = len & 1 ? mid : mid - 1; // window [lo, up) grows from the middle towards the closer side
    let up = lo + 1;
    while (up - lo < beta) {
      if (lo === off) up++;
      else if (up > hi) lo--;
      else if (Math.abs(col[lo - 1]! - med) <= Math.abs(col[up]! - med)) lo--;
      else up++;
    }
    let s = 0;
    for (let p = lo; p < up; p++) s += col[p]!;
    return s / beta;
  };
  return { weights: columnwise(subset, shape, reduce), selected: chosen };
}

/** a·b over all layers (float64). */
function dot(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let s = 0;
  for (let l = 0; l < a.length; l++) {
    const x = a[l]!;
    const y = b[l]!;
    for (let j = 0; j < x.length; j++) s += x[j]! * y[j]!;
  }
  return s;
}

/**
 * Centered clipping (Karimireddy, He, Jaggi 2021, "Learning from History for Byzantine Robust Optimization"):
 * v ← v + (1/n)·Σ clip_τ(xᵢ − v), repeated `iterations` times. The paper centres at the previous aggregate
 * (server momentum); pass it as `center`. Without one we start at the coordinate-wise median. Without `tau`
 * the radius is the median distance of the updates to the centre (so at least half of them are not clipped).
 */
export function centeredClipping(
  updates: readonly ClientUpdate[],
  options: { tau?: number; iterations?: number; center?: readonly Float32Array[] } = {},
): AggregateResult {
  const shape = assertValidUpdates(updates, { requireNumExamples: false });
  const n = updates.length;
  const iterations = options.iterations ?? 3;
  if (!Number.isInteger(iterations) || iterations < 1)
    throw new InvalidParameterError('iterations must be a positive integer');
  if (options.tau !== undefined && !(options.tau > 0 && Number.isFinite(options.tau))) {
    throw new InvalidParameterError('tau must be a positive finite number');
  }
  let v: Float64Array[];
  if (options.center) {
    const c = options.center;
    if (c.length !== shape.length || c.some((layer, l) => layer.length !== shape[l])) {
      throw new InvalidParameterError('center has a different shape than the updates');
    }
    if (!c.every((layer) => layer.every(Number.isFinite)))
      throw new InvalidParameterError('center contains NaN or Infinity');
    v = c.map((layer) => Float64Array.from(layer));
  } else {
    v = median(updates).weights.map((layer) => Float64Array.from(layer));
  }
  const distances = new Float64Array(n);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      const w = updates[i]!.weights;
      for (let l = 0; l < shape.length; l++) {
        const x = w[l]!;
        const c = v[l]!;
        for (let j = 0; j < x.length; j++) {
          const t = x[j]! - c[j]!;
          s += t * t;
        }
      }
      distances[i] = Math.sqrt(s);
    }
    let tau = options.tau;
    if (tau === undefined) {
      const sorted = Float64Array.from(distances).sort();
      tau = sorted[(n - 1) >> 1]!;
    }
    const step = v.map((layer) => new Float64Array(layer.length));
    for (let i = 0; i < n; i++) {
      const d = distances[i]!;
      const scale = d > tau && d > 0 ? tau / d : 1;
      const w = updates[i]!.weights;
      for (let l = 0; l < shape.length; l++) {
        const x = w[l]!;
        const c = v[l]!;
        const s = step[l]!;
        for (let j = 0; j < x.length; j++) s[j] = s[j]! + scale * (x[j]! - c[j]!);
      }
    }
    for (let l = 0; l < shape.length; l++) {
      const c = v[l]!;
      const s = step[l]!;
      for (let j = 0; j < c.length; j++) c[j] = c[j]! + s[j]! / n;
    }
  }
  return { weights: v.map((layer) => Float32Array.from(layer)) };
}

/**
 * FLTrust (Cao, Fang, Liu, Gong 2021, "FLTrust: Byzantine-robust Federated Learning via Trust Bootstrapping"):
 * trust score TSᵢ = ReLU(cos(gᵢ, g₀)) against the server's root update g₀; each update is rescaled to ‖g₀‖;
 * the result is Σ TSᵢ·(‖g₀‖/‖gᵢ‖)·gᵢ / Σ TSᵢ. Inputs are updates (deltas), not weights. If no update is
 * trusted the result is the zero update. `selected` lists the clients with a positive trust score.
 */
export function flTrust(
  updates: readonly ClientUpdate[],
  rootUpdate: readonly Float32Array[],
): AggregateResult {
  const shape = assertValidUpdates(updates, { requireNumExamples: false });
  if (rootUpdate.length !== shape.length || rootUpdate.some((l, i) => l.length !== shape[i])) {
    throw new InvalidParameterError('root update has a different shape than the client updates');
  }
  if (!rootUpdate.every((l) => l.every(Number.isFinite)))
    throw new InvalidParameterError('root update contains NaN or Infinity');
  const rootNorm = l2Norm(rootUpdate);
  const coef: number[] = [];
  const trusted: number[] = [];
  let trustSum = 0;
  updates.forEach((u, i) => {
    const norm = l2Norm(u.weights);
    const cos = norm > 0 && rootNorm > 0 ? dot(u.weights, rootUpdate) / (norm * rootNorm) : 0;
    const ts = Math.max(0, cos);
    if (ts > 0) {
      trusted.push(i);
      coef.push((ts * rootNorm) / norm);
      trustSum += ts;
    }
  });
  if (trusted.length === 0) return { weights: shape.map((len) => new Float32Array(len)), selected: [] };
  const subset = trusted.map((i) => updates[i]!);
  return { weights: weightedSum(subset, coef, shape, 1 / trustSum), selected: trusted };
}

/** Scales an update so that its L2 norm is at most `bound` (a copy; norm bounding of Sun et al. 2019). */
export function boundNorm(weights: readonly Float32Array[], bound: number): Weights {
  if (!(bound > 0 && Number.isFinite(bound)))
    throw new InvalidParameterError('norm bound must be a positive finite number');
  const norm = l2Norm(weights);
  const scale = norm > bound ? bound / norm : 1;
  return weights.map((l) => (scale === 1 ? l.slice() : Float32Array.from(l, (x) => x * scale)));
}

/**
 * Norm bounding (Sun, Kairouz, Suresh, McMahan 2019, "Can You Really Backdoor Federated Learning?"): every
 * update is scaled down to L2 norm ≤ `bound`, then averaged weighted by example count. Inputs are deltas.
 */
export function normBoundedMean(updates: readonly ClientUpdate[], bound: number): AggregateResult {
  const shape = assertValidUpdates(updates);
  if (!(bound > 0 && Number.isFinite(bound)))
    throw new InvalidParameterError('norm bound must be a positive finite number');
  const coef = updates.map((u) => {
    const norm = l2Norm(u.weights);
    return u.numExamples * (norm > bound ? bound / norm : 1);
  });
  const total = updates.reduce((a, u) => a + u.numExamples, 0);
  return { weights: weightedSum(updates, coef, shape, 1 / total) };
}
