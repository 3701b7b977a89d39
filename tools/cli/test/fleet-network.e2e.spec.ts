// libs/sim's device classes, network profiles, offline spells and attackers applied by the fleet to real SDK devices
// against the real stack (`up()` in this process, embedded bus, every port free): a 3G device's MQTT and HTTP traffic
// goes through its shaper, a flaky device goes offline (MQTT closed) and comes back, a slow-CPU attacker still
// answers the round, and its update is the sign-flipped one.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnnx, initWeights, mlp } from '@edgefl/model';
import {
  deviceTable,
  Fleet,
  loadDataset,
  NETWORK_PROFILES,
  partitionDataset,
  type FleetDeviceSpec,
} from '@edgefl/sim';
import { eventually, tempDir } from '@edgefl/testing';
import { SERVICES, up, type Stack } from '../src/commands/up.js';
import { buildCli } from './cli-process.js';

const TENANT = 'net';
const MODEL = 'net-model';

describe('fleet network profiles, offline spells and attackers on real SDK devices', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let stack: Stack;
  let fleet: Fleet;
  const registryToken = randomBytes(18).toString('base64url');
  const aggregatorToken = randomBytes(18).toString('base64url');
  const call = async (base: string, token: string, method: string, path: string, body?: unknown) => {
    const raw = body instanceof Uint8Array;
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined
          ? {}
          : { 'content-type': raw ? 'application/octet-stream' : 'application/json' }),
      },
      ...(body === undefined ? {} : { body: raw ? Buffer.from(body) : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Record<string, unknown> };
  };
  const url = (name: string) => stack.services.find((s) => s.name === name)!.url;

  beforeAll(async () => {
    buildCli();
    dir = await tempDir('edgefl-fleet-network-');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      EDGEFL_BUS: 'embedded',
      EDGEFL_KEYS: 'local',
      LOG_LEVEL: 'warn',
      GATEWAY_MQTT_PORT: '0',
      REGISTRY_ADMIN_TOKEN: registryToken,
      AGGREGATOR_ADMIN_TOKEN: aggregatorToken,
      AGGREGATOR_TICK_MS: '100',
    };
    for (const name of SERVICES) env[`${name.toUpperCase()}_PORT`] = '0';
    stack = await up({
      dataDir: join(dir.path, 'stack'),
      env,
      logDestination: pino.destination({ dest: join(dir.path, 'services.log'), sync: true, mkdir: true }),
      log: () => undefined,
    });
    const data = loadDataset({ name: 'iris', seed: 2 });
    const spec = mlp(data.train.cols, [8], 3, 'softmax');
    expect(
      (await call(url('registry'), registryToken, 'POST', '/v1/tenants', { id: TENANT, name: TENANT }))
        .status,
    ).toBe(201);
    expect(
      (
        await call(url('registry'), registryToken, 'POST', `/v1/tenants/${TENANT}/models`, {
          id: MODEL,
          name: MODEL,
          spec,
        })
      ).status,
    ).toBe(201);
    const v1 = await call(
      url('registry'),
      registryToken,
      'POST',
      `/v1/models/${MODEL}/versions`,
      buildOnnx(spec, initWeights(spec, 2, 0.1)),
    );
    expect(v1.status, JSON.stringify(v1.body)).toBe(201);
    // the first version as the tenant's safe baseline: what a new device installs (as the demo does)
    const baseline = await call(url('registry'), registryToken, 'PUT', `/v1/tenants/${TENANT}/baseline`, {
      modelId: MODEL,
      version: 1,
    });
    expect(baseline.status, JSON.stringify(baseline.body)).toBeLessThan(300);
    const parts = partitionDataset(data, { devices: 3, seed: 2, alpha: 100 }).rows.map((rows) =>
      deviceTable(data.train, rows),
    );
    // no loss on the shaped links: a lost manifest request would wait for the next poll, which this test does not need
    const devices: FleetDeviceSpec[] = [
      { id: 'n-3g', train: parts[0]!, network: { ...NETWORK_PROFILES['3g'], lossRate: 0 } },
      {
        id: 'n-flaky',
        train: parts[1]!,
        network: {
          ...NETWORK_PROFILES.flaky,
          lossRate: 0,
          offline: { meanOnlineMs: 1_000, meanOfflineMs: 1_500 },
        },
      },
      {
        id: 'n-slow',
        train: parts[2]!,
        hardware: { class: 'sensor', cpuSpeed: 0.5 },
        attack: { kind: 'sign-flip' },
      },
    ];
    fleet = await Fleet.start({
      registryUrl: url('registry'),
      mqttUrl: stack.services.find((s) => s.name === 'gateway')!.mqttUrl!,
      tenant: TENANT,
      modelId: MODEL,
      adminToken: registryToken,
      dataDir: join(dir.path, 'fleet'),
      devices,
      federated: { optimizer: 'sgd', compression: 'float32', seed: 2 },
      inference: { cloud: 'none' },
      pollIntervalMs: 1_000,
      seed: 2,
    });
  }, 300_000);

  afterAll(async () => {
    await fleet?.stop().catch(() => undefined);
    await stack?.stop().catch(() => undefined);
    await dir?.remove();
  });

  it('shapes the 3G device’s HTTP and MQTT traffic (latency and transfer time before each)', () => {
    const shaper = fleet.devices.find((d) => d.id === 'n-3g')!.network!;
    expect(shaper.stats.requests).toBeGreaterThan(0); // token, release keys, manifest, artifact
    expect(shaper.stats.messages).toBeGreaterThan(0); // heartbeat, OTA statuses
    // at least 120 ms of latency per request and message
    expect(shaper.stats.delayedMs).toBeGreaterThanOrEqual(
      120 * (shaper.stats.requests + shaper.stats.messages),
    );
    expect(fleet.devices.find((d) => d.id === 'n-slow')!.network).toBeNull();
  });

  it('takes the flaky device offline (MQTT closed) and brings it back (reconnected)', async () => {
    const flaky = fleet.devices.find((d) => d.id === 'n-flaky')!;
    await eventually(
      'the flaky device offline',
      () => !flaky.device.online && !flaky.device.connected,
      60_000,
    );
    expect(fleet.offlineSpellsBegun).toBeGreaterThanOrEqual(1);
    await eventually(
      'the flaky device back online',
      () => flaky.device.online && flaky.device.connected,
      60_000,
    );
  });

  it('the slow attacker answers the round like the others, with its update sign-flipped', async () => {
    await eventually('every device on v1', () => fleet.devices.every((d) => d.version === 1), 60_000);
    const roundId = `net-${randomBytes(4).toString('hex')}`;
    const opened = await call(url('aggregator'), aggregatorToken, 'POST', '/v1/rounds', {
      roundId,
      tenant: TENANT,
      modelId: MODEL,
      baseVersion: 1,
      selectedDevices: ['n-3g', 'n-slow'],
      quorum: 2,
      deadline: Date.now() + 120_000,
      training: { localEpochs: 1, batchSize: 8, learningRate: 0.1 },
    });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const report = await eventually(
      'the round done',
      async () => {
        const r = await call(url('aggregator'), aggregatorToken, 'GET', `/v1/rounds/${roundId}/report`);
        return r.body['state'] === 'DONE' || r.body['state'] === 'FAILED' ? r.body : undefined;
      },
      120_000,
    );
    expect(report['state'], JSON.stringify(report)).toBe('DONE');
    expect([...(report['participants'] as string[])].sort()).toEqual(['n-3g', 'n-slow']);
    // the attacker's update points against the honest one: the cosine of the second update to the first is negative
    const db = new DatabaseSync(join(dir.path, 'stack', 'aggregator.sqlite'), { readOnly: true });
    try {
      const rows = db
        .prepare(
          "SELECT device_id, cosine FROM round_updates WHERE round_id = ? AND verdict = 'accepted' ORDER BY seq",
        )
        .all(roundId) as Array<{ device_id: string; cosine: number | null }>;
      expect(rows).toHaveLength(2);
      expect(rows[1]!.cosine).not.toBeNull();
      expect(rows[1]!.cosine!).toBeLessThan(0);
    } finally {
      db.close();
    }
  }, 180_000);
});
