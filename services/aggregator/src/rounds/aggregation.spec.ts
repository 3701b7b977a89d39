import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { encodeFloat32, multiKrum, createFedAvgAccumulator, createSeededUniform } from '@edgefl/fl';
import { tempDir } from '@edgefl/testing';
import { aggregateRound, robustZ } from './aggregation.js';
import { RoundStore, type RoundRow } from './round-store.js';
import { StartRoundRequest, toRoundSettings } from './round-settings.js';

const SHAPE = [4, 3];
const vec = (seed: number, offset = 0) => {
  const u = createSeededUniform(seed);
  return SHAPE.map((n) => Float32Array.from({ length: n }, () => u() - 0.5 + offset));
};

describe('robustZ', () => {
  it('is 0 at the median and large for a far value; MAD 0 gives ∞ only off the median', () => {
    const z = robustZ([1, 1.1, 0.9, 1.05, 0.95, 10]);
    expect(Math.abs(z[0]!)).toBeLessThan(1);
    expect(z[5]!).toBeGreaterThan(3);
    expect(robustZ([2, 2, 2, 5])).toEqual([0, 0, 0, Number.POSITIVE_INFINITY]);
    expect(robustZ([])).toEqual([]);
  });
});

describe('aggregateRound', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let store: RoundStore;
  beforeEach(async () => {
    dir = await tempDir('edgefl-agg-unit-');
    store = new RoundStore(join(dir.path, 'aggregator.sqlite'));
  });
  afterEach(async () => {
    store.close();
    await dir.remove();
  });

  const round = (strategy: string, params: Record<string, number> = {}): RoundRow => {
    const settings = toRoundSettings(
      StartRoundRequest.parse({
        tenant: 't',
        modelId: 'm',
        baseVersion: 1,
        selectedDevices: ['a', 'b', 'c', 'd', 'e', 'f'],
        quorum: 6,
        deadline: Date.now() + 60_000,
        strategy,
        strategyParams: params,
      }),
      Date.now(),
      1e-5,
    );
    const row = {
      roundId: `r-${strategy}`,
      tenant: 't',
      modelId: 'm',
      state: 'CLOSED',
      settings,
      shape: SHAPE,
      openedAt: 1,
      openedEventId: 'e',
      openedPublished: true,
      quorumMetAt: null,
      closedAt: null,
      closeReason: null,
      closeDetail: null,
      closedEventId: null,
      closedPublished: false,
      resultEventId: null,
      resultPublished: false,
      epsilon: 0,
      epsilonTotal: 0,
      sealKeyName: 'k',
      result: null,
    } satisfies RoundRow;
    store.insertRound(row, new Uint8Array(7 * 4));
    const updates = ['a', 'b', 'c', 'd', 'e', 'f'].map((d, i) => vec(i, d === 'f' ? 50 : 0));
    updates.forEach((w, i) =>
      store.insertUpdate(
        {
          roundId: row.roundId,
          updateId: `u${i}`,
          eventId: `ev-${row.roundId}-${i}`,
          deviceId: String.fromCharCode(97 + i),
          verdict: 'accepted',
          reason: null,
          detail: null,
          norm: 1,
          numExamples: i + 1,
          receivedAt: i,
        },
        encodeFloat32(w),
      ),
    );
    return row;
  };
  // the stored payload is the plaintext here: the unit under test is the aggregation, not the seal
  const identity = async (_: unknown, payload: Uint8Array) => payload;
  const zero = SHAPE.map((n) => new Float32Array(n));

  it('FedAvg streams the stored updates in acceptance order: equal to libs/fl bit for bit, cosines per update', async () => {
    const r = round('fedavg');
    const out = await aggregateRound(r, store, zero, identity, 10);
    const acc = createFedAvgAccumulator();
    for (let i = 0; i < 6; i++) acc.add({ weights: vec(i, i === 5 ? 50 : 0), numExamples: i + 1 });
    expect(out.weights).toEqual(acc.result().weights);
    expect(out.participants).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(out.cosines.size).toBe(6);
    expect(Number.isNaN([...out.cosines.values()][0])).toBe(true); // nothing to compare the first with
  });

  it('Multi-Krum holds the updates, leaves out the far one and reports whom it kept', async () => {
    const r = round('multi-krum', { f: 1, m: 4 });
    const out = await aggregateRound(r, store, zero, identity, 10);
    const updates = [0, 1, 2, 3, 4, 5].map((i) => ({
      weights: vec(i, i === 5 ? 50 : 0),
      numExamples: i + 1,
    }));
    expect(out.weights).toEqual(multiKrum(updates, 1, 4).weights);
    expect(out.selected).not.toContain('f');
    expect(out.selected).toHaveLength(4);
  });

  it('refuses to hold more updates than the cap', async () => {
    const r = round('median');
    await expect(aggregateRound(r, store, zero, identity, 3)).rejects.toThrow(/more than 3/);
  });
});
