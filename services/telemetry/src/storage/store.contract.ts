import { describe, expect, it } from 'vitest';
import { emptyRollup, MINUTE_MS } from '../sli/rollup.js';
import type { OpenedTelemetryDatabase } from './database.js';
import { TelemetryStore, type DeviceRecord } from './telemetry-store.js';

export interface StoreFixture {
  database: OpenedTelemetryDatabase;
  reopen: () => Promise<OpenedTelemetryDatabase>;
  cleanup: () => Promise<void>;
}

const device = (id: string, patch: Partial<DeviceRecord> = {}): DeviceRecord => ({
  deviceId: id,
  tenant: 'acme',
  registeredAt: 1,
  revokedAt: null,
  group: 'eu',
  modelId: 'fraud',
  version: 1,
  lastSeenAt: 1_000,
  presence: null,
  presenceAt: null,
  ...patch,
});

/** One suite for both engines: what the telemetry relies on from its store. */
export function runTelemetryStoreSuite(
  engine: string,
  open: () => Promise<StoreFixture>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`telemetry store (${engine})`, () => {
    const withStore = async (fn: (store: TelemetryStore, fixture: StoreFixture) => Promise<void>) => {
      const fixture = await open();
      try {
        await fn(new TelemetryStore(fixture.database.db, fixture.database.kind), fixture);
      } finally {
        await fixture.database.close();
        await fixture.cleanup();
      }
    };

    it('claims each event id once per group, in the transaction of the effects (a failed one claims nothing)', () =>
      withStore(async (store) => {
        const first = await store.transaction((tx) => tx.claimEvents('telemetry', ['a', 'b', 'a'], 1));
        expect([...first].sort()).toEqual(['a', 'b']);
        const again = await store.transaction((tx) => tx.claimEvents('telemetry', ['b', 'c'], 2));
        expect([...again]).toEqual(['c']);
        expect([...(await store.claimEvents('other', ['a'], 3))]).toEqual(['a']);
        await expect(
          store.transaction(async (tx) => {
            await tx.claimEvents('telemetry', ['d'], 4);
            await tx.putDevices([device('x')]);
            throw new Error('effects failed');
          }),
        ).rejects.toThrow('effects failed');
        expect([...(await store.claimEvents('telemetry', ['d'], 5))]).toEqual(['d']);
        expect((await store.getDevices(['x'])).size).toBe(0);
      }));

    it('keeps devices (upsert), counts fresh and silent ones, and the version mix', () =>
      withStore(async (store) => {
        await store.putDevices([
          device('d1'),
          device('d2', { lastSeenAt: 5_000 }),
          device('d3', { lastSeenAt: 5_000, presence: 'OFFLINE', presenceAt: 5_000 }),
          device('d4', { version: 2, group: 'us', lastSeenAt: 5_000 }),
          device('d5', { revokedAt: 2 }),
        ]);
        await store.putDevices([device('d1', { version: 2, group: 'us', lastSeenAt: 6_000 })]);
        const got = await store.getDevices(['d1', 'nope']);
        expect(got.get('d1')).toMatchObject({ version: 2, group: 'us', lastSeenAt: 6_000 });
        expect(got.has('nope')).toBe(false);
        const fresh = await store.deviceFreshness(4_000);
        expect(fresh.sort((a, b) => a.group.localeCompare(b.group))).toEqual([
          { tenant: 'acme', group: 'eu', fresh: 1, silent: 1 },
          { tenant: 'acme', group: 'us', fresh: 2, silent: 0 },
        ]);
        const mix = await store.versionMix('acme', 'fraud');
        expect(mix).toEqual([
          { modelId: 'fraud', version: 1, group: 'eu', devices: 2 },
          { modelId: 'fraud', version: 2, group: 'us', devices: 2 },
        ]);
        expect(
          await store.countReporting({
            tenant: 'acme',
            modelId: 'fraud',
            version: 2,
            groups: ['us'],
            since: 5_500,
          }),
        ).toBe(1);
        expect((await store.listDevices({ tenant: 'acme', group: 'us' })).map((d) => d.deviceId)).toEqual([
          'd1',
          'd4',
        ]);
      }));

    it('round-trips rollups with their HDR histograms and bins, and queries them by series and window', () =>
      withStore(async (store) => {
        const r = emptyRollup();
        r.inferences = 3;
        r.errors = 1;
        r.confidenceSum = 1.5;
        r.confidenceBins[7] = 2;
        r.predictionBins[1] = 2;
        for (const us of [1_000, 2_000, 50_000]) r.latency.recordValue(us);
        const key = {
          res: 'm' as const,
          tenant: 'acme',
          modelId: 'fraud',
          version: 1,
          group: 'eu',
          bucket: 0,
        };
        await store.putRollups([
          { ...key, rollup: r },
          { ...key, bucket: MINUTE_MS, rollup: emptyRollup() },
          { ...key, version: 2, rollup: emptyRollup() },
        ]);
        const back = (await store.getRollups([key])).values().next().value!;
        expect(back.inferences).toBe(3);
        expect(back.confidenceBins[7]).toBe(2);
        expect(back.latency.totalCount).toBe(3);
        expect(back.latency.getValueAtPercentile(100)).toBeGreaterThanOrEqual(49_900);
        r.inferences = 4;
        await store.putRollups([{ ...key, rollup: r }]);
        const rows = await store.queryRollups({
          res: 'm',
          tenant: 'acme',
          modelId: 'fraud',
          versions: [1],
          from: 0,
          to: MINUTE_MS,
        });
        expect(rows.map((x) => x.rollup.inferences)).toEqual([4]);
        expect(
          await store.queryRollups({ res: 'm', tenant: 'acme', versions: [], from: 0, to: 1e12 }),
        ).toEqual([]);
        expect((await store.queryRollups({ res: 'm', tenant: 'acme', from: 0, to: 1e12 })).length).toBe(3);
        expect(await store.firstBucket('m', 'acme', 'fraud', 1)).toBe(0);
        expect((await store.activeSeries('m', 0, 1e12)).length).toBe(2);
      }));

    it('keeps OTAs, releases, rounds (ε summed per model), SLOs and alerts', () =>
      withStore(async (store) => {
        const ota = {
          deviceId: 'd1',
          modelId: 'fraud',
          toVersion: 2,
          tenant: 'acme',
          group: 'eu',
          releaseId: 'r1',
          fromVersion: 1,
          state: 'DOWNLOADING',
          viaDelta: true,
          bytesDownloaded: 10,
          bytesTotal: 100,
          startedAt: 100,
          finishedAt: null,
          updatedAt: 100,
        };
        await store.putOta([ota]);
        await store.putOta([
          { ...ota, state: 'ACTIVE', finishedAt: 200, updatedAt: 200, bytesDownloaded: 100 },
        ]);
        const got = await store.getOta([{ deviceId: 'd1', modelId: 'fraud', toVersion: 2 }]);
        expect([...got.values()][0]).toMatchObject({ state: 'ACTIVE', viaDelta: true, bytesDownloaded: 100 });
        expect((await store.queryOta({ tenant: 'acme', releaseId: 'r1', from: 0, to: 1_000 })).length).toBe(
          1,
        );

        const release = {
          releaseId: 'r1',
          tenant: 'acme',
          modelId: 'fraud',
          version: 2,
          state: 'ROLLING_OUT',
          stage: 'canary',
          percentage: 1,
          groups: ['eu'],
          stageStartedAt: 50,
          updatedAt: 50,
        };
        await store.putRelease(release);
        await store.putRelease({
          ...release,
          stage: '10pct',
          percentage: 10,
          stageStartedAt: 60,
          updatedAt: 60,
        });
        expect(await store.getRelease('r1')).toMatchObject({ stage: '10pct', groups: ['eu'] });
        expect((await store.listReleases({ states: ['ROLLING_OUT'] })).length).toBe(1);
        expect(await store.listReleases({ states: ['COMPLETED'] })).toEqual([]);

        const round = {
          roundId: 'round-1',
          tenant: 'acme',
          modelId: 'fraud',
          baseVersion: 1,
          participants: 3,
          epsilonSpent: 0.5,
          deltaSpent: 1e-6,
          metrics: { loss: 0.1 },
          finishedAt: 10,
        };
        await store.putRound(round);
        await store.putRound(round); // a replay changes nothing
        await store.putRound({ ...round, roundId: 'round-2', epsilonSpent: 0.25 });
        expect(await store.privacySpent()).toEqual([
          { tenant: 'acme', modelId: 'fraud', epsilon: 0.75, delta: 2e-6, rounds: 2 },
        ]);
        expect((await store.getRound('round-1'))?.metrics).toEqual({ loss: 0.1 });

        const slo = { tenant: 'acme', modelId: 'fraud', sli: 'LATENCY_P99' as const, windowMs: 86_400_000 };
        await store.putSlo({ ...slo, target: 0.99, thresholdMs: 50, updatedAt: 1 });
        await store.putSlo({ ...slo, target: 0.995, thresholdMs: 40, updatedAt: 2 });
        await store.putSlo({
          ...slo,
          modelId: null,
          sli: 'FRESHNESS',
          target: 0.9,
          thresholdMs: null,
          updatedAt: 3,
        });
        expect(await store.listSlos({ tenant: 'acme' })).toEqual([
          { ...slo, modelId: null, sli: 'FRESHNESS', target: 0.9, thresholdMs: null, updatedAt: 3 },
          { ...slo, target: 0.995, thresholdMs: 40, updatedAt: 2 },
        ]);
        expect(await store.deleteSlo('acme', 'fraud', 'LATENCY_P99')).toBe(true);
        expect(await store.deleteSlo('acme', 'fraud', 'LATENCY_P99')).toBe(false);

        await store.putAlert({
          id: 'a1',
          kind: 'drift',
          tenant: 'acme',
          modelId: 'fraud',
          version: 2,
          name: 'confidence',
          severity: 'warning',
          state: 'firing',
          detail: { psi: 0.4 },
          at: 10,
        });
        expect((await store.listAlerts({ tenant: 'acme', kind: 'drift' }))[0]?.detail).toEqual({ psi: 0.4 });
      }));

    it('prunes past their retention, and what it keeps survives a reopen', () =>
      withStore(async (store, fixture) => {
        const key = { tenant: 'acme', modelId: 'fraud', version: 1, group: 'eu', rollup: emptyRollup() };
        await store.putRollups([
          { ...key, res: 'm', bucket: 0 },
          { ...key, res: 'm', bucket: 10 * MINUTE_MS },
          { ...key, res: 'h', bucket: 0 },
        ]);
        await store.claimEvents('telemetry', ['old'], 0);
        await store.claimEvents('telemetry', ['new'], 10 * MINUTE_MS);
        const pruned = await store.prune(10 * MINUTE_MS, {
          minuteRollupsMs: 5 * MINUTE_MS,
          hourRollupsMs: 60 * MINUTE_MS,
          inboxMs: 5 * MINUTE_MS,
        });
        expect(pruned).toMatchObject({ rollups: 1, inbox: 1 });
        const reopened = await fixture.reopen();
        try {
          const again = new TelemetryStore(reopened.db, reopened.kind);
          expect((await again.queryRollups({ res: 'm', tenant: 'acme', from: 0, to: 1e12 })).length).toBe(1);
          expect((await again.queryRollups({ res: 'h', tenant: 'acme', from: 0, to: 1e12 })).length).toBe(1);
          expect([...(await again.claimEvents('telemetry', ['old', 'new'], 11 * MINUTE_MS))]).toEqual([
            'old',
          ]);
        } finally {
          await reopened.close();
        }
      }));
  });
}
