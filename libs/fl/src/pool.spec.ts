import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidParameterError, InvalidUpdateError } from './errors.js';
import { fedAvg } from './fedavg.js';
import { AggregationPool, isShared, sharedWeights, toShared } from './pool.js';
import { createNormal, createSeededUniform } from './rng.js';
import { median, trimmedMean } from './robust.js';
import type { ClientUpdate } from './types.js';

function sharedUpdates(n: number, shape: number[], seed: number): ClientUpdate[] {
  const normal = createNormal(createSeededUniform(seed));
  return Array.from({ length: n }, (_, i) => {
    const weights = sharedWeights(shape);
    // a few far-away clients, and repeated values, so the selection sees ties and skew
    for (const layer of weights) {
      for (let j = 0; j < layer.length; j++) {
        layer[j] = i % 7 === 0 ? normal() * 10 + 50 : j % 5 === 0 ? Math.round(normal()) : normal();
      }
    }
    return { numExamples: 1 + ((i * 37 + seed) % 50), weights };
  });
}

/** Exact equality, bit for bit (also tells +0 from -0 and compares NaN as equal to itself). */
function bits(weights: readonly Float32Array[]): Uint32Array[] {
  return weights.map((l) => new Uint32Array(Float32Array.from(l).buffer));
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

async function asyncErrorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

describe('AggregationPool', () => {
  const pool = new AggregationPool({ threads: 3 });
  afterAll(() => pool.close());

  it('equals the single-threaded rules bit for bit (odd and even n, several layers, uneven splits)', async () => {
    for (const [n, shape] of [
      [101, [4099, 17, 0, 2000]],
      [100, [1, 5003]],
      [3, [33]],
      [1, [40]],
      [5, [200_000, 3]], // more chunks than the workers (claimed dynamically)
    ] as Array<[number, number[]]>) {
      const u = sharedUpdates(n, shape, n);
      expect(isShared(u)).toBe(true);
      expect(bits((await pool.fedAvg(u)).weights)).toEqual(bits(fedAvg(u).weights));
      expect(bits((await pool.median(u)).weights)).toEqual(bits(median(u).weights));
      for (const beta of [0, 0.1, 0.3]) {
        expect(bits((await pool.trimmedMean(u, beta)).weights)).toEqual(bits(trimmedMean(u, beta).weights));
      }
    }
  });

  it('equals the single-threaded rules for random sizes and thread counts', async () => {
    const pools = [1, 2, 5].map((threads) => new AggregationPool({ threads }));
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 40 }),
          fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 4 }),
          fc.integer({ min: 0, max: 2 }),
          fc.integer({ min: 0, max: 1000 }),
          async (n, shape, p, seed) => {
            const u = sharedUpdates(n, shape, seed);
            const q = pools[p]!;
            expect(bits((await q.fedAvg(u)).weights)).toEqual(bits(fedAvg(u).weights));
            expect(bits((await q.median(u)).weights)).toEqual(bits(median(u).weights));
            expect(bits((await q.trimmedMean(u, 0.2)).weights)).toEqual(bits(trimmedMean(u, 0.2).weights));
          },
        ),
        { numRuns: 25 },
      );
    } finally {
      await Promise.all(pools.map((q) => q.close()));
    }
  });

  it('runs concurrent calls and returns results in shared memory', async () => {
    const u = sharedUpdates(20, [3000, 100], 9);
    const [a, b, c] = await Promise.all([pool.median(u), pool.fedAvg(u), pool.trimmedMean(u, 0.1)]);
    expect(bits(a.weights)).toEqual(bits(median(u).weights));
    expect(bits(b.weights)).toEqual(bits(fedAvg(u).weights));
    expect(bits(c.weights)).toEqual(bits(trimmedMean(u, 0.1).weights));
    expect(a.weights.every((l) => l.buffer instanceof SharedArrayBuffer)).toBe(true);
  });

  it('refuses bad input with exactly the single-threaded errors, and stays usable', async () => {
    const u = sharedUpdates(12, [25_000, 300], 4);
    u[7]!.weights[1]![299] = Number.NaN;
    u[9]!.weights[0]![3] = Number.POSITIVE_INFINITY;
    for (const [parallel, single] of [
      [() => pool.median(u), () => median(u)],
      [() => pool.trimmedMean(u, 0.1), () => trimmedMean(u, 0.1)],
      [() => pool.fedAvg(u), () => fedAvg(u)],
    ] as Array<[() => Promise<unknown>, () => unknown]>) {
      const want = errorOf(single);
      const got = await asyncErrorOf(parallel());
      expect(want).toBeInstanceOf(InvalidUpdateError);
      expect(got).toEqual(want);
      expect((got as InvalidUpdateError).reason).toBe('non-finite');
      expect((got as InvalidUpdateError).index).toBe((want as InvalidUpdateError).index);
    }
    const wrongShape = [...sharedUpdates(3, [10], 1), { numExamples: 1, weights: sharedWeights([11]) }];
    expect(await asyncErrorOf(pool.median(wrongShape))).toEqual(errorOf(() => median(wrongShape)));
    expect(await asyncErrorOf(pool.fedAvg([]))).toEqual(errorOf(() => fedAvg([])));
    expect(await asyncErrorOf(pool.trimmedMean(sharedUpdates(4, [5], 1), 0.5))).toBeInstanceOf(
      InvalidParameterError,
    );
    const good = sharedUpdates(12, [2500, 300], 4);
    expect(bits((await pool.median(good)).weights)).toEqual(bits(median(good).weights));
  });

  it('aggregates updates outside shared memory on the calling thread (same result)', async () => {
    const plain = sharedUpdates(9, [700], 3).map((u) => ({
      numExamples: u.numExamples,
      weights: u.weights.map((l) => Float32Array.from(l)),
    }));
    expect(isShared(plain)).toBe(false);
    expect(bits((await pool.median(plain)).weights)).toEqual(bits(median(plain).weights));
    expect(bits((await pool.fedAvg(plain)).weights)).toEqual(bits(fedAvg(plain).weights));
    const copy = toShared(plain[0]!.weights);
    expect(isShared([{ numExamples: 1, weights: copy }])).toBe(true);
    expect(bits(copy)).toEqual(bits(plain[0]!.weights));
  });

  it('checks its options and refuses work once closed', async () => {
    expect(() => new AggregationPool({ threads: 0 })).toThrow(InvalidParameterError);
    expect(() => new AggregationPool({ threads: 1.5 })).toThrow(InvalidParameterError);
    expect(() => sharedWeights([-1])).toThrow(InvalidParameterError);
    const q = new AggregationPool({ threads: 2 });
    const u = sharedUpdates(5, [100], 2);
    expect(bits((await q.median(u)).weights)).toEqual(bits(median(u).weights));
    await q.close();
    await q.close();
    await expect(q.median(u)).rejects.toBeInstanceOf(InvalidParameterError);
  });
});
