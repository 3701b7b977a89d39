import { describe, expect, it } from 'vitest';
import { DatasetError } from './errors.js';
import { loadDataset } from './load.js';
import {
  classShares,
  deviceTable,
  labelSkew,
  partitionDataset,
  partitionRows,
  type Partition,
} from './partition.js';

const digits = loadDataset({ name: 'digits', seed: 1 });
const labels = digits.train.labels;

function expectExactCover(p: Partition, rows: number, minRows: number): void {
  const seen = new Uint8Array(rows);
  for (const device of p.rows) {
    expect(device.length).toBeGreaterThanOrEqual(minRows);
    for (const r of device) seen[r]!++;
  }
  expect(seen.every((s) => s === 1)).toBe(true);
}

function coefficientOfVariation(sizes: number[]): number {
  const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
  const sd = Math.sqrt(sizes.reduce((a, b) => a + (b - mean) ** 2, 0) / sizes.length);
  return sd / mean;
}

describe('Dirichlet label skew', () => {
  it('gives every training row to exactly one device, every device at least minRows', () => {
    for (const alpha of [0.01, 0.5, Infinity]) {
      const p = partitionRows(labels, 10, { devices: 100, seed: 3, alpha, minRows: 12 });
      expect(p.rows).toHaveLength(100);
      expectExactCover(p, labels.length, 12);
    }
  });

  it('grows the skew as α shrinks, and approaches IID as α grows', () => {
    const skew = (alpha: number) =>
      [1, 2, 3].reduce(
        (s, seed) => s + labelSkew(labels, partitionRows(labels, 10, { devices: 20, seed, alpha }), 10),
        0,
      ) / 3;
    const values = [0.05, 0.3, 1, 10, 1e4, Infinity].map(skew);
    for (let i = 1; i < values.length - 1; i++) expect(values[i]!).toBeLessThan(values[i - 1]!);
    expect(values[0]!).toBeGreaterThan(0.6); // α = 0.05: a device holds one or two digits
    expect(Math.abs(values[4]! - values[5]!)).toBeLessThan(0.05); // α = 10⁴ is IID within sampling noise
    expect(values[5]!).toBeLessThan(0.2);
  });

  it('at small α most devices are dominated by one class', () => {
    const p = partitionRows(labels, 10, { devices: 20, seed: 9, alpha: 0.05 });
    const dominated = p.rows.filter((rows) => Math.max(...classShares(labels, rows, 10)) > 0.6).length;
    expect(dominated).toBeGreaterThanOrEqual(12);
  });

  it('is deterministic in the seed', () => {
    const a = partitionRows(labels, 10, { devices: 30, seed: 5 });
    const b = partitionRows(labels, 10, { devices: 30, seed: 5 });
    const c = partitionRows(labels, 10, { devices: 30, seed: 6 });
    expect(a.rows.map((r) => Array.from(r))).toEqual(b.rows.map((r) => Array.from(r)));
    expect(a.rows.map((r) => Array.from(r))).not.toEqual(c.rows.map((r) => Array.from(r)));
  });
});

describe('quantity skew', () => {
  it('equal sizes by default; sizes spread more as β shrinks; minRows always holds', () => {
    const sizes = (quantityAlpha: number) =>
      partitionRows(labels, 10, {
        devices: 50,
        seed: 2,
        alpha: Infinity,
        quantityAlpha,
        minRows: 5,
      }).rows.map((r) => r.length);
    const equal = sizes(Infinity);
    expect(Math.max(...equal) - Math.min(...equal)).toBeLessThanOrEqual(1);
    const cv = [10, 1, 0.1].map((b) => coefficientOfVariation(sizes(b)));
    expect(cv[0]!).toBeLessThan(cv[1]!);
    expect(cv[1]!).toBeLessThan(cv[2]!);
    expect(Math.min(...sizes(0.1))).toBeGreaterThanOrEqual(5);
    expectExactCover(
      partitionRows(labels, 10, { devices: 50, seed: 2, quantityAlpha: 0.1, minRows: 5 }),
      labels.length,
      5,
    );
  });
});

describe('regions (fraud)', () => {
  const fraud = loadDataset({ name: 'fraud', seed: 4, fraud: { rows: 8000 } });

  it('gives every device one region and only that region’s rows, devices in proportion to the rows', () => {
    const p = partitionDataset(fraud, { devices: 40, seed: 1, alpha: Infinity });
    expect(p.groupNames).toEqual(fraud.regions!.names);
    expectExactCover(p, fraud.train.rows, 10);
    const perRegion = new Array<number>(fraud.regions!.names.length).fill(0);
    p.rows.forEach((rows, d) => {
      const g = p.groups![d]!;
      perRegion[g]!++;
      for (const r of rows) expect(fraud.regions!.train[r]).toBe(g);
    });
    // metro holds ~35% of the rows, so about 14 of the 40 devices
    expect(perRegion[0]).toBeGreaterThanOrEqual(12);
    expect(perRegion[0]).toBeLessThanOrEqual(16);
    expect(perRegion.every((n) => n >= 1)).toBe(true);
  });

  it('can ignore the regions', () => {
    const p = partitionDataset(fraud, { devices: 10, seed: 1, byRegion: false });
    expect(p.groups).toBeUndefined();
    const regionsOfDevice0 = new Set(Array.from(p.rows[0]!, (r) => fraud.regions!.train[r]));
    expect(regionsOfDevice0.size).toBeGreaterThan(1);
  });
});

describe('bad input', () => {
  it.each([
    [{ devices: 200, minRows: 10 }, 'too-few-rows', /1438 rows cannot give 200 devices 10 rows each/],
    [{ devices: 0 }, 'invalid-option', /devices must be a positive integer/],
    [{ devices: 10, alpha: 0 }, 'invalid-option', /alpha must be > 0/],
    [{ devices: 10, quantityAlpha: -1 }, 'invalid-option', /quantityAlpha must be > 0/],
  ])('%o → %s', (options, code, message) => {
    let error: unknown;
    try {
      partitionRows(labels, 10, { seed: 1, ...options });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as DatasetError).code).toBe(code);
    expect((error as DatasetError).message).toMatch(message);
  });

  it('deviceTable copies a device’s rows', () => {
    const p = partitionRows(labels, 10, { devices: 5, seed: 1 });
    const t = deviceTable(digits.train, p.rows[2]!);
    expect(t.rows).toBe(p.rows[2]!.length);
    const r = p.rows[2]![3]!;
    expect(Array.from(t.features.subarray(3 * 64, 4 * 64))).toEqual(
      Array.from(digits.train.features.subarray(r * 64, (r + 1) * 64)),
    );
    expect(t.labels[3]).toBe(labels[r]);
  });
});
