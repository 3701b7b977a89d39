import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { selectKth, selectTails } from './select.js';

// values with many ties (small integers) and signed zeros avoided on purpose: only order matters here
const column = fc.array(fc.integer({ min: -20, max: 20 }), { minLength: 1, maxLength: 220 });

describe('selection', () => {
  it('selectKth puts the k-th smallest at k, smaller values before and larger after', () => {
    fc.assert(
      fc.property(column, fc.nat(), fc.nat({ max: 5 }), (values, kSeed, pad) => {
        const a = Float64Array.from([...Array<number>(pad).fill(99), ...values]);
        const lo = pad;
        const hi = a.length - 1;
        const k = lo + (kSeed % values.length);
        const sorted = [...values].sort((x, y) => x - y);
        selectKth(a, lo, hi, k);
        expect(a[k]).toBe(sorted[k - lo]);
        for (let i = lo; i < k; i++) expect(a[i]).toBeLessThanOrEqual(a[k]!);
        for (let i = k + 1; i <= hi; i++) expect(a[i]).toBeGreaterThanOrEqual(a[k]!);
        expect([...a.subarray(lo)].sort((x, y) => x - y)).toEqual(sorted);
        expect([...a.subarray(0, lo)]).toEqual(Array<number>(pad).fill(99));
      }),
      { numRuns: 300 },
    );
  });

  it('selectTails moves the cut smallest to the start and the cut largest to the end', () => {
    fc.assert(
      fc.property(column, fc.nat(), (values, cutSeed) => {
        const n = values.length;
        const cut = cutSeed % (Math.floor((n - 1) / 2) + 1);
        const a = Float32Array.from(values);
        const sorted = [...values].sort((x, y) => x - y);
        selectTails(a, 0, n - 1, cut);
        const head = [...a.subarray(0, cut)].sort((x, y) => x - y);
        const middle = [...a.subarray(cut, n - cut)].sort((x, y) => x - y);
        const tail = [...a.subarray(n - cut)].sort((x, y) => x - y);
        expect(head).toEqual(sorted.slice(0, cut));
        expect(middle).toEqual(sorted.slice(cut, n - cut));
        expect(tail).toEqual(sorted.slice(n - cut));
      }),
      { numRuns: 300 },
    );
  });
});
