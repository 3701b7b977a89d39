import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PrivacyBudgetLedger } from './budget.js';
import { centralDp, CentralDpAccumulator, clipL2, localDp } from './dp.js';
import { BudgetExceededError, InvalidParameterError, InvalidUpdateError } from './errors.js';
import { computeEpsilon, logErfc, RdpAccountant } from './rdp.js';
import { createNormal, createSeededUniform, secureNormal } from './rng.js';
import { l2Norm } from './validate.js';

describe('clipping and noise', () => {
  it('clips to the bound and leaves short updates alone', () => {
    expect(l2Norm(clipL2([Float32Array.of(30, 40)], 5))).toBeCloseTo(5, 5);
    expect([...clipL2([Float32Array.of(0.3, 0.4)], 5)[0]!]).toEqual([Math.fround(0.3), Math.fround(0.4)]);
    expect(() => clipL2([Float32Array.of(1)], 0)).toThrow(InvalidParameterError);
  });

  it('secure Gaussian noise has the right mean and variance', () => {
    const normal = secureNormal();
    let s = 0;
    let s2 = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) {
      const x = normal();
      s += x;
      s2 += x * x;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.02); // 9 standard errors
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.03);
  });

  it('local DP clips then noises with std σC, deterministic only with an explicit seeded source', () => {
    const w = [new Float32Array(50_000).fill(1)];
    const seeded = () => createNormal(createSeededUniform(3));
    const a = localDp(w, { clipNorm: 1, noiseMultiplier: 2 }, seeded());
    const b = localDp(w, { clipNorm: 1, noiseMultiplier: 2 }, seeded());
    expect([...a[0]!.subarray(0, 5)]).toEqual([...b[0]!.subarray(0, 5)]);
    let s2 = 0;
    const c = 1 / Math.sqrt(50_000);
    for (const v of a[0]!) s2 += (v - c) ** 2;
    expect(Math.sqrt(s2 / 50_000)).toBeCloseTo(2, 1);
    expect(w[0]![0]).toBe(1); // input untouched
    expect(() => localDp([Float32Array.of(Number.NaN)], { clipNorm: 1, noiseMultiplier: 1 })).toThrow(
      InvalidUpdateError,
    );
  });

  it('central DP: clipped unweighted mean plus noise on the sum; zero noise gives the clipped mean', () => {
    const updates = [
      { numExamples: 1, weights: [Float32Array.of(3, 4)] },
      { numExamples: 100, weights: [Float32Array.of(0, 1)] },
    ];
    const out = centralDp(updates, { clipNorm: 1, noiseMultiplier: 0 });
    expect(out.weights[0]![0]).toBeCloseTo(0.3, 6);
    expect(out.weights[0]![1]).toBeCloseTo(0.9, 6);
    const acc = new CentralDpAccumulator({ clipNorm: 1, noiseMultiplier: 0 });
    acc.add(updates[0]!);
    expect(() => acc.add({ numExamples: 1, weights: [Float32Array.of(Infinity, 0)] })).toThrow(
      InvalidUpdateError,
    );
    acc.add(updates[1]!);
    expect(acc.result(4).weights[0]![1]).toBeCloseTo(1.8 / 4, 6);
  });
});

describe('RDP accountant', () => {
  it('logErfc is right in the far tail where erfc underflows', () => {
    // asymptotic: log erfc x ≈ −x² − log(x√π) − 1/(2x²)
    const x = 40;
    expect(logErfc(x)).toBeCloseTo(-x * x - Math.log(x * Math.sqrt(Math.PI)) - 1 / (2 * x * x), 6);
    expect(logErfc(0)).toBeCloseTo(0, 15);
    expect(logErfc(-3)).toBeCloseTo(Math.log(2 - 2.209049699858544e-5), 12);
  });

  it('ε is monotone in steps and in 1/σ', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.001, max: 0.5, noNaN: true }),
        fc.double({ min: 0.6, max: 4, noNaN: true }),
        fc.integer({ min: 1, max: 5000 }),
        (q, sigma, steps) => {
          const e = (s: number, t: number) => computeEpsilon({ q, sigma: s, steps: t, delta: 1e-5 }).epsilon;
          const base = e(sigma, steps);
          expect(e(sigma, steps + 1 + Math.floor(steps / 2))).toBeGreaterThanOrEqual(base);
          expect(e(sigma * 1.2, steps)).toBeLessThanOrEqual(base);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('accumulates heterogeneous rounds and refuses bad parameters', () => {
    const acc = new RdpAccountant();
    acc.step(0.1, 1.2, 10);
    acc.step(0.05, 0.9, 5);
    expect(acc.epsilon(1e-5)).toBeGreaterThan(
      computeEpsilon({ q: 0.1, sigma: 1.2, steps: 10, delta: 1e-5 }).epsilon,
    );
    expect(() => acc.step(2, 1)).toThrow(InvalidParameterError);
    expect(() => computeEpsilon({ q: 0.1, sigma: 1, steps: 1, delta: 0 })).toThrow(InvalidParameterError);
    expect(() => computeEpsilon({ q: 0.1, sigma: 1, steps: 1, delta: 1e-5, orders: [0.5] })).toThrow(
      InvalidParameterError,
    );
  });
});

describe('privacy budget ledger', () => {
  it('refuses the round that would exceed the budget, per tenant × model, and is idempotent per round', () => {
    const ledger = new PrivacyBudgetLedger((tenant) => ({
      epsilon: tenant === 'acme' ? 3 : 100,
      delta: 1e-5,
    }));
    const round = { q: 0.1, sigma: 1, steps: 1 };
    let spent = 0;
    let rounds = 0;
    for (;;) {
      try {
        spent = ledger.spend('acme', 'fraud', { ...round, roundId: `r${rounds}` });
        rounds++;
      } catch (e) {
        expect(e).toBeInstanceOf(BudgetExceededError);
        break;
      }
    }
    expect(rounds).toBeGreaterThan(1);
    expect(spent).toBeLessThanOrEqual(3);
    expect(ledger.spent('acme', 'fraud')).toBeCloseTo(spent, 12); // the refused round recorded nothing
    expect(ledger.spend('acme', 'fraud', { ...round, roundId: 'r0' })).toBeCloseTo(spent, 12); // replay: no charge
    expect(ledger.spent('acme', 'digits')).toBe(0);
    expect(ledger.spend('other', 'fraud', round)).toBeGreaterThan(0);
    const restored = new PrivacyBudgetLedger(() => ({ epsilon: 3, delta: 1e-5 }), { state: ledger.toJSON() });
    expect(restored.spent('acme', 'fraud')).toBeCloseTo(spent, 12);
    expect(() => restored.spend('acme', 'fraud', round)).toThrow(BudgetExceededError);
  });
});
