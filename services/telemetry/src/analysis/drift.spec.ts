import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FeatureSummary } from '@edgefl/contracts';
import { announceSkip, codeOf } from '@edgefl/testing';
import {
  driftBetween,
  histogram,
  klDivergence,
  mergeSummaries,
  psi,
  quantileEdges,
  smoothedShares,
} from './drift.js';
import { AnalysisError } from './errors.js';

const nonEmpty = (c: number[]) => c.some((x) => x > 0);

/** Two count vectors over the same bins, neither all zero. */
const pairOf = fc
  .integer({ min: 2, max: 20 })
  .chain((k) =>
    fc.tuple(
      fc.array(fc.nat({ max: 10_000 }), { minLength: k, maxLength: k }),
      fc.array(fc.nat({ max: 10_000 }), { minLength: k, maxLength: k }),
    ),
  )
  .filter(([a, b]) => nonEmpty(a) && nonEmpty(b));

describe('psi', () => {
  it('matches a hand computation: 10 bins, the classic credit-scorecard example shape', () => {
    const expected = [10, 10, 10, 10, 10, 10, 10, 10, 10, 10];
    const actual = [5, 8, 9, 10, 10, 11, 11, 12, 12, 12];
    const e = expected.map((x) => x / 100);
    const a = actual.map((x) => x / 100);
    const want = e.reduce((s, ei, i) => s + (a[i]! - ei) * Math.log(a[i]! / ei), 0);
    expect(psi(expected, actual)).toBeCloseTo(want, 12);
    expect(want).toBeCloseTo(0.05302, 5); // python3: sum((a-e)*log(a/e)) over the same shares
  });

  it('is 0 on identical shares, scale-free, symmetric, non-negative, and equals KL(a‖e) + KL(e‖a) (property)', () => {
    fc.assert(
      fc.property(pairOf, fc.integer({ min: 1, max: 50 }), ([e, a], scale) => {
        const p = psi(e, a);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(Number.isFinite(p)).toBe(true);
        expect(psi(e, e)).toBeCloseTo(0, 12);
        expect(
          psi(
            e.map((x) => x * scale),
            a,
          ),
        ).toBeCloseTo(p, 9);
        expect(psi(a, e)).toBeCloseTo(p, 9);
        expect(klDivergence(a, e) + klDivergence(e, a)).toBeCloseTo(p, 9);
      }),
      { numRuns: 300, seed: 20261207 },
    );
  });

  it('smooths empty bins to a finite value that grows as epsilon shrinks', () => {
    const e = [50, 50, 0];
    const a = [40, 40, 20];
    const coarse = psi(e, a, { epsilon: 1e-2 });
    const fine = psi(e, a, { epsilon: 1e-6 });
    expect(Number.isFinite(fine)).toBe(true);
    expect(fine).toBeGreaterThan(coarse);
    expect(smoothedShares([1, 0, 0, 0], { epsilon: 0.01 }).reduce((s, x) => s + x, 0)).toBeCloseTo(1, 12);
    // no share below epsilon: the shares are untouched
    expect(smoothedShares([1, 3])).toEqual([0.25, 0.75]);
  });

  it('flags a shifted normal sample and not a resample (quantile bins of the baseline)', () => {
    const rand = mulberry32(7);
    const normal = (mu: number) => mu + Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    const baseline = Array.from({ length: 20_000 }, () => normal(0));
    const same = Array.from({ length: 20_000 }, () => normal(0));
    const shifted = Array.from({ length: 20_000 }, () => normal(0.5));
    const edges = quantileEdges(baseline, 10);
    const b = histogram(baseline, edges);
    expect(psi(b, histogram(same, edges))).toBeLessThan(0.01);
    // PSI of N(0,1) vs N(0.5,1) tends to Jeffreys' divergence μ² = 0.25 as bins refine; 10 bins see most of it
    expect(psi(b, histogram(shifted, edges))).toBeGreaterThan(0.2);
    expect(psi(b, histogram(shifted, edges))).toBeLessThan(0.26);
  });

  it('refuses bad input with a coded AnalysisError', () => {
    expect(codeOf(AnalysisError, () => psi([1, 2], [1, 2, 3]))).toBe('LENGTH_MISMATCH');
    expect(codeOf(AnalysisError, () => psi([], []))).toBe('EMPTY');
    expect(codeOf(AnalysisError, () => psi([0, 0], [1, 1]))).toBe('EMPTY');
    expect(codeOf(AnalysisError, () => psi([1, -1], [1, 1]))).toBe('NOT_FINITE');
    expect(codeOf(AnalysisError, () => psi([1, Number.NaN], [1, 1]))).toBe('NOT_FINITE');
    expect(codeOf(AnalysisError, () => psi([1, 1], [1, 1], { epsilon: 0 }))).toBe('BAD_OPTION');
    expect(codeOf(AnalysisError, () => psi([1, 1], [1, 1], { epsilon: 0.5 }))).toBe('BAD_OPTION');
    expect(codeOf(AnalysisError, () => klDivergence([1], [Infinity]))).toBe('NOT_FINITE');
  });
});

describe('klDivergence', () => {
  it('is ≥ 0, 0 on identical shares and not symmetric in general', () => {
    fc.assert(
      fc.property(pairOf, ([p, q]) => {
        expect(klDivergence(p, q)).toBeGreaterThanOrEqual(0);
        expect(klDivergence(p, p)).toBeCloseTo(0, 12);
      }),
      { numRuns: 200, seed: 20261208 },
    );
    expect(klDivergence([9, 1], [5, 5])).not.toBeCloseTo(klDivergence([5, 5], [9, 1]), 3);
    // by hand: KL([0.9, 0.1] ‖ [0.5, 0.5]) = 0.9 ln 1.8 + 0.1 ln 0.2
    expect(klDivergence([9, 1], [5, 5])).toBeCloseTo(0.9 * Math.log(1.8) + 0.1 * Math.log(0.2), 12);
  });
});

// scipy.stats.entropy(p, q) is KL(p‖q) in nats over normalised p and q: the oracle for klDivergence.
const python = '/usr/bin/python3';
const scipyPresent = spawnSync(python, ['-c', 'import scipy.stats, numpy'], { stdio: 'ignore' }).status === 0;
if (!scipyPresent)
  announceSkip('telemetry drift scipy oracle', `${python} with scipy and numpy is not installed`);

describe.skipIf(!scipyPresent)('klDivergence against scipy.stats.entropy', () => {
  const scipy = (pairs: Array<[number[], number[]]>): number[] => {
    const script =
      'import json, sys\nfrom scipy.stats import entropy\n' +
      'print(json.dumps([float(entropy(p, q)) for p, q in json.load(sys.stdin)]))';
    const run = spawnSync(python, ['-c', script], { input: JSON.stringify(pairs), encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`python failed: ${run.stderr}`);
    return JSON.parse(run.stdout) as number[];
  };

  // counts of 1,000..100,000 over ≤ 30 bins: every share is ≥ 3.4e-4 > epsilon, so no smoothing applies
  it('agrees on counts without empty bins (no smoothing applies) and on smoothed shares', () => {
    const cases = fc.sample(
      fc
        .integer({ min: 2, max: 30 })
        .chain((k) =>
          fc.tuple(
            fc.array(fc.integer({ min: 1_000, max: 100_000 }), { minLength: k, maxLength: k }),
            fc.array(fc.integer({ min: 1_000, max: 100_000 }), { minLength: k, maxLength: k }),
          ),
        ),
      { numRuns: 200, seed: 20261209 },
    );
    // with empty bins: scipy would say inf; ours smooths, and scipy on the smoothed shares must agree
    const sparse: Array<[number[], number[]]> = [
      [
        [0, 5, 10, 0],
        [3, 0, 7, 1],
      ],
      [
        [100, 0, 0],
        [1, 1, 1],
      ],
    ];
    const smoothed = sparse.map(([p, q]) => [smoothedShares(p), smoothedShares(q)] as [number[], number[]]);
    const want = scipy([...cases, ...smoothed]);
    const got = [...cases, ...sparse].map(([p, q]) => klDivergence(p, q));
    got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(1e-12 + 1e-9 * want[i]!));
  });
});

describe('histogram and quantileEdges', () => {
  it('counts left-closed bins, the last one closed, outliers in the end bins', () => {
    expect(histogram([0, 0.5, 1, 1.5, 2, 2, -7, 9], [0, 1, 2])).toEqual([3, 5]);
    expect(histogram([], [0, 1])).toEqual([0]);
  });

  it('every value counts exactly once (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e3, max: 1e3, noNaN: true }), { maxLength: 200 }),
        fc.uniqueArray(fc.integer({ min: -100, max: 100 }), { minLength: 2, maxLength: 12 }),
        (values, raw) => {
          const h = histogram(
            values,
            [...raw].sort((a, b) => a - b),
          );
          expect(h.reduce((s, c) => s + c, 0)).toBe(values.length);
        },
      ),
      { numRuns: 200, seed: 20261210 },
    );
  });

  it('gives equal-frequency edges (numpy type-7 quantiles), drops duplicates, and handles a constant sample', () => {
    const values = Array.from({ length: 101 }, (_, i) => i);
    expect(quantileEdges(values, 4)).toEqual([0, 25, 50, 75, 100]);
    expect(histogram(values, quantileEdges(values, 4))).toEqual([25, 25, 25, 26]);
    expect(quantileEdges([1, 1, 1, 1, 2], 4)).toEqual([1, 2]);
    const constant = quantileEdges([3, 3, 3], 5);
    expect(constant.length).toBe(4);
    expect(histogram([3, 3, 3], constant)).toEqual([0, 3, 0]);
    expect(histogram([2.5, 3.5], constant)).toEqual([1, 0, 1]);
  });

  it('edges are strictly increasing whatever the sample (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 300 }),
        fc.integer({ min: 1, max: 50 }),
        (values, bins) => {
          const edges = quantileEdges(values, bins);
          expect(edges.length).toBeGreaterThanOrEqual(2);
          expect(edges.length).toBeLessThanOrEqual(Math.max(bins + 1, 4));
          for (let i = 1; i < edges.length; i++) expect(edges[i]!).toBeGreaterThan(edges[i - 1]!);
        },
      ),
      { numRuns: 200, seed: 20261211 },
    );
  });

  it('refuses bad edges, bins and values', () => {
    expect(codeOf(AnalysisError, () => histogram([1], [1]))).toBe('BAD_EDGES');
    expect(codeOf(AnalysisError, () => histogram([1], [1, 1]))).toBe('BAD_EDGES');
    expect(codeOf(AnalysisError, () => histogram([1], [0, Number.POSITIVE_INFINITY]))).toBe('BAD_EDGES');
    expect(codeOf(AnalysisError, () => histogram([Number.NaN], [0, 1]))).toBe('NOT_FINITE');
    expect(codeOf(AnalysisError, () => quantileEdges([], 4))).toBe('EMPTY');
    expect(codeOf(AnalysisError, () => quantileEdges([1], 0))).toBe('BAD_OPTION');
    expect(codeOf(AnalysisError, () => quantileEdges([1, Number.NaN], 2))).toBe('NOT_FINITE');
  });
});

const summary = (over: Partial<FeatureSummary> = {}): FeatureSummary => ({
  name: 'amount',
  count: 1000,
  mean: 0,
  std: 1,
  min: -3,
  max: 3,
  bins: null,
  binEdges: null,
  ...over,
});

describe('driftBetween', () => {
  it('uses the bins when both summaries have them over the same edges', () => {
    const edges = [-3, -1, 0, 1, 3];
    const d = driftBetween(
      summary({ bins: [160, 340, 340, 160], binEdges: edges }),
      summary({ bins: [100, 250, 350, 300], binEdges: edges }),
    );
    expect(d.method).toBe('bins');
    expect(d.psi).toBeCloseTo(psi([160, 340, 340, 160], [100, 250, 350, 300]), 12);
    expect(d.kl).toBeCloseTo(klDivergence([100, 250, 350, 300], [160, 340, 340, 160]), 12);
    expect(d).toMatchObject({ feature: 'amount', baselineCount: 1000, currentCount: 1000 });
  });

  it('falls back to the normal approximation from mean and std when edges differ or bins are missing', () => {
    const base = summary({ bins: [1, 1], binEdges: [0, 1, 2] });
    const cur = summary({ mean: 0.5, bins: [1, 1], binEdges: [0, 1, 3] });
    const d = driftBetween(base, cur);
    expect(d.method).toBe('normal');
    // equal stds: KL both ways is Δμ²/2σ², Jeffreys' J = Δμ²/σ²
    expect(d.kl).toBeCloseTo(0.125, 12);
    expect(d.psi).toBeCloseTo(0.25, 12);
    // a wider current distribution: closed form
    const wide = driftBetween(summary(), summary({ std: 2, bins: null, binEdges: null }));
    expect(wide.kl).toBeCloseTo(Math.log(1 / 2) + 4 / 2 - 0.5, 12);
    expect(wide.psi).toBeCloseTo(wide.kl + (Math.log(2) + 1 / 8 - 0.5), 12);
    // a constant feature stays finite
    const flat = driftBetween(summary({ std: 0 }), summary({ std: 0, mean: 1 }));
    expect(Number.isFinite(flat.psi)).toBe(true);
    expect(flat.psi).toBeGreaterThan(1);
    expect(driftBetween(summary(), summary()).psi).toBe(0);
  });

  it('refuses summaries of different features, mismatched bins and impossible values', () => {
    expect(codeOf(AnalysisError, () => driftBetween(summary(), summary({ name: 'hour' })))).toBe(
      'FEATURE_MISMATCH',
    );
    expect(
      codeOf(AnalysisError, () => driftBetween(summary({ bins: [1], binEdges: [0, 1, 2] }), summary())),
    ).toBe('LENGTH_MISMATCH');
    expect(codeOf(AnalysisError, () => driftBetween(summary({ bins: [1] }), summary()))).toBe(
      'LENGTH_MISMATCH',
    );
    expect(codeOf(AnalysisError, () => driftBetween(summary({ std: -1 }), summary()))).toBe('NOT_FINITE');
    expect(codeOf(AnalysisError, () => driftBetween(summary({ mean: Number.NaN }), summary()))).toBe(
      'NOT_FINITE',
    );
    expect(codeOf(AnalysisError, () => driftBetween(summary({ count: 0 }), summary()))).toBe('EMPTY');
  });
});

describe('mergeSummaries', () => {
  it('pools count, mean, population std, min, max and bins exactly as one pass over all values would (property)', () => {
    const edges = [-10, -1, 0, 1, 10];
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.double({ min: -20, max: 20, noNaN: true }), { minLength: 1, maxLength: 50 }), {
          minLength: 1,
          maxLength: 8,
        }),
        (parts) => {
          const summarise = (v: number[]): FeatureSummary => {
            const mean = v.reduce((a, b) => a + b, 0) / v.length;
            return {
              name: 'x',
              count: v.length,
              mean,
              std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length),
              min: Math.min(...v),
              max: Math.max(...v),
              bins: histogram(v, edges),
              binEdges: edges,
            };
          };
          const merged = mergeSummaries(parts.map(summarise));
          const all = summarise(parts.flat());
          expect(merged.count).toBe(all.count);
          expect(merged.mean).toBeCloseTo(all.mean, 9);
          expect(merged.std).toBeCloseTo(all.std, 9);
          expect([merged.min, merged.max, merged.bins]).toEqual([all.min, all.max, all.bins]);
        },
      ),
      { numRuns: 200, seed: 20261212 },
    );
  });

  it('drops the bins when edges differ, refuses other features and an empty list', () => {
    const a = summary({ bins: [1, 1], binEdges: [0, 1, 2] });
    const b = summary({ bins: [1, 1], binEdges: [0, 1, 3] });
    expect(mergeSummaries([a, b])).toMatchObject({ count: 2000, bins: null, binEdges: null });
    expect(codeOf(AnalysisError, () => mergeSummaries([a, summary({ name: 'hour' })]))).toBe(
      'FEATURE_MISMATCH',
    );
    expect(codeOf(AnalysisError, () => mergeSummaries([]))).toBe('EMPTY');
  });
});

/** A small seeded PRNG (Mulberry32) for reproducible samples. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
