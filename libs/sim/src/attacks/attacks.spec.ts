import { describe, expect, it } from 'vitest';
import { SimRandom } from '../random.js';
import {
  alie,
  alieZ,
  flipLabels,
  gaussianNoise,
  ipm,
  meanAndStd,
  normalQuantile,
  scaleUpdate,
  signFlip,
} from './attacks.js';
import { attackTransform, chooseAttackers, Collusion } from './collusion.js';

const u = (...layers: number[][]) => layers.map((l) => Float32Array.from(l));
const plain = (update: readonly Float32Array[]) => update.map((l) => [...l]);

describe('attack models', () => {
  it('sign flip and boosting multiply the honest update; bad factors are refused', () => {
    expect(plain(signFlip(u([1, -2], [0.5])))).toEqual([[-1, 2], [-0.5]]);
    expect(plain(signFlip(u([1]), 3))).toEqual([[-3]]);
    expect(plain(scaleUpdate(u([1, -2]), 10))).toEqual([[10, -20]]);
    expect(() => scaleUpdate(u([1]), 0)).toThrow(/boost factor/);
    expect(() => signFlip(u([1]), Number.NaN)).toThrow(/flip factor/);
  });

  it('Gaussian noise adds N(0, sd²) from the seeded stream: same seed same draw, sample sd close to sd', () => {
    const zero = [new Float32Array(20_000)];
    const a = gaussianNoise(zero, 0.5, new SimRandom(7));
    const b = gaussianNoise(zero, 0.5, new SimRandom(7));
    expect(plain(a)).toEqual(plain(b));
    const { std } = meanAndStd(
      a[0]!.reduce<Float32Array[][]>((acc, v) => (acc.push([Float32Array.of(v)]), acc), []),
    );
    expect(std[0]![0]).toBeGreaterThan(0.48);
    expect(std[0]![0]).toBeLessThan(0.52);
  });

  it('the normal quantile matches tabulated values', () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963985, 7);
    expect(normalQuantile(0.72)).toBeCloseTo(0.582841507, 7);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306, 7);
    expect(() => normalQuantile(1)).toThrow(RangeError);
  });

  it("ALIE's z follows Baruch et al.: s = ⌊n/2 + 1⌋ − f, z = Φ⁻¹((n − s)/n), 0 when too few collude", () => {
    // n = 50, f = 12: s = 14, (50 − 14)/50 = 0.72
    expect(alieZ(50, 12)).toBeCloseTo(0.582841507, 7);
    // n = 20, f = 4: s = 7, 13/20 = 0.65
    expect(alieZ(20, 4)).toBeCloseTo(normalQuantile(0.65), 12);
    expect(alieZ(20, 1)).toBe(0);
    expect(() => alieZ(10, 10)).toThrow(RangeError);
  });

  it('ALIE sends mean − z·std of the attackers’ honest updates; IPM sends −ε × their mean', () => {
    const honest = [u([1, 0]), u([3, 0]), u([2, 3])];
    // mean (2, 1), population std (√(2/3), √2)
    const a = alie(honest, 1.5);
    expect(a[0]![0]).toBeCloseTo(2 - 1.5 * Math.sqrt(2 / 3), 6);
    expect(a[0]![1]).toBeCloseTo(1 - 1.5 * Math.sqrt(2), 6);
    expect(plain(ipm(honest, 0.5))).toEqual([[-1, -0.5]]);
    expect(() => ipm([], 1)).toThrow(/no updates/);
    expect(() => alie([u([1]), u([1, 2])], 1)).toThrow(/shapes/);
  });

  it('label flip maps c to classes − 1 − c and refuses labels outside the classes', () => {
    const t = { features: new Float32Array(3), labels: Int32Array.of(0, 1, 2), rows: 3, cols: 1 };
    expect([...flipLabels(t, 3).labels]).toEqual([2, 1, 0]);
    expect([...flipLabels({ ...t, labels: Int32Array.of(0, 1, 1) }, 2).labels]).toEqual([1, 0, 0]);
    expect(() => flipLabels(t, 2)).toThrow(/not one of 2 classes/);
    expect([...t.labels]).toEqual([0, 1, 2]);
  });

  it('chooses round(fraction × n) attackers by seed', () => {
    const ids = Array.from({ length: 20 }, (_, i) => `d${i}`);
    const a = chooseAttackers(ids, 0.2, 42);
    expect(a.size).toBe(4);
    expect([...a]).toEqual([...chooseAttackers(ids, 0.2, 42)]);
    expect([...a]).not.toEqual([...chooseAttackers(ids, 0.2, 43)]);
    expect(() => chooseAttackers(ids, 1, 1)).toThrow(RangeError);
  });
});

describe('colluding attackers (ALIE, IPM through the SDK update transform)', () => {
  const context = (deviceId: string, selected: string[], signal = new AbortController().signal) =>
    ({
      roundId: 'r1',
      deviceId,
      round: { selectedDevices: selected, deadline: Date.now() + 60_000 },
      signal,
      trainingMs: 0,
    }) as unknown as Parameters<ReturnType<typeof attackTransform>>[1];

  it('every attacker waits for the others and sends the same estimate from their pooled honest updates', async () => {
    const selected = ['a1', 'a2', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8'];
    const collusion = new Collusion(['a1', 'a2']);
    const t = attackTransform({ kind: 'ipm', params: { ipmEpsilon: 2 } }, collusion, 1);
    const [x, y] = await Promise.all([
      t(u([1, 2]), context('a1', selected)),
      t(u([3, 4]), context('a2', selected)),
    ]);
    expect(plain(x)).toEqual([[-4, -6]]);
    expect(plain(y)).toEqual(plain(x));
    const alieT = attackTransform({ kind: 'alie' }, new Collusion(['a1', 'a2']), 1);
    const [p] = await Promise.all([
      alieT(u([1]), context('a1', selected)),
      alieT(u([3]), context('a2', selected)),
    ]);
    // n = 10, f = 2: s = 4, z = Φ⁻¹(0.6); mean 2, std 1
    expect(p[0]![0]).toBeCloseTo(2 - normalQuantile(0.6), 5);
  });

  it('stops waiting when the round aborts (an attacker that never trains does not hang the others)', async () => {
    const collusion = new Collusion(['a1', 'a2']);
    const t = attackTransform({ kind: 'ipm', params: { ipmEpsilon: 1 } }, collusion, 1);
    const abort = new AbortController();
    const pending = t(u([5]), context('a1', ['a1', 'a2', 'h1'], abort.signal));
    abort.abort();
    expect(plain(await pending)).toEqual([[-5]]);
  });
});
