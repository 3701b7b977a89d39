// Coordinate-range kernels shared by the single-threaded rules and the worker threads of `AggregationPool`:
// both call the same code on the same coordinates in the same order, so their results are bit-for-bit equal.
// Erasable TypeScript only (the pool's workers load this file with Node's type stripping when run from source).
import { maxOf, selectKth, selectTails } from './select.js';

/** Coordinates per transposed tile for the coordinate-wise rules (n·TILE float64 = 800 KB for n = 100: in L2). */
export const COL_TILE = 1024;
/** Coordinates per FedAvg tile: a 32 KB float64 accumulator stays in L1 while every client is added to it. */
export const SUM_TILE = 4096;

/**
 * Copies coordinates [base, base+m) of every client into `buf`, column-major (coordinate k's n values at
 * buf[k·n .. k·n+n-1], in client order). Returns NaN when any copied value is NaN or ±Infinity, else 0.
 */
function gather(cols: readonly Float32Array[], base: number, m: number, buf: Float64Array): number {
  const n = cols.length;
  let check = 0;
  for (let i = 0; i < n; i++) {
    const src = cols[i]!;
    for (let k = 0, p = i, j = base; k < m; k++, p += n, j++) {
      const v = src[j]!;
      buf[p] = v;
      check += v - v; // NaN - NaN and Inf - Inf are NaN, and NaN stays
    }
  }
  return check;
}

/** A float64 scratch big enough for one transposed tile of n clients. */
export function columnScratch(n: number): Float64Array {
  return new Float64Array(COL_TILE * n);
}

/**
 * Coordinate-wise median of coordinates [from, to) of one layer (`cols[i]` = that layer of client i) into
 * out[from..to); with even n the mean of the two middle values. Returns false (output undefined) when an input
 * value in the range is NaN or ±Infinity.
 */
export function medianRange(
  cols: readonly Float32Array[],
  out: Float32Array,
  from: number,
  to: number,
  buf: Float64Array,
): boolean {
  const n = cols.length;
  const half = n >> 1;
  const odd = (n & 1) === 1;
  for (let base = from; base < to; base += COL_TILE) {
    const m = Math.min(COL_TILE, to - base);
    if (gather(cols, base, m, buf) !== 0) return false;
    for (let k = 0, off = 0; k < m; k++, off += n) {
      const mid = off + half;
      selectKth(buf, off, off + n - 1, mid);
      out[base + k] = odd ? buf[mid]! : (maxOf(buf, off, mid - 1) + buf[mid]!) / 2;
    }
  }
  return true;
}

/**
 * Coordinate-wise trimmed mean of [from, to) of one layer: per coordinate the k smallest and k largest of the n
 * values are cut and the rest averaged (float64 sum, so the order of the kept values hardly matters: the
 * result can differ from a sorted-order sum only in float64 rounding, far below float32). Requires 2k < n. Returns false on a non-finite input value.
 */
export function trimmedMeanRange(
  cols: readonly Float32Array[],
  cut: number,
  out: Float32Array,
  from: number,
  to: number,
  buf: Float64Array,
): boolean {
  const n = cols.length;
  const keep = n - 2 * cut;
  for (let base = from; base < to; base += COL_TILE) {
    const m = Math.min(COL_TILE, to - base);
    if (gather(cols, base, m, buf) !== 0) return false;
    for (let k = 0, off = 0; k < m; k++, off += n) {
      const hi = off + n - 1;
      selectTails(buf, off, hi, cut);
      let s = 0;
      for (let p = off + cut, end = hi - cut; p <= end; p++) s += buf[p]!;
      out[base + k] = s / keep;
    }
  }
  return true;
}

/**
 * out[j] = outScale · Σᵢ coef[i]·cols[i][j] for j in [from, to), accumulated in float64 in client order (so
 * the result does not depend on how the range is split). Ten clients per pass over a tile: fewer loads and
 * stores of the accumulator per input value (ten measured ~5 % faster than eight; sixteen run out of registers);
 * the sum order stays ((acc + c₀x₀) + c₁x₁) + … either way.
 * Returns false when a sum is not finite (a NaN/Inf input, or an overflow from absurd coefficients).
 */
export function weightedSumRange(
  cols: readonly Float32Array[],
  coef: ArrayLike<number>,
  outScale: number,
  out: Float32Array,
  from: number,
  to: number,
  acc: Float64Array,
): boolean {
  const n = cols.length;
  for (let base = from; base < to; base += SUM_TILE) {
    const m = Math.min(SUM_TILE, to - base);
    acc.fill(0, 0, m);
    let i = 0;
    for (; i + 10 <= n; i += 10) {
      const a = cols[i]!;
      const b = cols[i + 1]!;
      const c = cols[i + 2]!;
      const d = cols[i + 3]!;
      const e = cols[i + 4]!;
      const f = cols[i + 5]!;
      const g = cols[i + 6]!;
      const h = cols[i + 7]!;
      const p = cols[i + 8]!;
      const q = cols[i + 9]!;
      const ca = coef[i]!;
      const cb = coef[i + 1]!;
      const cc = coef[i + 2]!;
      const cd = coef[i + 3]!;
      const ce = coef[i + 4]!;
      const cf = coef[i + 5]!;
      const cg = coef[i + 6]!;
      const ch = coef[i + 7]!;
      const cp = coef[i + 8]!;
      const cq = coef[i + 9]!;
      for (let k = 0, j = base; k < m; k++, j++) {
        acc[k] =
          acc[k]! +
          ca * a[j]! +
          cb * b[j]! +
          cc * c[j]! +
          cd * d[j]! +
          ce * e[j]! +
          cf * f[j]! +
          cg * g[j]! +
          ch * h[j]! +
          cp * p[j]! +
          cq * q[j]!;
      }
    }
    for (; i + 4 <= n; i += 4) {
      const a = cols[i]!;
      const b = cols[i + 1]!;
      const c = cols[i + 2]!;
      const d = cols[i + 3]!;
      const ca = coef[i]!;
      const cb = coef[i + 1]!;
      const cc = coef[i + 2]!;
      const cd = coef[i + 3]!;
      for (let k = 0, j = base; k < m; k++, j++) {
        acc[k] = acc[k]! + ca * a[j]! + cb * b[j]! + cc * c[j]! + cd * d[j]!;
      }
    }
    for (; i < n; i++) {
      const a = cols[i]!;
      const ca = coef[i]!;
      for (let k = 0, j = base; k < m; k++, j++) acc[k] = acc[k]! + ca * a[j]!;
    }
    let check = 0;
    for (let k = 0, j = base; k < m; k++, j++) {
      const v = acc[k]!;
      check += v - v;
      out[j] = v * outScale;
    }
    if (check !== 0) return false;
  }
  return true;
}
