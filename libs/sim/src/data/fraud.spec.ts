import { describe, expect, it } from 'vitest';
import { DatasetError } from './errors.js';
import { FRAUD_FEATURES, FRAUD_REGIONS, generateFraud, MERCHANT_CATEGORIES } from './fraud.js';
import { loadDataset } from './load.js';

const table = generateFraud({ seed: 21, rows: 40_000 });
const col = (name: string) => FRAUD_FEATURES.indexOf(name);

/** Mean of a feature over the rows of one region and label. */
function mean(feature: string, region: number, label: number): number {
  let sum = 0;
  let n = 0;
  for (let r = 0; r < table.rows; r++)
    if (table.regions[r] === region && table.labels[r] === label) {
      sum += table.features[r * table.cols + col(feature)]!;
      n++;
    }
  return sum / n;
}

/** Share of one region's rows of one label at a merchant category. */
function merchantShare(category: string, region: number, label: number): number {
  let at = 0;
  let n = 0;
  for (let r = 0; r < table.rows; r++)
    if (table.regions[r] === region && table.labels[r] === label) {
      at += table.features[r * table.cols + col(`mcc_${category}`)]!;
      n++;
    }
  return at / n;
}

describe('synthetic card-payment fraud', () => {
  it('has the payment features and about 1% fraud, in every region', () => {
    expect(table.featureNames).toEqual(FRAUD_FEATURES);
    expect(table.cols).toBe(7 + MERCHANT_CATEGORIES.length);
    const frauds = table.labels.reduce((a, b) => a + b, 0);
    expect(frauds / table.rows).toBeGreaterThan(0.008);
    expect(frauds / table.rows).toBeLessThan(0.012);
    FRAUD_REGIONS.forEach((_, g) => {
      let n = 0;
      let f = 0;
      for (let r = 0; r < table.rows; r++)
        if (table.regions[r] === g) {
          n++;
          f += table.labels[r]!;
        }
      expect(f / n).toBeGreaterThan(0.004);
      expect(f / n).toBeLessThan(0.02);
    });
  });

  it('draws well-formed rows: one merchant category, an hour on the unit circle, a risk in [0, 1]', () => {
    const bad: number[] = [];
    for (let r = 0; r < table.rows; r++) {
      const row = table.features.subarray(r * table.cols, (r + 1) * table.cols);
      const ok =
        row.subarray(7).reduce((a, b) => a + b, 0) === 1 &&
        Math.abs(row[1]! ** 2 + row[2]! ** 2 - 1) < 1e-9 &&
        row[6]! > 0 &&
        row[6]! < 1 &&
        row[3]! <= row[4]! && // last hour ⊆ last day
        row[0]! > 0 &&
        row[5]! >= 0;
      if (!ok) bad.push(r);
    }
    expect(bad).toEqual([]);
  });

  it('has region-dependent fraud mechanics', () => {
    const [metro, coast, rural, industrial] = [0, 1, 2, 3];
    // metro: account takeover on risky devices buying digital goods
    expect(mean('device_risk', metro!, 1)).toBeGreaterThan(mean('device_risk', metro!, 0) + 0.4);
    expect(merchantShare('digital_goods', metro!, 1)).toBeGreaterThan(0.35);
    // coast: cloned cards far from home at night
    expect(mean('distance_log', coast!, 1)).toBeGreaterThan(mean('distance_log', coast!, 0) + 2);
    expect(mean('hour_cos', coast!, 1)).toBeGreaterThan(0.5); // around 02:30
    // rural: card testing — bursts of tiny purchases
    expect(mean('velocity_1h', rural!, 1)).toBeGreaterThan(5 * mean('velocity_1h', rural!, 0) + 3);
    expect(mean('amount_log', rural!, 1)).toBeLessThan(mean('amount_log', rural!, 0) - 1.5);
    // industrial: large electronics and jewelry purchases
    expect(mean('amount_log', industrial!, 1)).toBeGreaterThan(mean('amount_log', industrial!, 0) + 2);
    expect(merchantShare('jewelry', industrial!, 1)).toBeGreaterThan(0.15);
    // and the mechanics are not shared: rural fraud is cheap, industrial fraud is not; coast fraud is not online
    expect(mean('amount_log', rural!, 1)).toBeLessThan(mean('amount_log', industrial!, 1) - 4);
    expect(merchantShare('digital_goods', coast!, 1)).toBeLessThan(0.1);
  });

  it('is deterministic in the seed', () => {
    const a = generateFraud({ seed: 3, rows: 1000 });
    const b = generateFraud({ seed: 3, rows: 1000 });
    const c = generateFraud({ seed: 4, rows: 1000 });
    expect(Buffer.from(a.features.buffer).equals(Buffer.from(b.features.buffer))).toBe(true);
    expect(Array.from(a.labels)).toEqual(Array.from(b.labels));
    expect(Buffer.from(a.features.buffer).equals(Buffer.from(c.features.buffer))).toBe(false);
  });

  it('honours fraudRate and refuses bad options', () => {
    const t = generateFraud({ seed: 1, rows: 20_000, fraudRate: 0.05 });
    const rate = t.labels.reduce((a, b) => a + b, 0) / t.rows;
    expect(rate).toBeGreaterThan(0.04);
    expect(rate).toBeLessThan(0.06);
    expect(() => generateFraud({ seed: 1, rows: 10 })).toThrow(DatasetError);
    expect(() => generateFraud({ seed: 1, fraudRate: 0 })).toThrow(/fraudRate/);
  });

  it('loads as a binary data set stratified by label and region', () => {
    const d = loadDataset({ name: 'fraud', seed: 8, fraud: { rows: 10_000 } });
    expect(d.task).toBe('binary');
    expect(d.classNames).toEqual(['legit', 'fraud']);
    expect(d.train.rows + d.test.rows).toBe(10_000);
    const source = generateFraud({ seed: 8, rows: 10_000 });
    for (let g = 0; g < 4; g++) {
      let all = 0;
      let test = 0;
      for (let r = 0; r < source.rows; r++) if (source.regions[r] === g && source.labels[r] === 1) all++;
      d.test.labels.forEach((l, i) => {
        if (l === 1 && d.regions!.test[i] === g) test++;
      });
      expect(Math.abs(test - all * 0.2)).toBeLessThanOrEqual(1);
    }
  });
});
