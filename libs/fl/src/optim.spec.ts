import { describe, expect, it } from 'vitest';
import { InvalidParameterError, InvalidUpdateError } from './errors.js';
import {
  addProximalGradient,
  createFedAdagrad,
  createFedAdam,
  createFedAvgM,
  createFedYogi,
  FedBuffAggregator,
  proximalMu,
  proximalTerm,
  StaleUpdateError,
} from './optim.js';

describe('server optimisers', () => {
  const x = [Float32Array.of(0, 0)];
  const agg = [Float32Array.of(1, -2)];

  it('FedAvgM with β=0 and η=1 is FedAvg; momentum accumulates', () => {
    expect([...createFedAvgM({ momentum: 0 }).step(x, agg)[0]!]).toEqual([1, -2]);
    const opt = createFedAvgM({ momentum: 0.5 });
    const x1 = opt.step(x, agg);
    const x2 = opt.step(x1, [Float32Array.of(x1[0]![0]! + 1, x1[0]![1]! - 2)]);
    expect(x2[0]![0]).toBeCloseTo(1 + 1.5, 6); // v = 0.5·1 + 1
  });

  it('FedAdam/FedAdagrad/FedYogi move along the sign of Δ with bounded steps', () => {
    for (const opt of [
      createFedAdam({ serverLr: 0.1 }),
      createFedAdagrad({ serverLr: 0.1 }),
      createFedYogi({ serverLr: 0.1 }),
    ]) {
      const out = opt.step(x, agg)[0]!;
      expect(out[0]).toBeGreaterThan(0);
      expect(out[1]).toBeLessThan(0);
      expect(Math.abs(out[0]!)).toBeLessThanOrEqual(0.1 * 1.0001); // first step ≤ η
    }
    // Adam, first step: m = 0.1Δ, v = τ² + 0.01Δ² → step = η·0.1·1/(√(1e-6 + 0.01) + 1e-3)
    const adam = createFedAdam({ serverLr: 0.1 }).step(x, agg)[0]![0]!;
    expect(adam).toBeCloseTo((0.1 * 0.1) / (Math.sqrt(1e-6 + 0.01) + 1e-3), 6);
    expect(() => createFedAdam({ beta1: 1 })).toThrow(InvalidParameterError);
    expect(() => createFedAdam().step(x, [Float32Array.of(Number.NaN, 0)])).toThrow(InvalidUpdateError);
  });
});

describe('FedProx', () => {
  it('reads μ from the round config and adds μ(w − w₀) to the gradient', () => {
    expect(proximalMu({})).toBe(0);
    expect(proximalMu({ proximalMu: 0.01 })).toBe(0.01);
    expect(() => proximalMu({ proximalMu: -1 })).toThrow(InvalidParameterError);
    const g = [Float32Array.of(1, 1)];
    addProximalGradient(g, [Float32Array.of(2, 0)], [Float32Array.of(0, 0)], 0.5);
    expect([...g[0]!]).toEqual([2, 1]);
    expect(proximalTerm([Float32Array.of(2, 0)], [Float32Array.of(0, 0)], 0.5)).toBe(1);
  });
});

describe('FedBuff', () => {
  it('buffers K deltas, weights stale ones by 1/√(1+τ), and refuses unknown or too-stale bases', () => {
    const fb = new FedBuffAggregator([Float32Array.of(0)], { bufferSize: 2, serverLr: 1, maxStaleness: 1 });
    expect(fb.submit({ numExamples: 1, weights: [Float32Array.of(2)] }, 0)).toMatchObject({
      applied: false,
      buffered: 1,
    });
    const r = fb.submit({ numExamples: 1, weights: [Float32Array.of(4)] }, 0);
    expect(r).toMatchObject({ applied: true, version: 1 });
    expect(fb.current()[0]![0]).toBe(3);
    fb.submit({ numExamples: 1, weights: [Float32Array.of(2)] }, 0); // staleness 1 → weight 1/√2
    expect(() => fb.submit({ numExamples: 1, weights: [Float32Array.of(Number.NaN)] }, 1)).toThrow(
      InvalidUpdateError,
    );
    expect(() => fb.submit({ numExamples: 1, weights: [Float32Array.of(1)] }, 5)).toThrow(StaleUpdateError);
    fb.submit({ numExamples: 1, weights: [Float32Array.of(0)] }, 1);
    expect(fb.version).toBe(2);
    expect(fb.current()[0]![0]).toBeCloseTo(3 + 2 / Math.SQRT2 / 2, 6);
    fb.submit({ numExamples: 1, weights: [Float32Array.of(0)] }, 2);
    fb.submit({ numExamples: 1, weights: [Float32Array.of(0)] }, 2);
    expect(() => fb.submit({ numExamples: 1, weights: [Float32Array.of(0)] }, 1)).toThrow(StaleUpdateError); // staleness 2 > 1
  });
});
