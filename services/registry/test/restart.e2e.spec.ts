import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { buildOnnx, FRAUD_MLP, initWeights } from '@edgefl/model';
import { describeOnBuses, eventually, tempDir } from '@edgefl/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inStage, rolloutBucket } from '../src/rollouts/assignment.js';
import { admin, call, deviceIdentity, installOn, startRegistryAt } from './helpers.js';

type ReleaseView = {
  id: string;
  state: string;
  stageIndex: number;
  transitions: Array<{ reason: string }>;
  devices: Record<string, number>;
};

describeOnBuses('registry restart on the same data', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const env = { REGISTRY_ROLLOUT_TICK_MS: '50', REGISTRY_MIN_SOAK_MS: '0', REGISTRY_MIN_DEVICES: '1' };
  beforeAll(async () => {
    dir = await tempDir('edgefl-registry-restart-');
  });
  afterAll(() => dir.remove());

  it('resumes rollouts and their timers (stage soak, device timeouts) after a restart on the same data', async () => {
    let registry = await startRegistryAt(dir.path, env);
    let url = registry.url;
    const health = (stage: string) => ({
      stage,
      windowStart: Date.now() - 1000,
      windowEnd: Date.now(),
      devicesReporting: 3,
      otaFailureRate: 0,
      inferenceErrorRate: 0,
      p95LatencyMs: 3,
      accuracy: null,
      meanConfidence: 0.9,
      driftScore: 0,
    });
    await call(url, 'POST', '/v1/tenants', { id: 'acme', name: 'Acme' });
    for (const model of ['soak', 'timeout']) {
      await call(url, 'POST', '/v1/tenants/acme/models', { id: model, name: model, spec: FRAUD_MLP });
      for (const seed of [1, 2]) {
        const res = await fetch(`${url}/v1/models/${model}/versions`, {
          method: 'POST',
          headers: { ...admin, 'content-type': 'application/octet-stream' },
          body: Buffer.from(buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, seed))),
        });
        expect(res.status).toBe(201);
      }
      const first = await call<ReleaseView>(url, 'POST', `/v1/models/${model}/releases`, {
        version: 1,
        stages: [100],
      });
      await installOn(url, { id: first.body.id, tenant: 'acme', modelId: model }, `installer-${model}`);
      await call(url, 'POST', `/v1/releases/${first.body.id}/health`, health('full'));
      await eventually(
        'v1 stable',
        async () =>
          (await call<ReleaseView>(url, 'GET', `/v1/releases/${first.body.id}`)).body.state === 'COMPLETED',
      );
    }
    await call(url, 'POST', '/v1/tenants/acme/devices', {
      id: 'dev-1',
      publicKey: deviceIdentity().publicKeyBase64,
      modelId: 'timeout',
    });

    // a soak timer: the 50% stage is healthy but must soak 4 s before it may advance
    const soak = await call<ReleaseView>(url, 'POST', '/v1/models/soak/releases', {
      version: 2,
      stages: [50, 100],
      gates: { minSoakMs: 4000 },
    });
    await installOn(url, { id: soak.body.id, tenant: 'acme', modelId: 'soak' }, 'installer-soak');
    await call(url, 'POST', `/v1/releases/${soak.body.id}/health`, health('50pct'));
    // a device timer: dev-1 is told to update and then never reports within 3 s
    const timeout = await call<ReleaseView>(url, 'POST', '/v1/models/timeout/releases', {
      version: 2,
      stages: [100],
      gates: { deviceTimeoutMs: 3000, minSoakMs: 600_000 },
    });
    expect(inStage(rolloutBucket(timeout.body.id, 'dev-1'), 100)).toBe(true);
    expect((await call(url, 'GET', '/v1/devices/dev-1/manifest')).body).toMatchObject({
      version: 2,
      reason: 'rollout',
    });
    expect((await call<ReleaseView>(url, 'GET', `/v1/releases/${soak.body.id}`)).body).toMatchObject({
      state: 'ROLLING_OUT',
      stageIndex: 0,
    });
    expect((await call<ReleaseView>(url, 'GET', `/v1/releases/${timeout.body.id}`)).body).toMatchObject({
      state: 'ROLLING_OUT',
      devices: { in_progress: 1 },
    });
    await registry.stop();

    registry = await startRegistryAt(dir.path, env);
    url = registry.url;
    try {
      const advanced = await eventually('the soaked stage to advance after the restart', async () => {
        const r = (await call<ReleaseView>(url, 'GET', `/v1/releases/${soak.body.id}`)).body;
        return r.stageIndex === 1 ? r : undefined;
      });
      expect(advanced.state).toBe('ROLLING_OUT');
      const rolledBack = await eventually('the silent device to time out after the restart', async () => {
        const r = (await call<ReleaseView>(url, 'GET', `/v1/releases/${timeout.body.id}`)).body;
        return r.state === 'ROLLED_BACK' ? r : undefined;
      });
      expect(rolledBack.devices).toMatchObject({ timed_out: 1, in_progress: 0 });
      expect(rolledBack.transitions.at(-2)!.reason).toMatch(/timed out/);
      // rolled forward: v3 carries v1's artifact, so dev-1 (told to install v2) is never offered a lower version
      expect((await call(url, 'GET', '/v1/devices/dev-1/manifest')).body).toMatchObject({
        version: 3,
        reason: 'stable',
        restores: { version: 1, rollbackOf: 2 },
      });
    } finally {
      await registry.stop();
    }
  });

  it('finishes a rollback a crash left HALTED (between the failed gate and the roll-forward)', async () => {
    const own = await tempDir('edgefl-registry-halted-');
    try {
      let registry = await startRegistryAt(own.path, env);
      let url = registry.url;
      await call(url, 'POST', '/v1/tenants', { id: 'acme', name: 'Acme' });
      await call(url, 'POST', '/v1/tenants/acme/models', { id: 'halt', name: 'halt', spec: FRAUD_MLP });
      for (const seed of [1, 2]) {
        const res = await fetch(`${url}/v1/models/halt/versions`, {
          method: 'POST',
          headers: { ...admin, 'content-type': 'application/octet-stream' },
          body: Buffer.from(buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, seed))),
        });
        expect(res.status).toBe(201);
      }
      const first = await call<ReleaseView>(url, 'POST', '/v1/models/halt/releases', {
        version: 1,
        stages: [100],
      });
      await installOn(url, { id: first.body.id, tenant: 'acme', modelId: 'halt' }, 'installer-halt');
      await call(url, 'POST', `/v1/releases/${first.body.id}/health`, {
        stage: 'full',
        windowStart: Date.now() - 1000,
        windowEnd: Date.now(),
        devicesReporting: 3,
        otaFailureRate: 0,
        inferenceErrorRate: 0,
        p95LatencyMs: 3,
        meanConfidence: 0.9,
        driftScore: 0,
      });
      await eventually(
        'v1 stable',
        async () =>
          (await call<ReleaseView>(url, 'GET', `/v1/releases/${first.body.id}`)).body.state === 'COMPLETED',
      );
      const bad = await call<ReleaseView>(url, 'POST', '/v1/models/halt/releases', {
        version: 2,
        stages: [100],
        gates: { minSoakMs: 600_000 },
      });
      await registry.stop();
      // what a crash right after the HALTED transition leaves behind
      const db = new DatabaseSync(join(own.path, 'registry.sqlite'));
      db.prepare(`UPDATE releases SET state = 'HALTED', revision = revision + 1 WHERE id = ?`).run(
        bad.body.id,
      );
      db.close();

      registry = await startRegistryAt(own.path, env);
      url = registry.url;
      try {
        const back = await eventually('the left-over rollback to finish', async () => {
          const r = (
            await call<ReleaseView & { rollForward: unknown }>(url, 'GET', `/v1/releases/${bad.body.id}`)
          ).body;
          return r.state === 'ROLLED_BACK' ? r : undefined;
        });
        expect(back.rollForward).toMatchObject({ version: 3, restoredVersion: 1, rollbackOf: 2 });
        expect(back.transitions.at(-1)!.reason).toMatch(/resumed.*rolled forward to v3/);
      } finally {
        await registry.stop();
      }
    } finally {
      await own.remove();
    }
  });
});
