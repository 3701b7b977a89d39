import { randomUUID } from 'node:crypto';
import { type EventBus, type KafkaTopicValues, type TypedBus } from '@edgefl/bus';
import { buildOnnx, float32ToBytes, FRAUD_MLP, initWeights, sha256Hex } from '@edgefl/model';
import { describeOnBuses, eventually, tempDir } from '@edgefl/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { admin, busClientOf, call, deviceIdentity, startRegistryAt } from './helpers.js';

type Version = {
  version: number;
  origin: string;
  roundId: string | null;
  parentVersion: number | null;
  sha256: string;
  provenance: Record<string, unknown>;
  metrics: Record<string, number>;
};

describeOnBuses('registry on the bus', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let registry: Awaited<ReturnType<typeof startRegistryAt>>;
  let url: string;
  let bus: EventBus;
  let typed: TypedBus<KafkaTopicValues>;

  beforeAll(async () => {
    dir = await tempDir('edgefl-registry-bus-');
    registry = await startRegistryAt(dir.path, {
      REGISTRY_ROLLOUT_TICK_MS: '50',
      REGISTRY_MIN_SOAK_MS: '0',
      REGISTRY_MIN_DEVICES: '1',
    });
    url = registry.url;
    ({ bus, typed } = await busClientOf(registry.bus));
    await call(url, 'POST', '/v1/tenants', { id: 'acme', name: 'Acme' });
    await call(url, 'POST', '/v1/tenants/acme/models', { id: 'fraud', name: 'Fraud', spec: FRAUD_MLP });
    const res = await fetch(`${url}/v1/models/fraud/versions`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/octet-stream' },
      body: Buffer.from(buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, 1))),
    });
    expect(res.status).toBe(201);
  });
  afterAll(async () => {
    await bus?.close();
    await registry?.stop();
    await dir?.remove();
  });

  const round = (roundId: string, weights: Buffer, modelId = 'fraud') => ({
    eventId: randomUUID(),
    tenant: 'acme',
    roundId,
    modelId,
    occurredAt: Date.now(),
    event: {
      'io.edgefl.fl.RoundResult': {
        baseVersion: 1,
        weights,
        participants: ['d1', 'd2', 'd3'],
        epsilonSpent: 0.5,
        deltaSpent: 1e-5,
        metrics: { accuracy: 0.93 },
      },
    },
  });

  it("turns the aggregator's round result into a candidate version with provenance, once per round", async () => {
    const w = initWeights(FRAUD_MLP, 1);
    w[0]!.data[0] = 0.5;
    const f32 = Buffer.concat(w.map((t) => Buffer.from(float32ToBytes(t.data))));
    await typed.publish('edgefl.fl.round.v1', [
      { value: round('round-42', Buffer.from('not weights'), 'no-such-model') },
    ]);
    await typed.publish('edgefl.fl.round.v1', [{ value: round('round-42', f32) }]);
    await typed.publish('edgefl.fl.round.v1', [{ value: round('round-42', f32) }]); // a replay with a new event id
    const v2 = await eventually('the candidate version', async () => {
      const res = await call<Version>(url, 'GET', '/v1/models/fraud/versions/2');
      return res.status === 200 ? res.body : undefined;
    });
    expect(v2).toMatchObject({
      origin: 'FEDERATED_ROUND',
      roundId: 'round-42',
      parentVersion: 1,
      sha256: sha256Hex(buildOnnx(FRAUD_MLP, w)),
      metrics: { accuracy: 0.93 },
      provenance: { baseVersion: 1, participants: ['d1', 'd2', 'd3'], epsilonSpent: 0.5 },
    });
    const created: number[] = [];
    const sub = await typed.subscribe({
      group: `t-${randomUUID()}`,
      topics: ['edgefl.model.version.v1'],
      fromBeginning: true,
      handler: (r) => void created.push(r.value.version),
    });
    await eventually('the version events', async () => created.length >= 2);
    await sub.close();
    expect(created).toEqual([1, 2]);
    expect((await call<Version[]>(url, 'GET', '/v1/models/fraud/versions')).body).toHaveLength(2);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/edgefl_bus_dead_lettered_total\{[^}]*topic="edgefl\.fl\.round\.v1"[^}]*\} 1/);
  });

  it('advances a rollout on rollout-health events and tracks devices from OTA statuses', async () => {
    await call(url, 'POST', '/v1/tenants/acme/devices', {
      id: 'pos-1',
      publicKey: deviceIdentity().publicKeyBase64,
      modelId: 'fraud',
    });
    const rel = await call<{ id: string }>(url, 'POST', '/v1/models/fraud/releases', {
      version: 2,
      stages: [50, 100],
    });
    const health = (stage: string) => ({
      eventId: randomUUID(),
      tenant: 'acme',
      releaseId: rel.body.id,
      modelId: 'fraud',
      version: 2,
      stage,
      windowStart: Date.now() - 1000,
      windowEnd: Date.now(),
      devicesReporting: 4,
      otaFailureRate: 0,
      inferenceErrorRate: 0,
      p95LatencyMs: 3,
      accuracy: null,
      meanConfidence: 0.9,
      driftScore: 0.01,
      baselineVersion: null,
      baselineDevicesReporting: null,
      baselineInferenceErrorRate: null,
      baselineP95LatencyMs: null,
      baselineAccuracy: null,
      baselineMeanConfidence: null,
    });
    // pos-1 (the only device of the model: always in the first stage) is offered v2 and installs it
    expect((await call(url, 'GET', '/v1/devices/pos-1/manifest')).body).toMatchObject({
      version: 2,
      reason: 'rollout',
    });
    await typed.publish('edgefl.ota.status.v1', [
      {
        value: {
          eventId: randomUUID(),
          tenant: 'acme',
          deviceId: 'pos-1',
          modelId: 'fraud',
          releaseId: rel.body.id,
          fromVersion: 1,
          toVersion: 2,
          state: 'ACTIVE',
          viaDelta: true,
          errorCode: null,
          errorMessage: null,
          bytesDownloaded: 100,
          bytesTotal: 100,
          timestamp: Date.now(),
        },
      },
    ]);
    // a window with impossible values must not roll anything back: it is dead-lettered
    await typed.publish('edgefl.rollout.health.v1', [
      { value: { ...health('50pct'), otaFailureRate: Number.NaN, inferenceErrorRate: 7 } },
    ]);
    await typed.publish('edgefl.rollout.health.v1', [{ value: health('50pct') }]);
    await eventually(
      'the second stage',
      async () =>
        (await call<{ stageIndex: number }>(url, 'GET', `/v1/releases/${rel.body.id}`)).body.stageIndex === 1,
    );
    await eventually(
      'the device to run v2',
      async () =>
        (await call<{ currentVersion: number }>(url, 'GET', '/v1/devices/pos-1')).body.currentVersion === 2,
    );
    await typed.publish('edgefl.rollout.health.v1', [{ value: health('full') }]);
    await eventually(
      'completion',
      async () =>
        (await call<{ state: string }>(url, 'GET', `/v1/releases/${rel.body.id}`)).body.state === 'COMPLETED',
    );
    expect((await call(url, 'GET', '/v1/models/fraud')).body).toMatchObject({ stableVersion: 2 });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(
      /edgefl_bus_dead_lettered_total\{[^}]*topic="edgefl\.rollout\.health\.v1"[^}]*\} 1/,
    );
  });

  it('publishes every device identity change as a DeviceLifecycle event, keyed by device', async () => {
    const first = deviceIdentity();
    const second = deviceIdentity();
    await call(url, 'POST', '/v1/tenants/acme/devices', { id: 'life-1', publicKey: first.publicKeyBase64 });
    await call(url, 'PATCH', '/v1/devices/life-1', { group: 'eu', hardware: { attributes: { cpu: 'arm' } } });
    const rotated = await call(url, 'POST', '/v1/devices/life-1/rotate-key', {
      publicKey: second.publicKeyBase64,
    });
    expect(rotated.status).toBe(200);
    const revoked = await call<{ tokensNotBefore: number }>(url, 'POST', '/v1/devices/life-1/revoke', {
      reason: 'decommissioned',
    });
    expect(revoked.status).toBe(200);
    const seen: Array<{ key: string; value: KafkaTopicValues['edgefl.device.lifecycle.v1'] }> = [];
    const sub = await typed.subscribe({
      group: `t-${randomUUID()}`,
      topics: ['edgefl.device.lifecycle.v1'],
      fromBeginning: true,
      handler: (r) => {
        if (r.value.deviceId === 'life-1') seen.push({ key: r.key ?? '', value: r.value });
      },
    });
    await eventually('the lifecycle events', async () => seen.length >= 4);
    await sub.close();
    expect(seen.map((e) => e.value.event)).toEqual(['REGISTERED', 'UPDATED', 'KEY_ROTATED', 'REVOKED']);
    expect(seen.every((e) => e.key === 'life-1' && e.value.tenant === 'acme')).toBe(true);
    const keyId = (raw: Uint8Array) => sha256Hex(raw).slice(0, 32);
    const [registered, , rotation, revocation] = seen.map((e) => e.value);
    expect(registered).toMatchObject({
      publicKey: Buffer.from(first.key.publicKey).toString('base64url'),
      keyId: keyId(first.key.publicKey),
      tokensNotBefore: null,
    });
    expect(rotation).toMatchObject({
      publicKey: Buffer.from(second.key.publicKey).toString('base64url'),
      keyId: keyId(second.key.publicKey),
      previousKeyId: keyId(first.key.publicKey),
    });
    expect(rotation!.tokensNotBefore).toBeGreaterThan(0);
    expect(revocation).toMatchObject({
      publicKey: null,
      keyId: null,
      reason: 'decommissioned',
      tokensNotBefore: revoked.body.tokensNotBefore,
    });
  });
});
