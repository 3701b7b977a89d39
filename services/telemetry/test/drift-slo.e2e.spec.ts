import { randomUUID } from 'node:crypto';
import type { DriftAlert, FeatureSummary, SloAlert } from '@edgefl/contracts';
import type { EventBus, KafkaTopicValues, Subscription, TypedBus } from '@edgefl/bus';
import { eventually } from '@edgefl/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  busClientOf,
  call,
  FAST,
  heartbeat,
  inferenceLog,
  metric,
  registered,
  startTelemetry,
  versionCreated,
} from './helpers.js';

const T = 'acme';
const devices = Array.from({ length: 10 }, (_, i) => `drift-${i}`);
const HOUR = 3_600_000;
const feature = (mean: number): FeatureSummary => ({
  name: 'amount',
  count: 50,
  mean,
  std: 1,
  min: mean - 3,
  max: mean + 3,
  bins: null,
  binEdges: null,
});

describe('drift and SLO alerts', () => {
  let service: Awaited<ReturnType<typeof startTelemetry>>;
  let bus: EventBus;
  let typed: TypedBus<KafkaTopicValues>;
  const drift: DriftAlert[] = [];
  const slo: SloAlert[] = [];
  const subs: Subscription[] = [];

  beforeAll(async () => {
    service = await startTelemetry({
      ...FAST,
      TELEMETRY_DRIFT_WINDOW_MS: String(HOUR),
      TELEMETRY_DRIFT_BASELINE_MS: String(HOUR),
      TELEMETRY_DRIFT_MIN_SAMPLES: '100',
      TELEMETRY_SLOS: JSON.stringify([{ tenant: T, sli: 'FRESHNESS', target: 0.9 }]),
    });
    ({ bus, typed } = await busClientOf(service.bus));
    subs.push(
      await typed.subscribe({
        group: `reader-${randomUUID()}`,
        topics: ['edgefl.telemetry.drift.v1'],
        fromBeginning: true,
        handler: (r) => void drift.push(r.value),
      }),
      await typed.subscribe({
        group: `reader-${randomUUID()}`,
        topics: ['edgefl.telemetry.slo.v1'],
        fromBeginning: true,
        handler: (r) => void slo.push(r.value),
      }),
    );
    await typed.publish(
      'edgefl.device.lifecycle.v1',
      devices.map((d) => ({ value: registered(T, d) })),
    );
    await typed.publish('edgefl.model.version.v1', [
      { value: versionCreated(T, 'fraud', 1) },
      { value: versionCreated(T, 'steady', 1) },
    ]);
    await eventually('registrations', async () => {
      const n = await metric(service.url, 'edgefl_telemetry_events_ingested_total', { kind: 'lifecycle' });
      return (
        n === devices.length &&
        (await metric(service.url, 'edgefl_telemetry_events_ingested_total', { kind: 'version' })) === 2
      );
    });
  });
  afterAll(async () => {
    for (const s of subs) await s.close();
    await bus?.close();
    await service?.stop();
  });

  it("raises DriftAlerts when predictions, confidences and features move off the version's baseline window, and none for a steady model", async () => {
    const then = Date.now() - 3 * HOUR;
    const now = Date.now();
    const logs = [];
    for (const d of devices)
      for (let i = 0; i < 30; i++) {
        // fraud v1: confident positives in its first hour, unsure negatives now
        logs.push(
          inferenceLog(
            T,
            d,
            { modelId: 'fraud', version: 1 },
            { timestamp: then + i, prediction: [0.9], confidence: 0.92 },
          ),
        );
        logs.push(
          inferenceLog(
            T,
            d,
            { modelId: 'fraud', version: 1 },
            { timestamp: now - i, prediction: [0.2], confidence: 0.35 },
          ),
        );
        // steady v1: the same mix then and now
        const conf = 0.5 + (i % 5) * 0.1;
        logs.push(
          inferenceLog(
            T,
            d,
            { modelId: 'steady', version: 1 },
            { timestamp: then + i, prediction: [conf], confidence: conf },
          ),
        );
        logs.push(
          inferenceLog(
            T,
            d,
            { modelId: 'steady', version: 1 },
            { timestamp: now - i, prediction: [conf], confidence: conf },
          ),
        );
      }
    await typed.publish('edgefl.device.telemetry.v1', [
      ...devices.map((d) => ({
        value: heartbeat(T, d, { modelId: 'fraud', version: 1 }, 'eu', {
          timestamp: then,
          featureSummaries: [feature(10)],
        }),
      })),
      ...devices.map((d) => ({
        value: heartbeat(T, d, { modelId: 'fraud', version: 1 }, 'eu', { featureSummaries: [feature(20)] }),
      })),
    ]);
    await eventually(
      'heartbeats',
      async () =>
        (await metric(service.url, 'edgefl_telemetry_events_ingested_total', { kind: 'heartbeat' })) === 20,
    );
    await typed.publish(
      'edgefl.inference.log.v1',
      logs.map((value) => ({ value })),
    );
    await eventually('drift alerts for confidence, prediction and the feature', () => {
      const subjects = new Set(drift.map((a) => `${a.subject}:${a.feature ?? ''}`));
      return subjects.has('CONFIDENCE:') && subjects.has('PREDICTION:') && subjects.has('FEATURE:amount');
    });
    for (const a of drift) {
      expect(a).toMatchObject({ tenant: T, modelId: 'fraud', version: 1, metric: 'PSI', threshold: 0.2 });
      expect(a.value).toBeGreaterThan(0.2);
      expect(a.baselineEnd).toBeLessThanOrEqual(a.windowStart);
      expect(a.devices).toBe(devices.length);
    }
    expect(drift.some((a) => a.modelId === 'steady')).toBe(false);
    const stored = (
      await call<Array<{ kind: string; modelId: string; name: string }>>(
        service.url,
        'GET',
        `/v1/tenants/${T}/alerts?kind=drift`,
      )
    ).body;
    expect(stored.map((a) => a.name).sort()).toEqual(['confidence', 'feature:amount', 'prediction']);
    // raised once per window: later evaluations of the same window add none
    const published = drift.length;
    await eventually(
      'more drift evaluations',
      async () => (await metric(service.url, 'edgefl_telemetry_drift_evaluations_total')) >= 3,
    );
    expect(drift.length).toBe(published);
  });

  it('fires multi-window burn-rate SloAlerts from objectives set over the API, and lists their state', async () => {
    const bad = await call(service.url, 'PUT', `/v1/tenants/${T}/slos`, {
      modelId: 'fraud',
      sli: 'LATENCY_P99',
      target: 0.99,
    });
    expect(bad.status).toBe(422);
    expect(
      (await call(service.url, 'PUT', `/v1/tenants/${T}/slos`, { sli: 'AVAILABILITY', target: 0.99 })).status,
    ).toBe(422);
    expect(
      (
        await call(service.url, 'PUT', `/v1/tenants/${T}/slos`, {
          modelId: 'fraud',
          sli: 'AVAILABILITY',
          target: 0.99,
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await call(service.url, 'PUT', `/v1/tenants/${T}/slos`, {
          modelId: 'steady',
          sli: 'LATENCY_P99',
          target: 0.99,
          thresholdMs: 10,
        })
      ).status,
    ).toBe(200);
    const logs = [];
    for (const d of devices)
      for (let i = 0; i < 10; i++) {
        logs.push(
          // every call fails: with the first test's 300 good logs in the last hour, 25 % errors burn 25× a 1 % budget
          inferenceLog(T, d, { modelId: 'fraud', version: 1 }, { errorCode: 'RUNTIME' }),
        );
        logs.push(inferenceLog(T, d, { modelId: 'steady', version: 1 }, { latencyMs: 50 }));
      }
    await typed.publish(
      'edgefl.inference.log.v1',
      logs.map((value) => ({ value })),
    );
    await eventually('page alerts for availability and latency', () => {
      const firing = slo.filter((a) => a.state === 'FIRING' && a.severity === 'PAGE').map((a) => a.sli);
      return firing.includes('AVAILABILITY') && firing.includes('LATENCY_P99');
    });
    const page = slo.find((a) => a.sli === 'AVAILABILITY' && a.severity === 'PAGE')!;
    expect(page).toMatchObject({
      tenant: T,
      modelId: 'fraud',
      target: 0.99,
      longWindowMs: HOUR,
      shortWindowMs: 5 * 60_000,
    });
    expect(page.burnRateLong).toBeGreaterThan(14.4);
    expect(page.burnRateShort).toBeGreaterThan(14.4);
    type Status = { objective: { name: string; sli: string }; firing: string[] };
    const status = (await call<Status[]>(service.url, 'GET', `/v1/tenants/${T}/slos`)).body;
    const byName = Object.fromEntries(status.map((s) => [s.objective.name, s.firing]));
    expect(byName['availability:fraud']).toEqual(['PAGE', 'TICKET']);
    expect(byName['latency_p99:steady']).toEqual(['PAGE', 'TICKET']);
    expect(byName['freshness:*']).toEqual([]); // from TELEMETRY_SLOS; every device is fresh
    expect((await call(service.url, 'DELETE', `/v1/tenants/${T}/slos/AVAILABILITY?model=fraud`)).status).toBe(
      204,
    );
    expect((await call(service.url, 'DELETE', `/v1/tenants/${T}/slos/AVAILABILITY?model=fraud`)).status).toBe(
      404,
    );
    expect((await call(service.url, 'DELETE', `/v1/tenants/${T}/slos/NOPE?model=fraud`)).status).toBe(400);
  });
});
