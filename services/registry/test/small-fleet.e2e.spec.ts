import { buildOnnx, FRAUD_MLP, initWeights } from '@edgefl/model';
import { describeOnBuses, eventually } from '@edgefl/testing';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { rolloutBucket } from '../src/rollouts/assignment.js';
import { admin, busClientOf, call, deviceIdentity, startRegistry, type TestRegistry } from './helpers.js';

type Answer = { modelId: string; version: number | null; reason: string; releaseId: string | null };
type ReleaseView = { id: string; state: string; stageIndex: number; devices: Record<string, number> };

describeOnBuses('registry rollouts on a small fleet (5 devices, stages 1% → 10% → 50% → 100%)', () => {
  let registry: TestRegistry;
  let url: string;
  const fleet = ['s-1', 's-2', 's-3', 's-4', 's-5'];
  let releaseId = '';

  beforeAll(async () => {
    registry = await startRegistry({ REGISTRY_ROLLOUT_TICK_MS: '50', REGISTRY_MIN_SOAK_MS: '0' });
    url = registry.url;
    await call(url, 'POST', '/v1/tenants', { id: 'small', name: 'Small' });
    await call(url, 'POST', '/v1/tenants/small/models', { id: 'tiny', name: 'Tiny', spec: FRAUD_MLP });
    const res = await fetch(`${url}/v1/models/tiny/versions`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/octet-stream' },
      body: Buffer.from(buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, 11))),
    });
    expect(res.status).toBe(201);
    for (const id of fleet)
      await call(url, 'POST', '/v1/tenants/small/devices', {
        id,
        publicKey: deviceIdentity().publicKeyBase64,
        modelId: 'tiny',
      });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  const answer = (id: string) => call<Answer>(url, 'GET', `/v1/devices/${id}/manifest`);

  it('tells a device there is nothing to install (200) when nothing is released and there is no baseline', async () => {
    const res = await answer('s-1');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ modelId: 'tiny', version: null, reason: 'nothing-to-install' });
  });

  it('drives every stage with at least one device, advancing only on successful installs', async () => {
    const created = await call<ReleaseView>(url, 'POST', '/v1/models/tiny/releases', {
      version: 1,
      // a 5-device fleet cannot give 10 health reports: the release asks for none (see README, sizing)
      gates: { minDevicesReporting: 0 },
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    releaseId = id;
    await call(url, 'POST', `/v1/releases/${id}/start`);
    const installedBy = new Set<string>();
    const view = async () => (await call<ReleaseView>(url, 'GET', `/v1/releases/${id}`)).body;
    // the first stage brings new devices: without an install it does not advance (soak 0, no health needed)
    expect(await view()).toMatchObject({ state: 'ROLLING_OUT', stageIndex: 0, devices: { succeeded: 0 } });
    for (let r = await view(); r.state !== 'COMPLETED'; r = await view()) {
      const stage = r.stageIndex;
      const answers = await Promise.all(fleet.map(async (d) => [d, (await answer(d)).body] as const));
      const inStage = answers.filter(([, a]) => a.reason === 'rollout' && a.releaseId === id);
      const after = await view();
      if (after.state === 'COMPLETED' || after.stageIndex !== stage) continue; // moved on meanwhile: read again
      expect(inStage.length, `stage ${stage}`).toBeGreaterThanOrEqual(1);
      for (const [, a] of answers.filter(([, a]) => a.reason !== 'rollout'))
        expect(a).toMatchObject({ version: null, reason: 'nothing-to-install' });
      for (const [device] of inStage) {
        if (installedBy.has(device)) continue;
        const ok = await call(url, 'POST', `/v1/devices/${device}/ota-status`, {
          modelId: 'tiny',
          releaseId: id,
          toVersion: 1,
          state: 'ACTIVE',
        });
        expect(ok.status).toBe(202);
        installedBy.add(device);
      }
      await eventually(`stage ${stage} to pass`, async () => {
        const next = await view();
        return next.state === 'COMPLETED' || next.stageIndex > stage;
      });
    }
    // the last stage completes on its first new install (minDevicesReporting 0), so a device whose install had not
    // been posted yet is served the release as the stable version instead (asserted below)
    expect(installedBy.size).toBeGreaterThanOrEqual(2);
    const done = (await call<ReleaseView>(url, 'GET', `/v1/releases/${id}`)).body;
    expect(done.state).toBe('COMPLETED');
    for (const d of fleet) expect((await answer(d)).body).toMatchObject({ version: 1, reason: 'stable' });
  });

  it("names the stage's floor device in each stage manifest on the bus, as the manifest endpoint applies it", async () => {
    const { bus, typed } = await busClientOf(registry.bus);
    const stages: Array<{ stage: string; percentage: number; floorBucket: number | null }> = [];
    const sub = await typed.subscribe({
      group: `test-${randomUUID()}`,
      topics: ['edgefl.registry.release.v1'],
      fromBeginning: true,
      handler: (record) => {
        const event = (
          record.value as { event: Record<string, { releaseId: string; rollout?: (typeof stages)[number] }> }
        ).event;
        const manifest = event['io.edgefl.registry.ReleaseManifest'];
        if (manifest?.releaseId === releaseId) stages.push(manifest.rollout!);
      },
    });
    try {
      await eventually('the four stage manifests', async () => stages.length >= 4);
      // the gateway offers a staged manifest to bucket < percentage and to the floor device (bucket <= floorBucket)
      const floor = Math.min(...fleet.map((d) => rolloutBucket(releaseId, d)));
      expect(stages.map((s) => s.percentage)).toEqual([1, 10, 50, 100]);
      for (const s of stages.slice(0, 3)) expect(s.floorBucket).toBe(floor);
      expect(stages[3]!.floorBucket).toBeNull();
    } finally {
      await sub.close();
      await bus.close();
    }
  });
});
