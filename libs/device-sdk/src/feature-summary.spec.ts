import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SingleObjectCodec } from '@edgefl/contracts/edge';
import { codeOf } from '@edgefl/testing';
import { DeviceError } from './errors.js';
import { binIndex, FeatureSummarizer } from './feature-summary.js';
import { heartbeat, type SystemProbe } from './heartbeat.js';

const probe: SystemProbe = {
  ram: () => ({ totalBytes: 4 << 30, freeBytes: 1 << 30 }),
  cpuPercent: () => 12.5,
  battery: () => ({ percent: null, charging: null }),
  networkType: () => 'ETHERNET',
  accelerator: () => 'NONE',
};

/** Two-pass reference: mean, population std, min, max, and bins by linear scan. */
function reference(values: number[], edges: number[]) {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / n);
  const bins = new Array<number>(edges.length - 1).fill(0);
  for (const v of values) {
    let k = 0;
    while (k < bins.length - 1 && v >= edges[k + 1]!) k++;
    bins[k]!++;
  }
  return { mean, std, min: Math.min(...values), max: Math.max(...values), bins };
}

describe('FeatureSummarizer', () => {
  it('summarises each input: count, mean, population std, min, max and fixed-edge bins (outliers clamped)', () => {
    const s = new FeatureSummarizer({ names: ['amount', 'hour'], binEdges: { amount: [0, 10, 100] } });
    for (const row of [
      [5, 1],
      [20, 3],
      [50, 5],
      [-4, 7],
      [400, 9],
    ])
      s.observe(Float32Array.from(row));
    const [amount, hour] = s.drain()!;
    expect(amount).toMatchObject({ name: 'amount', count: 5, min: -4, max: 400, binEdges: [0, 10, 100] });
    expect(amount!.mean).toBeCloseTo(94.2, 10);
    expect(amount!.std).toBeCloseTo(reference([5, 20, 50, -4, 400], [0, 10, 100]).std, 9);
    // -4 below the first edge counts in bin 0, 400 above the last in the last bin
    expect(amount!.bins).toEqual([2, 3]);
    expect(hour).toEqual({
      name: 'hour',
      count: 5,
      mean: 5,
      std: Math.sqrt(8),
      min: 1,
      max: 9,
      bins: null,
      binEdges: null,
    });
    // drained: the next heartbeat starts afresh, and a summarizer that saw nothing reports null
    expect(s.drain()).toBeNull();
  });

  it('matches a two-pass computation for any values and edges (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 300 }),
        fc.uniqueArray(fc.integer({ min: -1000, max: 1000 }), { minLength: 2, maxLength: 20 }),
        (values, rawEdges) => {
          const edges = [...rawEdges].sort((a, b) => a - b);
          const s = new FeatureSummarizer({ binEdges: edges });
          for (const v of values) s.observe([v]);
          const [got] = s.drain()!;
          const want = reference(values, edges);
          const scale = Math.max(1, ...values.map(Math.abs));
          expect(got!.count).toBe(values.length);
          expect(Math.abs(got!.mean - want.mean)).toBeLessThanOrEqual(1e-9 * scale);
          expect(Math.abs(got!.std - want.std)).toBeLessThanOrEqual(1e-6 * scale);
          expect([got!.min, got!.max]).toEqual([want.min, want.max]);
          expect(got!.bins).toEqual(want.bins);
          expect(got!.bins!.reduce((a, b) => a + b, 0)).toBe(values.length);
        },
      ),
      { numRuns: 300, seed: 20261207 },
    );
  });

  it('binIndex agrees with a linear scan at and around every edge', () => {
    const edges = [-2, -1, 0, 0.5, 1, 3];
    for (const x of [-5, -2, -1.5, -1, -0.1, 0, 0.25, 0.5, 0.99, 1, 2.9, 3, 7]) {
      expect(binIndex(edges, x)).toBe(reference([x], edges).bins.indexOf(1));
    }
  });

  it('keeps memory bounded: at most maxFeatures inputs, whatever the row length and the number of rows', () => {
    const s = new FeatureSummarizer({ maxFeatures: 4, binEdges: [0, 0.5, 1] });
    for (let i = 0; i < 10_000; i++) s.observe(new Float32Array(1000).fill(i % 2));
    const out = s.drain()!;
    expect(out.map((f) => f.name)).toEqual(['0', '1', '2', '3']);
    expect(out[0]).toMatchObject({ count: 10_000, mean: 0.5, std: 0.5, bins: [5_000, 5_000] });
  });

  it('starts afresh when the input width changes (a new model), skips and counts non-finite values and short rows', () => {
    const s = new FeatureSummarizer();
    s.observe([1, 2, 3]);
    s.observe([1, Number.NaN]); // width 2: the 3-wide summaries are dropped
    s.observe([3, Number.POSITIVE_INFINITY]);
    expect(s.drain()).toEqual([
      { name: '0', count: 2, mean: 2, std: 1, min: 1, max: 3, bins: null, binEdges: null },
    ]);
    expect(s.stats()).toEqual({ rows: 3, shortRows: 0, nonFinite: 2 });

    const named = new FeatureSummarizer({ names: ['a', 'b'] });
    named.observe([1]);
    expect(named.drain()).toBeNull();
    expect(named.stats()).toMatchObject({ shortRows: 1 });
  });

  it('refuses bad configuration with a clear bad-config error', () => {
    const bad = (options: ConstructorParameters<typeof FeatureSummarizer>[0]) =>
      codeOf(DeviceError, () => new FeatureSummarizer(options));
    expect(bad({ binEdges: [1] })).toBe('bad-config');
    expect(bad({ binEdges: [0, 0] })).toBe('bad-config');
    expect(bad({ binEdges: [0, Number.NaN] })).toBe('bad-config');
    expect(bad({ binEdges: Array.from({ length: 66 }, (_, i) => i) })).toBe('bad-config');
    expect(bad({ names: ['a', 'a'] })).toBe('bad-config');
    expect(bad({ names: [] })).toBe('bad-config');
    expect(bad({ names: ['a'], binEdges: { b: [0, 1] } })).toBe('bad-config');
    expect(bad({ maxFeatures: 0 })).toBe('bad-config');
    expect(bad({ maxFeatures: 10_000 })).toBe('bad-config');
    expect(() => new FeatureSummarizer({ binEdges: [0] })).toThrow(/2\.\.65 edges/);
  });
});

describe('heartbeats with group and feature summaries', () => {
  it('carry the configured group and the summaries, and encode with the DeviceTelemetry schema', () => {
    const s = new FeatureSummarizer({ names: ['x'], binEdges: [-1, 0, 1] });
    s.observe([0.5]);
    s.observe([-0.5]);
    const beat = heartbeat(
      { tenant: 'acme', deviceId: 'd', firmwareVersion: '2.1.0', group: 'eu-west' },
      { modelId: 'fraud', version: 3 },
      probe,
      1_000,
      s.drain(),
    );
    expect(beat.group).toBe('eu-west');
    expect(beat.featureSummaries).toEqual([
      { name: 'x', count: 2, mean: 0, std: 0.5, min: -0.5, max: 0.5, bins: [1, 1], binEdges: [-1, 0, 1] },
    ]);
    const codec = new SingleObjectCodec();
    expect(
      codec.decode(
        codec.encode('io.edgefl.device.DeviceTelemetry', beat),
        'io.edgefl.device.DeviceTelemetry',
      ),
    ).toEqual(beat);
  });

  it('default to no group and no summaries', () => {
    const beat = heartbeat({ tenant: 'acme', deviceId: 'd', firmwareVersion: '2.1.0' }, null, probe, 1_000);
    expect(beat).toMatchObject({ group: null, featureSummaries: null, modelId: null });
  });
});
