import { randomUUID } from 'node:crypto';
import {
  applyDelta,
  buildOnnx,
  sha256Hex,
  FRAUD_MLP,
  initWeights,
  readDeltaHeader,
  verifyManifest,
  type NamedTensor,
  type SignedManifest,
} from '@edgefl/model';
import { describeOnBuses, eventually, expectProblem, tempDir } from '@edgefl/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inStage, rolloutBucket } from '../src/rollouts/assignment.js';
import {
  admin,
  busClientOf,
  call,
  deviceIdentity,
  ENGINES,
  engineAvailable,
  engineEnv,
  startRegistryAt,
} from './helpers.js';

function weights(nudge: number): NamedTensor[] {
  const w = initWeights(FRAUD_MLP, 7);
  for (let i = 0; i < nudge; i++) w[0]!.data[i * 5] = w[0]!.data[i * 5]! + 0.001;
  return w;
}
const onnx = (nudge: number) => Buffer.from(buildOnnx(FRAUD_MLP, weights(nudge)));

type ReleaseView = {
  id: string;
  state: string;
  stageIndex: number;
  stage: { name: string; percentage: number };
  reason: string;
  transitions: Array<{ fromState: string; toState: string; reason: string; stage: { name: string } }>;
  devices: Record<string, number>;
  rollForward: {
    version: number;
    label: string;
    restoredVersion: number;
    sha256: string;
    rollbackOf: number;
  } | null;
};
type Manifest = {
  modelId: string;
  version: number;
  reason: string;
  releaseId: string | null;
  fullDownload: boolean;
  manifest: SignedManifest;
  deltas: Array<{ fromVersion: number; url: string; sha256: string; sizeBytes: number }>;
  restores: { version: number; sha256: string; rollbackOf: number; releaseId: string | null } | null;
};

const DEVICES = Array.from({ length: 300 }, (_, i) => `term-${String(i).padStart(3, '0')}`);
const healthy = (stage: string) => ({
  stage,
  windowStart: Date.now() - 60_000,
  windowEnd: Date.now(),
  devicesReporting: 5,
  otaFailureRate: 0,
  inferenceErrorRate: 0.001,
  p95LatencyMs: 4,
  accuracy: 0.9,
  meanConfidence: 0.8,
  driftScore: 0.01,
});

describeOnBuses.each(ENGINES)('registry releases and staged rollouts (%s)', (engine) => {
  if (!engineAvailable(engine)) return it.skip('needs PostgreSQL');
  let cleanup: () => Promise<void>;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let registry: Awaited<ReturnType<typeof startRegistryAt>>;
  let url: string;
  const env = { REGISTRY_ROLLOUT_TICK_MS: '50', REGISTRY_MIN_SOAK_MS: '0', REGISTRY_MIN_DEVICES: '1' };

  const release = (id: string) => call<ReleaseView>(url, 'GET', `/v1/releases/${id}`).then((r) => r.body);
  const until = (id: string, what: string, check: (r: ReleaseView) => boolean) =>
    eventually(what, async () => {
      const r = await release(id);
      return check(r) ? r : undefined;
    });
  const manifest = (device: string, query = '') =>
    call<Manifest>(url, 'GET', `/v1/devices/${device}/manifest${query}`);
  /** Uploads a new version (the next number) and returns its number. */
  async function upload(bytes: Buffer): Promise<number> {
    const res = await fetch(`${url}/v1/models/fraud/versions`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { version: number }).version;
  }
  /** One device of the release's current stage installs it (reports ACTIVE): stages advance only on installs. */
  async function installOne(releaseId: string): Promise<string> {
    for (const id of DEVICES) {
      const m = (await manifest(id)).body;
      if (m.reason !== 'rollout' || m.releaseId !== releaseId) continue;
      const res = await call(url, 'POST', `/v1/devices/${id}/ota-status`, {
        modelId: 'fraud',
        releaseId,
        toVersion: m.version,
        state: 'ACTIVE',
      });
      expect(res.status).toBe(202);
      return id;
    }
    throw new Error(`no device in the current stage of ${releaseId}`);
  }
  async function manifests(): Promise<Map<string, Manifest>> {
    const out = new Map<string, Manifest>();
    for (const id of DEVICES) out.set(id, (await manifest(id)).body);
    return out;
  }

  beforeAll(async () => {
    dir = await tempDir('edgefl-registry-rollout-');
    const selected = await engineEnv(engine);
    cleanup = selected.cleanup;
    registry = await startRegistryAt(dir.path, { ...env, ...selected.env });
    url = registry.url;
    await call(url, 'POST', '/v1/tenants', { id: 'acme', name: 'Acme' });
    await call(url, 'POST', '/v1/tenants/acme/models', {
      id: 'fraud',
      name: 'Fraud',
      spec: FRAUD_MLP,
      deltaWindow: 2,
    });
    for (const [i, bytes] of [onnx(0), onnx(10), onnx(20), onnx(30)].entries()) {
      const res = await fetch(`${url}/v1/models/fraud/versions?version=${i + 1}`, {
        method: 'POST',
        headers: { ...admin, 'content-type': 'application/octet-stream' },
        body: bytes,
      });
      expect(res.status).toBe(201);
    }
    for (let i = 0; i < DEVICES.length; i += 50) {
      await Promise.all(
        DEVICES.slice(i, i + 50).map((id, j) =>
          call(url, 'POST', '/v1/tenants/acme/devices', {
            id,
            publicKey: deviceIdentity().publicKeyBase64,
            modelId: 'fraud',
            group: (i + j) % 2 === 0 ? 'eu' : 'us',
            hardware: { class: 'pos', ramBytes: 1 << 30, firmware: '2.4.0' },
          }).then((r) => expect(r.status).toBe(201)),
        ),
      );
    }
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
    await dir?.remove();
    await cleanup?.();
  });

  it('runs on the selected metadata engine', async () => {
    const ready = await call<{ info: { store: { engine: string } } }>(url, 'GET', '/health/ready');
    expect(ready.body.info.store.engine).toBe(engine);
  });

  it('has nothing to offer before a release or a baseline', async () => {
    const res = await manifest('term-000');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: null, reason: 'nothing-to-install' });
    expect((await manifest('nobody')).status).toBe(404);
  });

  it('completes a one-stage release of v1 once its gates pass; v1 becomes stable', async () => {
    const created = await call<ReleaseView>(url, 'POST', '/v1/models/fraud/releases', {
      version: 1,
      stages: [100],
    });
    expect(created.status).toBe(201);
    expect(created.body.state).toBe('ROLLING_OUT');
    await call(url, 'POST', `/v1/releases/${created.body.id}/health`, healthy('full'));
    // healthy reports alone do not complete it: a device must have installed it
    await new Promise((r) => setTimeout(r, 300));
    expect((await release(created.body.id)).state).toBe('ROLLING_OUT');
    await installOne(created.body.id);
    const done = await until(created.body.id, 'completion', (r) => r.state === 'COMPLETED');
    expect(done.transitions.map((t) => `${t.fromState}->${t.toState}`)).toEqual([
      'PENDING->PENDING',
      'PENDING->ROLLING_OUT',
      'ROLLING_OUT->COMPLETED',
    ]);
    const m = await manifest('term-000');
    expect(m.body).toMatchObject({ version: 1, reason: 'stable' });
    // a completed release takes no more health windows
    expectProblem(
      await call(url, 'POST', `/v1/releases/${created.body.id}/health`, healthy('full')),
      409,
      'https://edgefl.dev/problems/conflict',
    );
  });

  let releaseId = '';
  it('rolls v2 out to exactly the devices whose hash falls in the canary stage, with verifiable manifests', async () => {
    const created = await call<ReleaseView>(url, 'POST', '/v1/models/fraud/releases', {
      version: 2,
      baseline: { p95LatencyMs: 4, accuracy: 0.9, meanConfidence: 0.8 },
      gates: { minSoakMs: 0, minDevicesReporting: 3 },
    });
    expect(created.status).toBe(201);
    releaseId = created.body.id;
    expect(created.body.stage).toEqual({ name: 'canary', percentage: 1 });
    const second = await call(url, 'POST', '/v1/models/fraud/releases', { version: 3 });
    expect(second.status).toBe(409);

    const all = await manifests();
    // the stage's devices by hash, and always the lowest-bucket device (so a stage is never empty)
    const lowest = Math.min(...DEVICES.map((id) => rolloutBucket(releaseId, id)));
    const expected = DEVICES.filter(
      (id) => inStage(rolloutBucket(releaseId, id), 1) || rolloutBucket(releaseId, id) === lowest,
    );
    const got = DEVICES.filter((id) => all.get(id)!.version === 2);
    expect(got).toEqual(expected);
    for (const id of DEVICES) expect(all.get(id)!.reason).toBe(got.includes(id) ? 'rollout' : 'stable');

    const keys = await call<Array<{ keyId: string; publicKey: string }>>(url, 'GET', '/v1/release-keys');
    const trustedKeys = new Map(
      keys.body.map((k) => [k.keyId, new Uint8Array(Buffer.from(k.publicKey, 'base64'))]),
    );
    const sample = all.get('term-001')!;
    expect(verifyManifest(sample.manifest, { trustedKeys, modelId: 'fraud' }).version).toBe(sample.version);
    const tampered = structuredClone(sample.manifest);
    tampered.signed.version += 1;
    expect(() => verifyManifest(tampered, { trustedKeys })).toThrow(/signature/);
    const forged = structuredClone(sample.manifest);
    forged.signed.artifact.sha256 = '0'.repeat(64);
    expect(() => verifyManifest(forged, { trustedKeys })).toThrow(/signature/);
  });

  it('advances stage by stage as health arrives, and includes late joiners by their hash', async () => {
    await call(url, 'POST', `/v1/releases/${releaseId}/health`, {
      ...healthy('canary'),
      devicesReporting: 2,
    });
    expect((await release(releaseId)).stageIndex).toBe(0); // below min devices: waits
    await installOne(releaseId);
    await call(url, 'POST', `/v1/releases/${releaseId}/health`, healthy('canary'));
    const ten = await until(releaseId, 'the 10% stage', (r) => r.stageIndex === 1);
    expect(ten.stage).toEqual({ name: '10pct', percentage: 10 });
    expect(ten.transitions.at(-1)).toMatchObject({
      fromState: 'ROLLING_OUT',
      toState: 'ROLLING_OUT',
      reason: expect.stringMatching(/canary passed/),
    });

    const late = deviceIdentity();
    const lateIds = Array.from({ length: 40 }, (_, i) => `late-${i}`);
    for (const id of lateIds)
      await call(url, 'POST', '/v1/tenants/acme/devices', {
        id,
        publicKey: late.publicKeyBase64,
        modelId: 'fraud',
      });
    for (const id of lateIds) {
      const m = await manifest(id);
      expect(m.body.version, id).toBe(inStage(rolloutBucket(releaseId, id), 10) ? 2 : 1);
    }
    const all = await manifests();
    expect(DEVICES.filter((id) => all.get(id)!.version === 2)).toEqual(
      DEVICES.filter((id) => inStage(rolloutBucket(releaseId, id), 10)),
    );
  });

  it('pauses and resumes by hand; a paused release does not advance', async () => {
    const paused = await call<ReleaseView>(url, 'POST', `/v1/releases/${releaseId}/pause`, {
      reason: 'weekend freeze',
    });
    expect(paused.body.state).toBe('PAUSED');
    expect((await call(url, 'POST', `/v1/releases/${releaseId}/pause`, {})).status).toBe(409);
    await call(url, 'POST', `/v1/releases/${releaseId}/health`, healthy('10pct'));
    await new Promise((r) => setTimeout(r, 300));
    expect(await release(releaseId)).toMatchObject({ state: 'PAUSED', stageIndex: 1 });
    const resumed = await call<ReleaseView>(url, 'POST', `/v1/releases/${releaseId}/resume`);
    expect(resumed.body.state).toBe('ROLLING_OUT');
    // the window posted while paused ended before the stage resumed: it does not count
    await new Promise((r) => setTimeout(r, 300));
    expect(await release(releaseId)).toMatchObject({ state: 'ROLLING_OUT', stageIndex: 1 });
  });

  it('halts and rolls back automatically when an ML health gate fails', async () => {
    await call(url, 'POST', `/v1/releases/${releaseId}/health`, { ...healthy('10pct'), accuracy: 0.8 });
    const back = await until(releaseId, 'rollback', (r) => r.state === 'ROLLED_BACK');
    const tail = back.transitions.slice(-2);
    expect(tail[0]).toMatchObject({
      fromState: 'ROLLING_OUT',
      toState: 'HALTED',
      reason: expect.stringMatching(/accuracy/),
    });
    expect(tail[1]).toMatchObject({ fromState: 'HALTED', toState: 'ROLLED_BACK' });
    expect((await call(url, 'POST', `/v1/releases/${releaseId}/resume`)).status).toBe(409);
  });

  it('rolls FORWARD: every device gets a higher version carrying v1 exactly, which a device on v2 accepts', async () => {
    const v1 = onnx(0);
    const v1Sha = sha256Hex(v1);
    const back = await release(releaseId);
    // the restored version's identity, explicit in the release and in its ROLLED_BACK transition
    expect(back.rollForward).toEqual({
      version: 5,
      label: 'rollback-of-v2',
      restoredVersion: 1,
      sha256: v1Sha,
      rollbackOf: 2,
    });
    expect(back.transitions.at(-1)!.reason).toContain(
      `rolled forward to v5 (rollback-of-v2) restoring v1 (sha256 ${v1Sha})`,
    );
    const v5 = await call<Record<string, unknown>>(url, 'GET', '/v1/models/fraud/versions/5');
    expect(v5.body).toMatchObject({
      version: 5,
      label: 'rollback-of-v2',
      parentVersion: 2,
      origin: 'ROLLBACK',
      sha256: v1Sha,
      provenance: { rollbackOf: 2, restoredVersion: 1, restoredSha256: v1Sha, releaseId },
    });
    expect((await call<{ stableVersion: number }>(url, 'GET', '/v1/models/fraud')).body.stableVersion).toBe(
      5,
    );

    // every device (those that took v2 included) is now offered v5, never the lower v1
    const all = await manifests();
    expect(new Set([...all.values()].map((m) => `${m.version}/${m.reason}`))).toEqual(new Set(['5/stable']));

    const keys = await call<Array<{ keyId: string; publicKey: string }>>(url, 'GET', '/v1/release-keys');
    const trustedKeys = new Map(
      keys.body.map((k) => [k.keyId, new Uint8Array(Buffer.from(k.publicKey, 'base64'))]),
    );
    const onBad = DEVICES.find((id) => inStage(rolloutBucket(releaseId, id), 10))!;
    const m = (await manifest(onBad, '?current=2')).body;
    expect(m).toMatchObject({
      version: 5,
      fullDownload: false,
      restores: { version: 1, sha256: v1Sha, rollbackOf: 2, releaseId },
    });
    const verified = verifyManifest(m.manifest, { trustedKeys, modelId: 'fraud', installedVersion: 2 });
    expect(verified.version).toBeGreaterThan(2);
    expect(verified.artifact.sha256).toBe(v1Sha);
    expect(verified).toMatchObject({ label: 'rollback-of-v2', parentVersion: 2 });
    // the device on v2 rebuilds exactly v1's bytes from the direct delta 2 → 5
    const fromBad = m.deltas.find((d) => d.fromVersion === 2)!;
    const v2 = onnx(10);
    const delta = new Uint8Array(await (await fetch(`${url}${fromBad.url}`)).arrayBuffer());
    expect(sha256Hex(applyDelta(v2, delta))).toBe(v1Sha);
    const artifact = Buffer.from(
      await (await fetch(`${url}/v1/models/fraud/versions/5/artifact`)).arrayBuffer(),
    );
    expect(artifact).toEqual(v1);

    // a device still on v1 gets a tiny delta (every tensor unchanged), even outside the delta window
    const onV1 = (await manifest('term-299', '?current=1')).body;
    expect(onV1.fullDownload).toBe(false);
    const fromV1 = onV1.deltas.find((d) => d.fromVersion === 1)!;
    const tiny = new Uint8Array(await (await fetch(`${url}${fromV1.url}`)).arrayBuffer());
    const header = readDeltaHeader(tiny);
    expect(header.skeleton.same).toBe(true);
    expect(header.tensors.every((t) => t.enc === 'same' && t.length === 0)).toBe(true);
    expect(fromV1.sizeBytes).toBeLessThan(fromBad.sizeBytes); // header only: no tensor data at all
    expect(Buffer.from(applyDelta(v1, tiny))).toEqual(v1);
  });

  it('publishes every transition and the stage manifests on the bus', async () => {
    const { bus, typed } = await busClientOf(registry.bus);
    const seen: string[] = [];
    const versions: number[] = [];
    const origins: string[] = [];
    const transitions: Array<{ toState?: string; rollForward?: unknown }> = [];
    const envelopes: Array<{ signedManifest: string; sha256?: string; version?: number }> = [];
    const sub = await typed.subscribe({
      group: `test-${randomUUID()}`,
      topics: ['edgefl.registry.release.v1', 'edgefl.model.version.v1'],
      fromBeginning: true,
      handler: (record) => {
        const value = record.value as {
          releaseId?: string;
          version?: number;
          origin?: string;
          event?: Record<
            string,
            {
              toState?: string;
              rollout?: { stage: string };
              signedManifest?: string | null;
              sha256?: string;
              version?: number;
              rollForward?: unknown;
            }
          >;
        };
        if (record.topic === 'edgefl.model.version.v1') {
          versions.push(value.version!);
          origins.push(value.origin!);
        } else if (value.releaseId === releaseId) {
          const [kind, body] = Object.entries(value.event!)[0]!;
          if (kind.endsWith('RolloutTransition')) transitions.push(body);
          else envelopes.push({ ...body, signedManifest: body.signedManifest! });
          seen.push(
            kind.endsWith('RolloutTransition')
              ? `transition:${body.toState}`
              : `manifest:${body.rollout!.stage}`,
          );
        }
      },
    });
    try {
      await eventually('the release events', async () => seen.includes('manifest:rollback'));
      expect(seen).toEqual([
        'transition:PENDING',
        'transition:ROLLING_OUT',
        'manifest:canary',
        'transition:ROLLING_OUT',
        'manifest:10pct',
        'transition:PAUSED',
        'transition:ROLLING_OUT',
        'manifest:10pct',
        'transition:HALTED',
        'transition:ROLLED_BACK',
        'manifest:rollback',
      ]);
      expect(versions).toEqual([1, 2, 3, 4, 5]);
      expect(origins.at(-1)).toBe('ROLLBACK');
      // the ROLLED_BACK transition carries the roll-forward as data; every other transition carries null
      const rolledBack = transitions.find((t) => t.toState === 'ROLLED_BACK')!;
      expect(rolledBack.rollForward).toEqual({
        version: 5,
        restoredVersion: 1,
        sha256: sha256Hex(onnx(0)),
        rollbackOf: 2,
      });
      expect(transitions.filter((t) => t !== rolledBack).map((t) => t.rollForward)).toEqual(
        Array(transitions.length - 1).fill(null),
      );
      // every stage manifest carries the signed envelope devices verify, exactly as the manifest route serves it
      const keys = await call<Array<{ keyId: string; publicKey: string }>>(url, 'GET', '/v1/release-keys');
      const trustedKeys = new Map(
        keys.body.map((k) => [k.keyId, new Uint8Array(Buffer.from(k.publicKey, 'base64'))]),
      );
      expect(envelopes.map((e) => e.version)).toEqual([2, 2, 2, 5]);
      // the rollback's manifest names the roll-forward, carrying v1's artifact
      expect(envelopes.at(-1)!.sha256).toBe(sha256Hex(onnx(0)));
      for (const e of envelopes) {
        expect(typeof e.signedManifest).toBe('string');
        const verified = verifyManifest(JSON.parse(e.signedManifest), { trustedKeys, modelId: 'fraud' });
        expect(verified.version).toBe(e.version);
        expect(verified.artifact.sha256).toBe(e.sha256);
      }
    } finally {
      await sub.close();
      await bus.close();
    }
  });

  let stable = 5;
  it('refuses to release a version lower than the stable one (devices would refuse it)', async () => {
    const lower = await call<{ detail: string }>(url, 'POST', '/v1/models/fraud/releases', { version: 3 });
    expect(lower.status).toBe(422);
    expect(lower.body.detail).toMatch(/lower than the stable version 5/);
    expect((await call(url, 'POST', '/v1/models/fraud/releases', { version: 2 })).status).toBe(422);
  });

  it('times out a device that started the update and never reported, failing the gate', async () => {
    const version = await upload(onnx(20)); // 6
    const created = await call<ReleaseView>(url, 'POST', '/v1/models/fraud/releases', {
      version,
      stages: [{ name: 'all', percentage: 100 }],
      gates: { deviceTimeoutMs: 150, minDevicesReporting: 1, minSoakMs: 60_000 },
    });
    const m = await manifest('term-007');
    expect(m.body).toMatchObject({ version, reason: 'rollout' });
    const back = await until(created.body.id, 'rollback after a timeout', (r) => r.state === 'ROLLED_BACK');
    expect(back.transitions.at(-2)!.reason).toMatch(/timed out/);
    expect(back.devices).toMatchObject({ timed_out: 1 });
    // rolled forward again: a new version restoring v5 (itself v1's bytes)
    expect(back.rollForward).toMatchObject({
      version: version + 1,
      restoredVersion: stable,
      rollbackOf: version,
    });
    stable = version + 1;
    expect((await manifest('term-007', `?current=${version}`)).body).toMatchObject({
      version: stable,
      reason: 'stable',
      restores: { version: 5, sha256: sha256Hex(onnx(0)), rollbackOf: version },
    });
  });

  it('keeps a release PENDING until started, and aborts by hand (rolling forward)', async () => {
    const version = await upload(onnx(30));
    const created = await call<ReleaseView>(url, 'POST', '/v1/models/fraud/releases', {
      version,
      start: false,
    });
    expect(created.body.state).toBe('PENDING');
    expect((await manifest('term-007')).body).toMatchObject({ version: stable, reason: 'stable' });
    expect((await call(url, 'POST', `/v1/releases/${created.body.id}/resume`)).status).toBe(409);
    expect((await call<ReleaseView>(url, 'POST', `/v1/releases/${created.body.id}/start`)).body.state).toBe(
      'ROLLING_OUT',
    );
    const aborted = await call<ReleaseView>(url, 'POST', `/v1/releases/${created.body.id}/abort`, {
      reason: 'wrong build',
    });
    expect(aborted.body).toMatchObject({
      state: 'ROLLED_BACK',
      reason: expect.stringMatching(new RegExp(`^wrong build; rolled forward to v${version + 1} `)),
      rollForward: { version: version + 1, restoredVersion: stable, rollbackOf: version },
    });
    stable = version + 1;
    expect((await manifest('term-007')).body).toMatchObject({ version: stable, reason: 'stable' });
    expect((await call(url, 'POST', `/v1/releases/${created.body.id}/abort`, {})).status).toBe(409);
    expect((await call(url, 'POST', '/v1/releases/rel-nope/abort', {})).status).toBe(404);
    expect((await call(url, 'POST', '/v1/models/fraud/releases', { version: 99 })).status).toBe(422);
    const next = await upload(onnx(40));
    expect(
      (await call(url, 'POST', '/v1/models/fraud/releases', { version: next, stages: [50, 10] })).status,
    ).toBe(422);
    expect(
      (await call(url, 'POST', '/v1/models/fraud/releases', { version: next, stages: [10, 50] })).status,
    ).toBe(422);
    const live = await call<Array<{ id: string }>>(url, 'GET', '/v1/releases?model=fraud&live=true');
    expect(live.body).toEqual([]);
  });

  it('aborting a release that never started creates no version (no device was offered it)', async () => {
    const latest = async () =>
      (await call<Array<{ version: number }>>(url, 'GET', '/v1/models/fraud/versions')).body.at(-1)!.version;
    const before = await latest();
    const created = await call<ReleaseView>(url, 'POST', '/v1/models/fraud/releases', {
      version: before,
      start: false,
    });
    const aborted = await call<ReleaseView>(url, 'POST', `/v1/releases/${created.body.id}/abort`, {});
    expect(aborted.body).toMatchObject({ state: 'ROLLED_BACK', rollForward: null });
    expect(await latest()).toBe(before);
  });

  it('counts OTA statuses: a device reporting success is not timed out', async () => {
    const version = (await call<Array<{ version: number }>>(url, 'GET', '/v1/models/fraud/versions')).body.at(
      -1,
    )!.version;
    const created = await call<ReleaseView>(url, 'POST', '/v1/models/fraud/releases', {
      version,
      stages: [100],
      gates: { deviceTimeoutMs: 60_000, minDevicesReporting: 1, minSoakMs: 0 },
    });
    await manifest('term-008');
    const ok = await call(url, 'POST', '/v1/devices/term-008/ota-status', {
      modelId: 'fraud',
      releaseId: created.body.id,
      fromVersion: stable,
      toVersion: version,
      state: 'ACTIVE',
      viaDelta: true,
    });
    expect(ok.status).toBe(202);
    expect(
      (
        await call(url, 'POST', '/v1/devices/ghost/ota-status', {
          modelId: 'fraud',
          toVersion: version,
          state: 'ACTIVE',
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await call(url, 'POST', '/v1/devices/term-008/ota-status', {
          modelId: 'fraud',
          toVersion: version,
          state: 'EXPLODED',
        })
      ).status,
    ).toBe(422);
    await call(url, 'POST', `/v1/releases/${created.body.id}/health`, healthy('full'));
    const done = await until(created.body.id, 'completion', (r) => r.state === 'COMPLETED');
    expect(done.devices).toMatchObject({ succeeded: 1, timed_out: 0 });
    expect(done.rollForward).toBeNull();
    expect((await call(url, 'GET', '/v1/devices/term-008')).body).toMatchObject({ currentVersion: version });
    expect((await manifest('term-009')).body).toMatchObject({ version, reason: 'stable', restores: null });
    stable = version;
  });

  it("gives a device outside a release's targeting the tenant's safe baseline", async () => {
    await call(url, 'PUT', '/v1/tenants/acme/baseline', { modelId: 'fraud', version: 1 });
    const version = await upload(onnx(50));
    const created = await call<ReleaseView>(url, 'POST', '/v1/models/fraud/releases', {
      version,
      stages: [100],
      targeting: { firmwareRange: '>=2.0.0 <3.0.0', groups: ['eu'] },
      gates: { minDevicesReporting: 1, minSoakMs: 0, deviceTimeoutMs: 60_000 },
    });
    expect((await manifest('term-000')).body).toMatchObject({ version, reason: 'rollout' }); // group eu
    expect((await manifest('term-001')).body).toMatchObject({ version: stable, reason: 'stable' }); // group us: not targeted
    await installOne(created.body.id);
    await call(url, 'POST', `/v1/releases/${created.body.id}/health`, healthy('full'));
    await until(created.body.id, 'completion', (r) => r.state === 'COMPLETED');
    expect((await manifest('term-000')).body).toMatchObject({ version, reason: 'stable' });
    // a "us" device cannot run the stable version's targeting: it gets the safe baseline
    expect((await manifest('term-001')).body).toMatchObject({ version: 1, reason: 'baseline' });
    await call(url, 'PATCH', '/v1/devices/term-001', { group: 'eu', hardware: { firmware: '3.1.0' } });
    expect((await manifest('term-001')).body).toMatchObject({ version: 1, reason: 'baseline' }); // firmware out of range
    stable = version;
  });

  it('a roll-forward keeps the targeting of the version it restores', async () => {
    const version = await upload(onnx(60));
    const created = await call<ReleaseView>(url, 'POST', '/v1/models/fraud/releases', {
      version,
      stages: [100],
      gates: { minDevicesReporting: 1, minSoakMs: 60_000, deviceTimeoutMs: 60_000 },
    });
    expect((await manifest('term-002')).body).toMatchObject({ version, reason: 'rollout' });
    const aborted = await call<ReleaseView>(url, 'POST', `/v1/releases/${created.body.id}/abort`, {});
    expect(aborted.body.rollForward).toMatchObject({ version: version + 1, restoredVersion: stable });
    // restored version's release targeted eu with firmware 2.x: term-002 (eu) gets the roll-forward,
    // term-003 (us) stays on the safe baseline as before
    expect((await manifest('term-002', `?current=${version}`)).body).toMatchObject({
      version: version + 1,
      reason: 'stable',
      fullDownload: false,
    });
    expect((await manifest('term-003')).body).toMatchObject({ version: 1, reason: 'baseline' });
    stable = version + 1;
  });

  it('offers only the full artifact to a device older than the compatibility window', async () => {
    const near = await manifest('term-010', `?current=${stable - 1}`);
    expect(near.body.version).toBe(stable);
    expect(near.body.fullDownload).toBe(false);
    expect(near.body.deltas.length).toBeGreaterThan(0);
    const old = await manifest('term-010', '?current=3');
    expect(old.body.version).toBe(stable);
    expect(old.body.fullDownload).toBe(true);
    expect(old.body.deltas).toEqual([]);
    expect(old.body.manifest.signed.deltas).toEqual([]);
    expect((await manifest('term-010', '?current=zero')).status).toBe(400);
  });
});
