import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreConflictError } from '@edgefl/service-kit';
import type { OpenedDatabase } from './database.js';
import type { ModelVersion, Release } from './records.js';
import { RegistryStore } from './registry-store.js';

/** The one store suite, run against SQLite (always) and PostgreSQL (when reachable). */
export function runRegistryStoreSuite(
  name: string,
  open: () => Promise<{
    database: OpenedDatabase;
    reopen: () => Promise<OpenedDatabase>;
    cleanup: () => Promise<void>;
  }>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`registry store (${name})`, () => {
    let handle: Awaited<ReturnType<typeof open>>;
    let store: RegistryStore;
    beforeAll(async () => {
      handle = await open();
      store = new RegistryStore(handle.database.db, handle.database.kind);
      await store.catalog.createTenant({ id: 't1', name: 'Tenant one', createdAt: 1 });
      await store.catalog.createModel({
        id: 'm1',
        tenantId: 't1',
        name: 'fraud',
        spec: { layers: [1] },
        deltaWindow: 3,
        createdAt: 1,
      });
    });
    afterAll(async () => {
      await handle?.database.close();
      await handle?.cleanup();
    });

    const version = (n: number, extra: Partial<ModelVersion> = {}): ModelVersion => ({
      modelId: 'm1',
      version: n,
      tenantId: 't1',
      label: `v${n}`,
      parentVersion: n > 1 ? n - 1 : null,
      origin: 'UPLOAD',
      roundId: null,
      status: 'active',
      sha256: 'ab'.repeat(32),
      sizeBytes: 5_000_000_000,
      format: 'onnx',
      chunkSize: 65536,
      merkleRoot: 'cd'.repeat(32),
      blobKey: `m1-${n}`,
      wrappedKey: 'wrapped',
      signingKeyId: 'k',
      signature: 'sig',
      metrics: { accuracy: 0.9 },
      provenance: { by: 'test' },
      createdAt: n,
      ...extra,
    });

    it('round-trips tenants, models and versions, large sizes included', async () => {
      await store.catalog.insertVersion(version(1));
      expect(await store.catalog.getTenant('t1')).toMatchObject({ id: 't1', baseline: null });
      expect(await store.catalog.getModel('m1')).toMatchObject({
        spec: { layers: [1] },
        deltaWindow: 3,
        stableVersion: null,
      });
      const v = await store.catalog.getVersion('m1', 1);
      expect(v).toEqual(version(1));
      expect(await store.catalog.getVersion('m1', 99)).toBeNull();
      expect(await store.catalog.getModel('nope')).toBeNull();
    });

    it('refuses a duplicate tenant, model or version with a conflict', async () => {
      await expect(store.catalog.createTenant({ id: 't1', name: 'x', createdAt: 1 })).rejects.toBeInstanceOf(
        StoreConflictError,
      );
      await expect(
        store.catalog.createModel({
          id: 'm1',
          tenantId: 't1',
          name: 'x',
          spec: null,
          deltaWindow: 1,
          createdAt: 1,
        }),
      ).rejects.toBeInstanceOf(StoreConflictError);
      await expect(store.catalog.insertVersion(version(1))).rejects.toBeInstanceOf(StoreConflictError);
    });

    it('lets exactly one of two concurrent creates of one version win', async () => {
      const results = await Promise.allSettled([
        store.transaction(async (tx) => tx.catalog.insertVersion(version(2, { label: 'a' }))),
        store.transaction(async (tx) => tx.catalog.insertVersion(version(2, { label: 'b' }))),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.find((r) => r.status === 'rejected');
      expect(rejected?.reason).toBeInstanceOf(StoreConflictError);
      expect(await store.catalog.latestVersionNumber('m1')).toBe(2);
    });

    it('rolls a failed transaction back completely', async () => {
      await expect(
        store.transaction(async (tx) => {
          await tx.catalog.insertVersion(version(3));
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await store.catalog.getVersion('m1', 3)).toBeNull();
    });

    it('keeps one federated version per round', async () => {
      await store.catalog.insertVersion(version(3, { origin: 'FEDERATED_ROUND', roundId: 'r1' }));
      await expect(
        store.catalog.insertVersion(version(4, { origin: 'FEDERATED_ROUND', roundId: 'r1' })),
      ).rejects.toBeInstanceOf(StoreConflictError);
      expect((await store.catalog.versionForRound('m1', 'r1'))?.version).toBe(3);
    });

    it('deprecates versions and stores deltas', async () => {
      expect(await store.catalog.setVersionStatus('m1', 1, 'deprecated')).toBe(true);
      expect(await store.catalog.setVersionStatus('m1', 42, 'deprecated')).toBe(false);
      expect((await store.catalog.getVersion('m1', 1))?.status).toBe('deprecated');
      await store.catalog.insertDelta({
        modelId: 'm1',
        fromVersion: 1,
        toVersion: 2,
        sha256: 'x',
        sizeBytes: 10,
        mode: 'lossless',
        blobKey: 'd',
        wrappedKey: 'w',
        createdAt: 1,
      });
      await expect(
        store.catalog.insertDelta({
          modelId: 'm1',
          fromVersion: 1,
          toVersion: 2,
          sha256: 'x',
          sizeBytes: 10,
          mode: 'lossless',
          blobKey: 'd',
          wrappedKey: 'w',
          createdAt: 1,
        }),
      ).rejects.toBeInstanceOf(StoreConflictError);
      expect((await store.catalog.listDeltas('m1', 2)).map((d) => d.fromVersion)).toEqual([1]);
    });

    it('registers devices and refuses a replayed assertion id', async () => {
      await store.devices.insertDevice({
        id: 'd1',
        tenantId: 't1',
        publicKey: 'pk',
        modelId: 'm1',
        group: 'eu',
        hardwareClass: 'pos',
        ramBytes: 1 << 30,
        firmware: '2.1.0',
        attributes: { cpu: 'arm' },
        currentVersion: null,
        lastSeenAt: null,
        createdAt: 1,
        revokedAt: null,
        revokeReason: null,
        tokensNotBefore: null,
      });
      await store.devices.updateDevice('d1', { currentVersion: 2, lastSeenAt: 5 });
      expect(await store.devices.getDevice('d1')).toMatchObject({
        group: 'eu',
        ramBytes: 1 << 30,
        currentVersion: 2,
        attributes: { cpu: 'arm' },
      });
      await store.devices.updateDevice('d1', {
        attributes: { cpu: 'riscv' },
        publicKey: 'pk2',
        revokedAt: 7,
        revokeReason: 'lost',
        tokensNotBefore: 8000,
      });
      expect(await store.devices.getDevice('d1')).toMatchObject({
        attributes: { cpu: 'riscv' },
        publicKey: 'pk2',
        revokedAt: 7,
        revokeReason: 'lost',
        tokensNotBefore: 8000,
      });
      expect(await store.devices.useAssertion('j1', 'd1', 100, 10)).toBe(true);
      expect(await store.devices.useAssertion('j1', 'd1', 100, 10)).toBe(false);
    });

    const release = (id: string): Release => ({
      id,
      tenantId: 't1',
      modelId: 'm1',
      version: 2,
      previousVersion: 1,
      state: 'ROLLING_OUT',
      stageIndex: 0,
      stages: [{ name: 'canary', percentage: 1 }],
      gates: { minDevicesReporting: 1 } as Release['gates'],
      targeting: { minRamBytes: null, firmwareRange: null, hardwareClasses: [], groups: [] },
      baseline: null,
      rollForward: null,
      stageStartedAt: 1,
      reason: 'created',
      revision: 0,
      createdAt: 1,
      updatedAt: 1,
    });

    it('allows one live release per model and changes releases by compare-and-set', async () => {
      await store.releases.insertRelease(release('r-a'));
      await expect(store.releases.insertRelease(release('r-b'))).rejects.toBeInstanceOf(StoreConflictError);
      expect(await store.releases.updateRelease('r-a', 0, { state: 'PAUSED', updatedAt: 2 })).toBe(true);
      expect(await store.releases.updateRelease('r-a', 0, { state: 'ROLLING_OUT', updatedAt: 3 })).toBe(
        false,
      );
      expect(await store.releases.getRelease('r-a')).toMatchObject({ state: 'PAUSED', revision: 1 });
      const rollForward = {
        version: 3,
        label: 'rollback-of-v2',
        restoredVersion: 1,
        sha256: 'ab'.repeat(32),
        rollbackOf: 2,
      };
      expect(
        await store.releases.updateRelease('r-a', 1, { state: 'ROLLED_BACK', rollForward, updatedAt: 4 }),
      ).toBe(true);
      expect(await store.releases.getRelease('r-a')).toMatchObject({
        state: 'ROLLED_BACK',
        rollForward,
        revision: 2,
      });
      expect(await store.releases.liveRelease('m1')).toBeNull();
      await store.releases.insertRelease(release('r-b'));
      expect((await store.releases.liveRelease('m1'))?.id).toBe('r-b');
      await store.releases.insertTransition({
        releaseId: 'r-b',
        seq: 1,
        fromState: 'PENDING',
        toState: 'ROLLING_OUT',
        stage: { name: 'canary', percentage: 1 },
        reason: 'go',
        at: 5,
      });
      expect(await store.releases.listTransitions('r-b')).toEqual([
        {
          releaseId: 'r-b',
          seq: 1,
          fromState: 'PENDING',
          toState: 'ROLLING_OUT',
          stage: { name: 'canary', percentage: 1 },
          reason: 'go',
          at: 5,
        },
      ]);
    });

    it('tracks device progress, times out silent devices, and ignores late reports', async () => {
      await store.releases.startDeviceRollout({
        releaseId: 'r-b',
        deviceId: 'd1',
        stageIndex: 0,
        state: 'in_progress',
        startedAt: 10,
        deadlineAt: 20,
        updatedAt: 10,
      });
      await store.releases.startDeviceRollout({
        releaseId: 'r-b',
        deviceId: 'd1',
        stageIndex: 0,
        state: 'in_progress',
        startedAt: 11,
        deadlineAt: 99,
        updatedAt: 11,
      });
      await store.releases.startDeviceRollout({
        releaseId: 'r-b',
        deviceId: 'd2',
        stageIndex: 0,
        state: 'in_progress',
        startedAt: 10,
        deadlineAt: 50,
        updatedAt: 10,
      });
      expect(await store.releases.timeOutDevices(19)).toEqual([]);
      expect(await store.releases.timeOutDevices(20)).toEqual(['r-b']);
      expect(await store.releases.finishDeviceRollout('r-b', 'd1', 'succeeded', 21)).toBe(false);
      expect(await store.releases.finishDeviceRollout('r-b', 'd2', 'succeeded', 21)).toBe(true);
      expect(await store.releases.deviceRolloutCounts('r-b', 0)).toEqual({
        in_progress: 0,
        succeeded: 1,
        failed: 0,
        timed_out: 1,
      });
    });

    it('dedupes health reports by event id and finds the latest window', async () => {
      const h = {
        eventId: 'e1',
        releaseId: 'r-b',
        stage: 'canary',
        windowStart: 0,
        windowEnd: 10,
        devicesReporting: 5,
        otaFailureRate: 0,
        inferenceErrorRate: 0.01,
        p95LatencyMs: 3.5,
        accuracy: null,
        meanConfidence: 0.8,
        driftScore: 0.01,
        baselineVersion: null,
        baselineDevicesReporting: null,
        baselineInferenceErrorRate: null,
        baselineP95LatencyMs: null,
        baselineAccuracy: null,
        baselineMeanConfidence: null,
        receivedAt: 11,
      };
      expect(await store.releases.insertHealth(h)).toBe(true);
      expect(await store.releases.insertHealth(h)).toBe(false);
      expect(
        await store.releases.insertHealth({ ...h, eventId: 'e2', windowEnd: 20, devicesReporting: 7 }),
      ).toBe(true);
      expect((await store.releases.latestHealth('r-b', 'canary', 0))?.devicesReporting).toBe(7);
      expect(await store.releases.latestHealth('r-b', 'canary', 21)).toBeNull();
      // the baseline cohort's SLIs of a window are kept with it
      await store.releases.insertHealth({
        ...h,
        eventId: 'e3',
        windowEnd: 30,
        baselineVersion: 1,
        baselineDevicesReporting: 40,
        baselineInferenceErrorRate: 0.02,
        baselineP95LatencyMs: 4.5,
        baselineAccuracy: 0.9,
        baselineMeanConfidence: 0.75,
      });
      expect(await store.releases.latestHealth('r-b', 'canary', 0)).toMatchObject({
        baselineVersion: 1,
        baselineDevicesReporting: 40,
        baselineInferenceErrorRate: 0.02,
        baselineP95LatencyMs: 4.5,
        baselineAccuracy: 0.9,
        baselineMeanConfidence: 0.75,
      });
    });

    it('keeps an ordered outbox until events are marked published', async () => {
      await store.outbox.enqueueEvent({
        topic: 'a',
        key: 'k',
        tenantId: 't1',
        eventId: 'ev1',
        payload: '{}',
        createdAt: 1,
      });
      await store.outbox.enqueueEvent({
        topic: 'a',
        key: 'k',
        tenantId: 't1',
        eventId: 'ev2',
        payload: '{}',
        createdAt: 2,
      });
      const pending = await store.outbox.pendingEvents(10);
      expect(pending.map((e) => e.eventId)).toEqual(['ev1', 'ev2']);
      await store.outbox.markPublished([pending[0]!.id], 3);
      expect((await store.outbox.pendingEvents(10)).map((e) => e.eventId)).toEqual(['ev2']);
    });

    it('runs inbox effects once per event id, in the transaction of the mark; root-store calls join it', async () => {
      const enqueue = (eventId: string) =>
        // the root store, as a service holding it would call it: it joins the inbox transaction
        store.outbox.enqueueEvent({
          topic: 'inbox.test',
          key: 'k',
          tenantId: 't1',
          eventId,
          payload: '{}',
          createdAt: 1,
        });
      expect(await store.inbox('g', 'in-1', () => enqueue('in-1-effect'))).toBe(true);
      expect(await store.inbox('g', 'in-1', () => enqueue('in-1-again'))).toBe(false);
      expect(await store.inbox('other', 'in-1', () => Promise.resolve())).toBe(true);
      // A failing effect rolls its writes and its mark back: the replay runs it again.
      await expect(
        store.inbox('g', 'in-2', async () => {
          await enqueue('in-2-lost');
          throw new Error('effect failed');
        }),
      ).rejects.toThrow('effect failed');
      expect(await store.inbox('g', 'in-2', () => enqueue('in-2-effect'))).toBe(true);
      const events = (await store.outbox.listEvents({ topic: 'inbox.test' })).map((e) => e.eventId);
      expect(events).toEqual(['in-1-effect', 'in-2-effect']);
      await store.outbox.markPublished(
        (await store.outbox.listEvents({ topic: 'inbox.test' })).map((e) => e.id),
        2,
      );
    });

    it('survives a reopen (migrations are idempotent, data persists)', async () => {
      await handle.database.close();
      handle.database = await handle.reopen();
      store = new RegistryStore(handle.database.db, handle.database.kind);
      expect((await store.catalog.getVersion('m1', 2))?.label).toMatch(/^[ab]$/);
      expect((await store.outbox.pendingEvents(10)).map((e) => e.eventId)).toEqual(['ev2']);
    });
  });
}
