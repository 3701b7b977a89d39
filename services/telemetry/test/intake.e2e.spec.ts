import { randomUUID } from 'node:crypto';
import { KAFKA_TOPICS } from '@edgefl/contracts';
import type { EventBus, KafkaTopicValues, TypedBus } from '@edgefl/bus';
import { eventually } from '@edgefl/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  busClientOf,
  call,
  heartbeat,
  inferenceLog,
  metric,
  otaStatus,
  registered,
  startTelemetry,
  versionCreated,
} from './helpers.js';

const T = 'acme';
const V1 = { modelId: 'fraud', version: 1 };
const V2 = { modelId: 'fraud', version: 2 };
const eu = Array.from({ length: 5 }, (_, i) => `pos-eu-${i}`);
const us = Array.from({ length: 5 }, (_, i) => `pos-us-${i}`);

type Slis = {
  total: { inferences: number; errors: number; successRate: number };
  series: Array<{
    modelId: string;
    version: number;
    group: string;
    slis: {
      inferences: number;
      errors: number;
      successRate: number;
      latencyMs: { p50: number; p95: number; p99: number };
      meanConfidence: number;
      escalationRate: number;
      edgeFallbackRate: number;
      accuracy: number | null;
      confidenceBins: number[];
    };
  }>;
};

describe('telemetry intake', () => {
  let service: Awaited<ReturnType<typeof startTelemetry>>;
  let bus: EventBus;
  let typed: TypedBus<KafkaTopicValues>;
  const ingested = (kind: string) => metric(service.url, 'edgefl_telemetry_events_ingested_total', { kind });
  const dropped = (reason: string) =>
    metric(service.url, 'edgefl_telemetry_events_dropped_total', { reason });
  const slis = async () =>
    (await call<Slis>(service.url, 'GET', `/v1/tenants/${T}/slis?model=fraud&windowMs=3600000`)).body;

  beforeAll(async () => {
    service = await startTelemetry();
    ({ bus, typed } = await busClientOf(service.bus));
    await typed.publish(
      'edgefl.device.lifecycle.v1',
      [...eu, ...us].map((d) => ({ value: registered(T, d) })),
    );
    await typed.publish('edgefl.model.version.v1', [
      { value: versionCreated(T, 'fraud', 1) },
      { value: versionCreated(T, 'fraud', 2) },
    ]);
    await eventually(
      'registrations and versions',
      async () => (await ingested('lifecycle')) === 10 && (await ingested('version')) === 2,
    );
    await typed.publish('edgefl.device.telemetry.v1', [
      ...eu.map((d) => ({ value: heartbeat(T, d, V1, 'eu') })),
      ...us.map((d) => ({ value: heartbeat(T, d, V1, 'us') })),
    ]);
    await eventually('heartbeats', async () => (await ingested('heartbeat')) === 10);
    // eu: 10 logs a device, latencies 1..10 ms, the 10th an error, every 5th escalated, labels on two of them
    const logs = [];
    for (const d of eu)
      for (let i = 1; i <= 10; i++)
        logs.push(
          inferenceLog(T, d, V1, {
            latencyMs: i,
            confidence: 0.8,
            errorCode: i === 10 ? 'RUNTIME' : null,
            source: i % 5 === 0 ? 'CLOUD' : i === 3 ? 'EDGE_FALLBACK' : 'EDGE',
            label: i === 1 ? '1' : i === 2 ? '0' : null, // prediction 0.9 → class 1: one right, one wrong
          }),
        );
    for (const d of us)
      for (let i = 1; i <= 4; i++) logs.push(inferenceLog(T, d, V1, { latencyMs: 20, confidence: 0.6 }));
    await typed.publish(
      'edgefl.inference.log.v1',
      logs.map((value) => ({ value })),
    );
    await eventually('inference logs', async () => (await ingested('inference')) === 70);
  });
  afterAll(async () => {
    await bus?.close();
    await service?.stop();
  });

  it('turns inference logs into SLIs per tenant × model × version × group over a sliding window', async () => {
    const body = await slis();
    expect(body.total).toMatchObject({ inferences: 70, errors: 5 });
    const byGroup = Object.fromEntries(body.series.map((s) => [s.group, s.slis]));
    expect(Object.keys(byGroup).sort()).toEqual(['eu', 'us']);
    expect(byGroup['eu']).toMatchObject({
      inferences: 50,
      errors: 5,
      successRate: 0.9,
      escalationRate: 0.2,
      edgeFallbackRate: 0.1,
      accuracy: 0.5,
    });
    expect(byGroup['eu']!.latencyMs.p50).toBeCloseTo(5, 1);
    expect(byGroup['eu']!.latencyMs.p99).toBeCloseTo(10, 1);
    expect(byGroup['eu']!.meanConfidence).toBeCloseTo(0.8, 6);
    expect(byGroup['eu']!.confidenceBins[8]).toBe(45);
    expect(byGroup['us']).toMatchObject({ inferences: 20, errors: 0, successRate: 1, accuracy: null });
    expect(byGroup['us']!.latencyMs.p95).toBeCloseTo(20, 1);
    // the same counts reach Prometheus, labelled by tenant, model, version, group
    expect(await metric(service.url, 'edgefl_fleet_inference_total', { group: 'eu', outcome: 'error' })).toBe(
      5,
    );
    expect(await metric(service.url, 'edgefl_fleet_escalations_total', { group: 'eu' })).toBe(10);
  });

  it('counts bad input by reason and drops it, leaving every SLI as it was', async () => {
    const before = await slis();
    const kept = inferenceLog(T, eu[0]!, V1);
    await typed.publish('edgefl.inference.log.v1', [{ value: kept }]);
    await eventually('the good log', async () => (await ingested('inference')) === 71);
    const reference = await slis();
    const now = Date.now();
    await typed.publish('edgefl.device.lifecycle.v1', [
      { value: { ...registered(T, us[4]!), event: 'REVOKED' } },
    ]);
    await eventually('the revocation', async () => (await ingested('lifecycle')) === 11);
    await typed.publish('edgefl.inference.log.v1', [
      { value: inferenceLog(T, eu[1]!, V1, { latencyMs: -3 }) },
      { value: inferenceLog(T, eu[1]!, V1, { confidence: 1.5 }) },
      { value: inferenceLog(T, eu[1]!, V1, { confidence: -0.1 }) },
      { value: inferenceLog(T, eu[1]!, V1, { timestamp: now + 3_600_000 }) },
      { value: inferenceLog(T, eu[1]!, V1, { timestamp: now - 3 * 86_400_000 }) },
      { value: inferenceLog(T, 'pos-nobody', V1) },
      { value: inferenceLog('other-tenant', eu[1]!, V1) },
      { value: inferenceLog(T, us[4]!, V1) }, // revoked
      { value: inferenceLog(T, eu[1]!, { modelId: 'fraud', version: 7 }) },
      { value: inferenceLog(T, eu[1]!, { modelId: 'ghost', version: 1 }) },
      { value: kept }, // the same event id again: a replay
      { value: inferenceLog(T, eu[1]!, V1, { prediction: [Number.NaN] }) },
    ]);
    await bus.publish([
      { topic: KAFKA_TOPICS.inferenceLog.name, key: eu[1]!, value: Buffer.from('not avro') },
    ]);
    await typed.publish('edgefl.device.telemetry.v1', [
      { value: heartbeat(T, eu[2]!, V1, 'eu', { cpuPercent: 250 }) },
      { value: heartbeat(T, 'pos-nobody', V1, 'eu') },
    ]);
    await typed.publish('edgefl.ota.status.v1', [
      { value: otaStatus(T, eu[2]!, 'fraud', 1, 'ACTIVE', { bytesDownloaded: -5 }) },
      { value: otaStatus(T, eu[2]!, 'fraud', 9, 'ACTIVE') },
    ]);
    const expected: Record<string, number> = {
      negative_latency: 1,
      confidence_out_of_range: 2,
      future_timestamp: 1,
      stale_timestamp: 1,
      unknown_device: 4,
      unknown_version: 3,
      duplicate: 1,
      invalid_value: 3,
      undecodable: 1,
    };
    await eventually('every drop counted', async () => {
      for (const [reason, n] of Object.entries(expected)) if ((await dropped(reason)) !== n) return false;
      return true;
    });
    const after = await slis();
    expect(after.series).toEqual(reference.series);
    expect(after.total).toEqual(reference.total);
    expect(reference.total.inferences).toBe(before.total.inferences + 1);
    expect(await ingested('inference')).toBe(71);
  });

  it('knows who went silent, the version mix, and never labels a metric with a device id', async () => {
    const devices = (
      await call<Array<{ deviceId: string; state: string; group: string }>>(
        service.url,
        'GET',
        `/v1/tenants/${T}/devices`,
      )
    ).body;
    expect(devices.map((d) => d.deviceId).sort()).toEqual([...eu, ...us.slice(0, 4)].sort()); // the revoked one is gone
    expect(devices.filter((d) => d.state !== 'fresh')).toEqual([]);
    const mix = (await call<unknown[]>(service.url, 'GET', `/v1/tenants/${T}/version-mix?model=fraud`)).body;
    expect(mix).toEqual([
      { modelId: 'fraud', version: 1, group: 'eu', devices: 5 },
      { modelId: 'fraud', version: 1, group: 'us', devices: 4 },
    ]);
    const text = await (await fetch(`${service.url}/metrics`)).text();
    expect(await metric(service.url, 'edgefl_fleet_devices', { group: 'eu', state: 'fresh' })).toBe(5);
    for (const id of [...eu, ...us, 'pos-nobody']) expect(text).not.toContain(id);
    // every label value of the fleet metrics comes from a bounded set
    const labels = new Set<string>();
    for (const line of text.split('\n'))
      if (line.startsWith('edgefl_fleet_') || line.startsWith('edgefl_telemetry_'))
        for (const m of line.matchAll(/(\w+)="([^"]*)"/g)) labels.add(m[1]!);
    expect([...labels].sort()).toEqual(
      expect.arrayContaining(['group', 'kind', 'model', 'outcome', 'reason', 'state', 'tenant', 'version']),
    );
    const allowed = [
      'group',
      'kind',
      'le',
      'model',
      'outcome',
      'reason',
      'service',
      'state',
      'tenant',
      'topic',
      'version',
    ];
    expect([...labels].filter((l) => !allowed.includes(l))).toEqual([]);
    const one = (
      await call<{ deviceId: string; group: string; version: number }>(
        service.url,
        'GET',
        `/v1/devices/${eu[0]}`,
      )
    ).body;
    expect(one).toMatchObject({ deviceId: eu[0], group: 'eu', version: 1, state: 'fresh' });
    expect((await call(service.url, 'GET', '/v1/devices/pos-nobody')).status).toBe(404);
    expect(
      (await call(service.url, 'GET', `/v1/tenants/${T}/slis`, undefined, { authorization: '' })).status,
    ).toBe(401);
  });

  it('tracks OTAs (success rate, time to ACTIVE, bytes delta vs full) and ε spent per model from round results', async () => {
    const t0 = Date.now() - 10_000;
    await typed.publish('edgefl.ota.status.v1', [
      {
        value: otaStatus(T, eu[0]!, 'fraud', 2, 'DOWNLOADING', {
          timestamp: t0,
          viaDelta: true,
          bytesDownloaded: 10,
        }),
      },
      {
        value: otaStatus(T, eu[0]!, 'fraud', 2, 'ACTIVE', {
          timestamp: t0 + 4_000,
          viaDelta: true,
          bytesDownloaded: 300,
        }),
      },
      { value: otaStatus(T, eu[1]!, 'fraud', 2, 'DOWNLOADING', { timestamp: t0 }) },
      {
        value: otaStatus(T, eu[1]!, 'fraud', 2, 'ACTIVE', { timestamp: t0 + 2_000, bytesDownloaded: 5_000 }),
      },
      {
        value: otaStatus(T, eu[2]!, 'fraud', 2, 'FAILED', {
          timestamp: t0 + 1_000,
          errorCode: 'HASH_MISMATCH',
        }),
      },
      { value: otaStatus(T, eu[3]!, 'fraud', 2, 'DOWNLOADING', { timestamp: t0 + 1_000 }) },
    ]);
    const round = (roundId: string, epsilon: number) => ({
      value: {
        eventId: randomUUID(),
        tenant: T,
        roundId,
        modelId: 'fraud',
        occurredAt: Date.now(),
        event: {
          'io.edgefl.fl.RoundResult': {
            baseVersion: 1,
            weights: Buffer.alloc(4),
            participants: ['a', 'b'],
            epsilonSpent: epsilon,
            deltaSpent: 1e-6,
            metrics: { loss: 0.2 },
          },
        },
      },
    });
    await typed.publish('edgefl.fl.round.v1', [round('r1', 0.5), round('r2', 0.25)]);
    await eventually(
      'OTAs and rounds',
      async () => (await ingested('ota')) === 6 && (await ingested('round')) === 2,
    );
    const ota = (await call<Record<string, unknown>>(service.url, 'GET', `/v1/tenants/${T}/ota?model=fraud`))
      .body;
    expect(ota).toMatchObject({
      finished: 3,
      active: 2,
      failed: 1,
      inProgress: 1,
      bytesPerOta: { delta: 300, full: 5_000, deltaCount: 1, fullCount: 1 },
      timeToActiveMs: { p50: 2_000, max: 4_000 },
    });
    expect((ota as { successRate: number }).successRate).toBeCloseTo(2 / 3, 9);
    expect(await metric(service.url, 'edgefl_fleet_ota_total', { outcome: 'active' })).toBe(2);
    expect(await metric(service.url, 'edgefl_fleet_ota_total', { outcome: 'failed' })).toBe(1);
    expect(await metric(service.url, 'edgefl_fleet_dp_epsilon_spent', { tenant: T, model: 'fraud' })).toBe(
      0.75,
    );
    const privacy = (await call<unknown[]>(service.url, 'GET', `/v1/tenants/${T}/privacy`)).body;
    expect(privacy).toEqual([{ tenant: T, modelId: 'fraud', epsilon: 0.75, delta: 2e-6, rounds: 2 }]);
    expect((await call(service.url, 'GET', '/v1/rounds/r1')).body).toMatchObject({
      participants: 2,
      epsilonSpent: 0.5,
    });
    // an ACTIVE OTA moves the device to the new version
    expect((await call(service.url, 'GET', `/v1/devices/${eu[0]}`)).body).toMatchObject({ version: 2 });
    void V2;
  });
});

describe('telemetry memory caps', () => {
  it('evicts device states past TELEMETRY_MAX_DEVICES, counts it, and still counts every event right', async () => {
    const service = await startTelemetry({ TELEMETRY_MAX_DEVICES: '3' });
    const { bus, typed } = await busClientOf(service.bus);
    try {
      const ids = Array.from({ length: 12 }, (_, i) => `cap-${i}`);
      await typed.publish(
        'edgefl.device.lifecycle.v1',
        ids.map((d) => ({ value: registered(T, d) })),
      );
      await typed.publish('edgefl.model.version.v1', [{ value: versionCreated(T, 'fraud', 1) }]);
      const ingested = (kind: string) =>
        metric(service.url, 'edgefl_telemetry_events_ingested_total', { kind });
      await eventually(
        'registrations',
        async () => (await ingested('lifecycle')) === 12 && (await ingested('version')) === 1,
      );
      for (let round = 0; round < 3; round++) {
        await typed.publish(
          'edgefl.inference.log.v1',
          ids.map((d) => ({ value: inferenceLog(T, d, V1) })),
        );
        await eventually(`round ${round}`, async () => (await ingested('inference')) === 12 * (round + 1));
      }
      expect(
        await metric(service.url, 'edgefl_telemetry_series_evicted_total', { kind: 'device' }),
      ).toBeGreaterThan(0);
      expect(await metric(service.url, 'edgefl_telemetry_series', { kind: 'device' })).toBeLessThanOrEqual(3);
      const body = (await call<Slis>(service.url, 'GET', `/v1/tenants/${T}/slis?model=fraud`)).body;
      expect(body.total.inferences).toBe(36);
      const devices = (
        await call<Array<{ deviceId: string }>>(service.url, 'GET', `/v1/tenants/${T}/devices`)
      ).body;
      expect(devices).toHaveLength(12);
    } finally {
      await bus.close();
      await service.stop();
    }
  });
});
