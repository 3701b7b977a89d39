import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EventBus, KafkaTopicValues, TypedBus } from '@edgefl/bus';
import { buildOnnx, FRAUD_MLP, initWeights } from '@edgefl/model';
import { eventually, httpClient, startTestService, tempDir, type ServiceBootstrap } from '@edgefl/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busClientOf, call, FAST, heartbeat, inferenceLog, otaStatus, startTelemetry } from './helpers.js';

/**
 * The registry's gates acting on telemetry's RolloutHealth: both apps in one process on one embedded bus file. The
 * registry's entry module is loaded by path at run time (its sources, as vitest runs them), the way `edgefl up`
 * composes services by name: services never import each other.
 */
async function registryBootstrap(): Promise<ServiceBootstrap> {
  const entry = fileURLToPath(new URL(['..', '..', 'registry', 'src', 'main.ts'].join('/'), import.meta.url));
  return ((await import(entry)) as { bootstrap: ServiceBootstrap }).bootstrap;
}

const T = 'acme';
const MODEL = 'fraud';
const ADMIN = `registry-admin-${randomUUID()}`;
const registryCall = httpClient({ authorization: `Bearer ${ADMIN}` });
const fleet = Array.from({ length: 20 }, (_, i) => `gate-${String(i).padStart(2, '0')}`);

type ReleaseView = {
  id: string;
  state: string;
  stageIndex: number;
  transitions: Array<{ toState: string; reason: string }>;
};

describe('rollout gates on telemetry health (registry + telemetry on one embedded bus)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let registry: Awaited<ReturnType<typeof startTestService>>;
  let telemetry: Awaited<ReturnType<typeof startTelemetry>>;
  let bus: EventBus;
  let typed: TypedBus<KafkaTopicValues>;
  /** The version each device runs (what its heartbeats and logs carry). */
  const running = new Map(fleet.map((d) => [d, 1]));

  beforeAll(async () => {
    dir = await tempDir('edgefl-gates-');
    const shared = { EDGEFL_BUS: 'embedded', EDGEFL_BUS_PATH: join(dir.path, 'bus.sqlite') };
    registry = await startTestService(await registryBootstrap(), {
      ...shared,
      REGISTRY_ADMIN_TOKEN: ADMIN,
      REGISTRY_DEVICE_AUTH: 'off',
      REGISTRY_ROLLOUT_TICK_MS: '50',
      REGISTRY_MIN_SOAK_MS: '0',
    });
    telemetry = await startTelemetry({ ...shared, ...FAST, TELEMETRY_HEALTH_MIN_INFERENCES: '20' });
    ({ bus, typed } = await busClientOf(telemetry.bus));
    const url = registry.url;
    expect((await registryCall(url, 'POST', '/v1/tenants', { id: T, name: 'Acme' })).status).toBe(201);
    await registryCall(url, 'POST', `/v1/tenants/${T}/models`, { id: MODEL, name: 'Fraud', spec: FRAUD_MLP });
    for (const seed of [1, 2, 3]) {
      const res = await fetch(`${url}/v1/models/${MODEL}/versions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/octet-stream' },
        body: Buffer.from(buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, seed))),
      });
      expect(res.status).toBe(201);
    }
    for (const id of fleet)
      await registryCall(url, 'POST', `/v1/tenants/${T}/devices`, {
        id,
        publicKey: Buffer.alloc(32, 7).toString('base64'),
        modelId: MODEL,
        group: 'eu',
      });
    // telemetry learns devices and versions from the registry's own events
    await eventually('telemetry to know the fleet', async () => {
      const devices = (await call<unknown[]>(telemetry.url, 'GET', `/v1/tenants/${T}/devices?limit=100`))
        .body;
      return Array.isArray(devices) && devices.length === fleet.length;
    });
  });
  afterAll(async () => {
    await bus?.close();
    await telemetry?.stop();
    await registry?.stop();
    await dir?.remove();
  });

  /** One round of fleet traffic: a heartbeat and a few inference logs per device on the version it runs. */
  async function traffic(latencyOf: (version: number) => number): Promise<void> {
    await typed.publish(
      'edgefl.device.telemetry.v1',
      fleet.map((d) => ({ value: heartbeat(T, d, { modelId: MODEL, version: running.get(d)! }, 'eu') })),
    );
    const logs = fleet.flatMap((d) =>
      Array.from({ length: 5 }, (_, i) => {
        const version = running.get(d)!;
        return inferenceLog(
          T,
          d,
          { modelId: MODEL, version },
          { latencyMs: latencyOf(version) + i * 0.1, confidence: 0.85 },
        );
      }),
    );
    await typed.publish(
      'edgefl.inference.log.v1',
      logs.map((value) => ({ value })),
    );
  }

  /** Devices the current stage holds install the release (manifest, then ACTIVE on the bus as the gateway relays it). */
  async function install(releaseId: string, version: number): Promise<void> {
    const statuses = [];
    for (const d of fleet) {
      if (running.get(d) === version) continue;
      const answer = await registryCall<{ reason: string; releaseId: string | null; version: number }>(
        registry.url,
        'GET',
        `/v1/devices/${d}/manifest?model=${MODEL}`,
      );
      if (answer.body.reason !== 'rollout' || answer.body.releaseId !== releaseId) continue;
      statuses.push({
        value: otaStatus(T, d, MODEL, version, 'ACTIVE', {
          releaseId,
          fromVersion: running.get(d)!,
          bytesDownloaded: 1000,
        }),
      });
      running.set(d, version);
    }
    if (statuses.length > 0) await typed.publish('edgefl.ota.status.v1', statuses);
  }

  async function drive(
    releaseId: string,
    version: number,
    latencyOf: (v: number) => number,
    until: (r: ReleaseView) => boolean,
  ) {
    const view = async () =>
      (await registryCall<ReleaseView>(registry.url, 'GET', `/v1/releases/${releaseId}`)).body;
    return eventually(
      `release ${releaseId} to settle`,
      async () => {
        const r = await view();
        if (until(r)) return r;
        if (r.state === 'ROLLING_OUT') await install(releaseId, version);
        await traffic(latencyOf);
        return false;
      },
      120_000,
      250,
    );
  }

  const release = async (version: number) => {
    const created = await registryCall<{ id: string }>(registry.url, 'POST', `/v1/models/${MODEL}/releases`, {
      version,
      stages: [25, 100],
      gates: { minDevicesReporting: 3, minSoakMs: 0 },
      targeting: { groups: ['eu'] },
      start: true,
    });
    expect(created.status).toBe(201);
    return created.body.id;
  };

  it('advances a healthy canary through every stage to COMPLETED', async () => {
    const id = await release(2);
    const done = await drive(
      id,
      2,
      () => 5,
      (r) => r.state === 'COMPLETED' || r.state === 'ROLLED_BACK',
    );
    expect(done.state, JSON.stringify(done.transitions)).toBe('COMPLETED');
    expect([...running.values()].every((v) => v === 2)).toBe(true);
    // telemetry's view of it: canary vs baseline over the same window
    const seen = (
      await call<{ release: { state: string; version: number } }>(telemetry.url, 'GET', `/v1/releases/${id}`)
    ).body;
    expect(seen.release).toMatchObject({ state: 'COMPLETED', version: 2 });
  });

  it('rolls back a canary slower than its baseline cohort (the release has no baseline of its own)', async () => {
    const id = await release(3);
    // v3 answers in 3× the time of v2, the stable version the rest of the group runs
    const done = await drive(
      id,
      3,
      (v) => (v === 3 ? 15 : 5),
      (r) => r.state === 'ROLLED_BACK' || r.state === 'COMPLETED',
    );
    expect(done.state).toBe('ROLLED_BACK');
    const failure = done.transitions.find((t) => t.toState === 'HALTED');
    expect(failure?.reason).toMatch(/p95Latency .* × baseline 5\.\d+/);
    const health = (
      await call<{ canary: { version: number }; baseline: { version: number } | null }>(
        telemetry.url,
        'GET',
        `/v1/releases/${id}`,
      )
    ).body;
    expect(health.canary.version).toBe(3);
    expect(health.baseline?.version).toBe(2);
  });
});
