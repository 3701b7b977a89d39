import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidParameterError, InvalidUpdateError } from './errors.js';
import { createFedAvgAccumulator, createSumAccumulator, fedAvg } from './fedavg.js';
import { createSeededUniform, createNormal } from './rng.js';
import {
  boundNorm,
  bulyan,
  centeredClipping,
  flTrust,
  krum,
  median,
  multiKrum,
  normBoundedMean,
  trimmedMean,
} from './robust.js';
import { bucketAssignment, createRule, withBucketing } from './rules.js';
import type { ClientUpdate } from './types.js';
import { l2Norm, screenUpdates } from './validate.js';

function randomUpdates(n: number, shape: number[], seed: number, scale = 1, shift = 0): ClientUpdate[] {
  const normal = createNormal(createSeededUniform(seed));
  return Array.from({ length: n }, (_, i) => ({
    numExamples: 1 + ((i * 37 + seed) % 50),
    weights: shape.map((len) => Float32Array.from({ length: len }, () => normal() * scale + shift)),
  }));
}

const close = (a: readonly Float32Array[], b: readonly Float32Array[], tol = 1e-5): void => {
  expect(a.length).toBe(b.length);
  a.forEach((l, i) =>
    l.forEach((v, j) => expect(Math.abs(v - b[i]![j]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(v)))),
  );
};

const rules = [
  createRule('fedavg'),
  createRule('median'),
  createRule('trimmed-mean', { beta: 0.2 }),
  createRule('krum', { f: 2 }),
  createRule('multi-krum', { f: 2, m: 4 }),
  // f=3 (n ≥ 15): with f ≤ 2 the last repeated-Krum pools score by the single nearest neighbour, so two
  // mutual nearest neighbours tie and the lowest index wins, which is order-dependent by design.
  createRule('bulyan', { f: 3 }),
  createRule('centered-clipping', { tau: 1 }),
];

describe('properties', () => {
  it('every rule is invariant under a permutation of the clients', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 15, max: 18 }), (seed, n) => {
        const updates = randomUpdates(n, [7, 5], seed);
        const order = updates.map((_, i) => i).reverse();
        const shuffled = order.map((i) => updates[i]!);
        for (const rule of rules) {
          const a = rule.aggregate(updates);
          const b = rule.aggregate(shuffled);
          close(a.weights, b.weights, 1e-5);
          if (a.selected)
            expect([...b.selected!.map((i) => order[i]!)].sort((x, y) => x - y)).toEqual(
              [...a.selected].sort((x, y) => x - y),
            );
        }
      }),
      { numRuns: 20 },
    );
  });

  it('the aggregate of identical updates is that update', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 15, max: 17 }), (seed, n) => {
        const [one] = randomUpdates(1, [9, 4], seed);
        const updates = Array.from({ length: n }, (_, i) => ({ numExamples: i + 1, weights: one!.weights }));
        for (const rule of rules)
          close(rule.aggregate(updates).weights, one!.weights as Float32Array[], 1e-6);
      }),
      { numRuns: 20 },
    );
  });

  it('robust rules ignore f far-away attackers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e6 }), (seed) => {
        const f = 2;
        const honest = randomUpdates(9, [20, 10], seed, 0.1, 1);
        const attackers = randomUpdates(f, [20, 10], seed + 1, 10, 1000);
        const all = [...attackers, ...honest];
        for (const rule of [
          createRule('median'),
          createRule('trimmed-mean', { beta: 0.2 }),
          createRule('krum', { f }),
          createRule('multi-krum', { f, m: 5 }),
          createRule('bulyan', { f }),
          createRule('centered-clipping', { iterations: 5 }),
        ]) {
          const out = rule.aggregate(all);
          for (const layer of out.weights) for (const v of layer) expect(Math.abs(v - 1)).toBeLessThan(1);
          if (out.selected) for (const i of out.selected) expect(i).toBeGreaterThanOrEqual(f);
        }
        // FedAvg is not robust: the same attackers move it far away
        expect(Math.abs(fedAvg(all).weights[0]![0]! - 1)).toBeGreaterThan(10);
      }),
      { numRuns: 15 },
    );
  });
});

describe('semantics', () => {
  it('FedAvg weights by example count', () => {
    const u = [
      { numExamples: 1, weights: [Float32Array.of(0, 10)] },
      { numExamples: 3, weights: [Float32Array.of(4, 2)] },
    ];
    expect([...fedAvg(u).weights[0]!]).toEqual([3, 4]);
  });

  it('median and trimmed mean on a small column', () => {
    const u = [5, 1, 4, 2, 100].map((v) => ({ numExamples: 1, weights: [Float32Array.of(v)] }));
    expect(median(u).weights[0]![0]).toBe(4);
    expect(median(u.slice(0, 4)).weights[0]![0]).toBe(3);
    expect(trimmedMean(u, 0.2).weights[0]![0]).toBeCloseTo((2 + 4 + 5) / 3, 6);
    expect(() => trimmedMean(u, 0.5)).toThrow(InvalidParameterError);
  });

  it('median handles long columns (the quickselect path) like a sort', () => {
    const u = randomUpdates(61, [300], 7);
    const got = median(u).weights[0]!;
    for (let j = 0; j < 300; j += 37) {
      const col = u.map((x) => x.weights[0]![j]!).sort((a, b) => a - b);
      expect(got[j]).toBe(col[30]);
    }
    const even = median(u.slice(0, 60)).weights[0]!;
    const col = u
      .slice(0, 60)
      .map((x) => x.weights[0]![5]!)
      .sort((a, b) => a - b);
    expect(even[5]).toBe(Math.fround((col[29]! + col[30]!) / 2));
  });

  it('Krum breaks ties towards the lowest index and returns a copy', () => {
    const same = Float32Array.of(1, 1);
    const u = [0, 1, 2, 3, 4].map(() => ({ numExamples: 1, weights: [same] }));
    const out = krum(u, 1);
    expect(out.selected).toEqual([0]);
    expect(out.weights[0]).not.toBe(same);
    expect(multiKrum(u, 1, 3).selected).toEqual([0, 1, 2]);
  });

  it('Bulyan refuses n < 4f+3', () => {
    expect(() => bulyan(randomUpdates(10, [3], 1), 2)).toThrow(InvalidParameterError);
  });

  it('FLTrust drops updates pointing against the root update and rescales the rest', () => {
    const root = [Float32Array.of(1, 0)];
    const u = [
      { numExamples: 1, weights: [Float32Array.of(10, 0)] },
      { numExamples: 1, weights: [Float32Array.of(-50, 0)] },
    ];
    const out = flTrust(u, root);
    expect([...out.weights[0]!]).toEqual([1, 0]);
    expect(out.selected).toEqual([0]);
  });

  it('norm bounding scales long updates down', () => {
    const w = [Float32Array.of(3, 4)];
    expect(l2Norm(boundNorm(w, 1))).toBeCloseTo(1, 6);
    const mean = normBoundedMean(
      [
        { numExamples: 1, weights: w },
        { numExamples: 1, weights: [Float32Array.of(0.3, 0.4)] },
      ],
      1,
    );
    expect(mean.weights[0]![0]).toBeCloseTo((0.6 + 0.3) / 2, 6);
  });

  it('centered clipping with a large radius converges to the mean', () => {
    const u = randomUpdates(8, [5], 3);
    const mean = createRule('fedavg').aggregate(u.map((x) => ({ ...x, numExamples: 1 })));
    close(centeredClipping(u, { tau: 1e9, iterations: 1 }).weights, mean.weights, 1e-5);
  });

  it('bucketing is deterministic for a seed and maps selections back to clients', () => {
    const a = bucketAssignment(10, 3, createSeededUniform(42));
    expect(a).toEqual(bucketAssignment(10, 3, createSeededUniform(42)));
    expect(a.flat().sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
    expect(a.map((b) => b.length)).toEqual([3, 3, 3, 1]);
    const rule = withBucketing(createRule('krum', { f: 1 }), { bucketSize: 2, seed: 'round-7' });
    const out = rule.aggregate(randomUpdates(12, [4], 5));
    expect(out.selected).toHaveLength(2);
    expect(rule.requiresAllUpdates).toBe(true);
  });
});

describe('validation', () => {
  const good = randomUpdates(6, [4, 2], 9);
  const nan = { numExamples: 5, weights: [Float32Array.of(1, Number.NaN, 0, 0), new Float32Array(2)] };
  const inf = { numExamples: 5, weights: [Float32Array.of(1, 0, 0, 0), Float32Array.of(Infinity, 0)] };

  it('every rule refuses a NaN/Inf update with a typed reason (Flower Krum selects it; we must not)', () => {
    for (const rule of rules) {
      for (const bad of [nan, inf]) {
        const attempt = () => rule.aggregate([...good, bad]);
        expect(attempt).toThrow(InvalidUpdateError);
        try {
          attempt();
        } catch (e) {
          expect((e as InvalidUpdateError).reason).toBe('non-finite');
          expect((e as InvalidUpdateError).index).toBe(6);
        }
      }
    }
  });

  it('wrong shapes and bad example counts are refused', () => {
    const short = { numExamples: 1, weights: [new Float32Array(3), new Float32Array(2)] };
    expect(() => fedAvg([...good, short])).toThrow(/layer 0: expected 4/);
    expect(() => median([...good, { numExamples: 1, weights: [new Float32Array(4)] }])).toThrow(
      InvalidUpdateError,
    );
    expect(() => fedAvg([...good, { ...good[0]!, numExamples: 0 }])).toThrow(InvalidUpdateError);
    expect(() => fedAvg([])).toThrow(InvalidUpdateError);
  });

  it('screenUpdates separates the bad ones with reasons, including norms beyond the bound', () => {
    const big = { numExamples: 1, weights: [Float32Array.of(100, 0, 0, 0), new Float32Array(2)] };
    const { accepted, acceptedIndices, rejected } = screenUpdates(
      [...good, nan, big, { numExamples: 1, weights: [new Float32Array(1)] }],
      { maxNorm: 50 },
    );
    expect(accepted).toHaveLength(6);
    expect(acceptedIndices).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rejected.map((r) => [r.index, r.reason])).toEqual([
      [6, 'non-finite'],
      [7, 'norm-exceeded'],
      [8, 'layer-count'],
    ]);
  });

  it('streaming FedAvg equals batch FedAvg and a bad update leaves its state untouched', () => {
    const acc = createFedAvgAccumulator();
    expect(acc.requiresAllUpdates).toBe(false);
    for (const u of good.slice(0, 3)) acc.add(u);
    expect(() => acc.add(nan)).toThrow(InvalidUpdateError);
    expect(() => acc.add({ numExamples: 1, weights: [new Float32Array(2)] })).toThrow(InvalidUpdateError);
    for (const u of good.slice(3)) acc.add(u);
    expect(acc.count).toBe(6);
    close(acc.result().weights, fedAvg(good).weights, 1e-6);
    const sum = createSumAccumulator();
    for (const u of good) sum.add({ weights: u.weights, numExamples: Number.NaN });
    expect(sum.result().weights[0]![0]).toBeCloseTo(
      good.reduce((a, u) => a + u.weights[0]![0]!, 0),
      4,
    );
  });
});
