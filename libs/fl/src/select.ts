/**
 * In-place selection on a Float64Array/Float32Array range (Hoare partition, median-of-three pivot).
 * Written by hand: it runs once per coordinate on ~100 values, where a generic sort costs 3–5× more.
 * After `selectKth(a, lo, hi, k)`, a[k] holds the value it would have if a[lo..hi] were sorted, with
 * a[lo..k-1] ≤ a[k] ≤ a[k+1..hi].
 */
export function selectKth(a: Float64Array | Float32Array, lo: number, hi: number, k: number): void {
  while (hi > lo) {
    if (hi - lo < 16) {
      insertionSort(a, lo, hi);
      return;
    }
    const mid = (lo + hi) >>> 1;
    // median of three into a[mid]
    if (a[mid]! < a[lo]!) swap(a, mid, lo);
    if (a[hi]! < a[lo]!) swap(a, hi, lo);
    if (a[hi]! < a[mid]!) swap(a, hi, mid);
    const pivot = a[mid]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

export function insertionSort(a: Float64Array | Float32Array, lo: number, hi: number): void {
  for (let i = lo + 1; i <= hi; i++) {
    const v = a[i]!;
    let j = i - 1;
    while (j >= lo && a[j]! > v) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = v;
  }
}

function swap(a: Float64Array | Float32Array, i: number, j: number): void {
  const t = a[i]!;
  a[i] = a[j]!;
  a[j] = t;
}

/** Smallest value of a[lo..hi]. */
export function minOf(a: Float64Array | Float32Array, lo: number, hi: number): number {
  let m = a[lo]!;
  for (let i = lo + 1; i <= hi; i++) if (a[i]! < m) m = a[i]!;
  return m;
}

/** Largest value of a[lo..hi]. */
export function maxOf(a: Float64Array | Float32Array, lo: number, hi: number): number {
  let m = a[lo]!;
  for (let i = lo + 1; i <= hi; i++) if (a[i]! > m) m = a[i]!;
  return m;
}
