// Secure aggregation end to end (issue 14, deliverable 5): `edgefl up` runs the registry, the aggregator and the
// gateway on one embedded bus; 23 simulated devices — real registered identities, registry-issued tokens, MQTT to
// the gateway — answer a secure-aggregation round with the device SDK's federated client and SecAggParticipant;
// three of them drop out mid-round (at SHARE_KEYS, MASKED_INPUT and CONSISTENCY_CHECK). The global model must equal
// the base plus the plain mean of the survivors' updates within fixed-point precision.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoundEvent, RoundResult } from '@edgefl/contracts';
import { catalogBus, createBus, createSchemaRegistry, type EventBus } from '@edgefl/bus';
import {
  DeviceIdentity,
  FederatedClient,
  MqttLink,
  MqttSecAggChannel,
  RegistryClient,
  SecAggParticipant,
  type Dataset,
  type RoundOutcome,
  type SecAggChannel,
} from '@edgefl/device-sdk';
import { createSeededUniform } from '@edgefl/fl';
import { initWeights, mlp, type ModelSpec } from '@edgefl/model';
import { eventually, freePorts, tempDir } from '@edgefl/testing';
import { buildCli, startCli } from './cli-process.js';
import { onnxOf } from './device-stack.js';

const TENANT = 'acme';
const MODEL = 'sa-model';
const N = 23;
const SPEC: ModelSpec = mlp(6, [5], 3, 'softmax');
const BASE = initWeights(SPEC, 11);
const REGISTRY_TOKEN = `secagg-e2e-registry-${randomUUID()}`;
const AGGREGATOR_TOKEN = `secagg-e2e-aggregator-${randomUUID()}`;
/** Who drops out, and on which request: the device closes its MQTT connection when that request arrives. */
const DROPS: Record<string, string> = {
  'sa-03': 'SHARE_KEYS',
  'sa-09': 'MASKED_INPUT',
  'sa-15': 'CONSISTENCY_CHECK',
};

/** A device's private rows: seeded features, one-hot labels of 3 classes. */
function dataset(seed: number): Dataset {
  const u = createSeededUniform(`secagg-e2e-${seed}`);
  const rows = 24;
  const x = Float32Array.from({ length: rows * 6 }, () => u() * 2 - 1);
  const y = new Float32Array(rows * 3);
  for (let r = 0; r < rows; r++) y[r * 3 + Math.floor(u() * 3)] = 1;
  return { features: 6, rows, x, y };
}

describe('secure aggregation through the gateway and the bus (edgefl up, 23 SDK devices, 3 dropouts)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let up: ReturnType<typeof startCli>;
  let urls: { registry: string; aggregator: string; mqtt: string };
  let bus: EventBus;
  const links: MqttLink[] = [];

  const call = async (base: string, token: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined
          ? {}
          : body instanceof Uint8Array
            ? { 'content-type': 'application/octet-stream' }
            : { 'content-type': 'application/json' }),
      },
      ...(body === undefined
        ? {}
        : { body: body instanceof Uint8Array ? Buffer.from(body) : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Record<string, unknown> };
  };

  beforeAll(async () => {
    buildCli();
    dir = await tempDir('edgefl-secagg-e2e-');
    const [registry, aggregator, telemetry, inference, gateway, mqtt] = await freePorts(6);
    urls = {
      registry: `http://127.0.0.1:${registry}`,
      aggregator: `http://127.0.0.1:${aggregator}`,
      mqtt: `mqtt://127.0.0.1:${mqtt}`,
    };
    up = startCli(
      ['up', '--data-dir', dir.path],
      {
        REGISTRY_PORT: String(registry),
        AGGREGATOR_PORT: String(aggregator),
        TELEMETRY_PORT: String(telemetry),
        INFERENCE_PORT: String(inference),
        GATEWAY_PORT: String(gateway),
        GATEWAY_MQTT_PORT: String(mqtt),
        GATEWAY_JWKS_URL: `${urls.registry}/v1/device-tokens/jwks.json`,
        REGISTRY_ADMIN_TOKEN: REGISTRY_TOKEN,
        // the artifact route takes device tokens only when device auth is required, and the aggregator has an
        // admin token: the base version is read with device auth off (device tokens are still issued and used)
        REGISTRY_DEVICE_AUTH: 'off',
        AGGREGATOR_ADMIN_TOKEN: AGGREGATOR_TOKEN,
        AGGREGATOR_REGISTRY_URL: urls.registry,
        AGGREGATOR_REGISTRY_TOKEN: REGISTRY_TOKEN,
        AGGREGATOR_TICK_MS: '100',
        LOG_LEVEL: 'warn',
      },
      /all services started/,
    );
    await up.started;
    const path = join(dir.path, 'bus.sqlite');
    bus = await createBus({ adapter: 'embedded', path });
    const reg = (method: string, p: string, body?: unknown) =>
      call(urls.registry, REGISTRY_TOKEN, method, p, body);
    expect((await reg('POST', '/v1/tenants', { id: TENANT, name: TENANT })).status).toBe(201);
    const model = await reg('POST', `/v1/tenants/${TENANT}/models`, { id: MODEL, name: MODEL, spec: SPEC });
    expect(model.status, JSON.stringify(model.body)).toBe(201);
    const version = await reg('POST', `/v1/models/${MODEL}/versions`, onnxOf(SPEC, BASE));
    expect(version.status, JSON.stringify(version.body)).toBe(201);
  }, 300_000);

  afterAll(async () => {
    await Promise.all(links.map((l) => l.close().catch(() => undefined)));
    await bus?.close();
    up?.child.kill('SIGTERM');
    if (up) await up.exited;
    await dir?.remove();
  });

  it('runs a round of 23 devices with 3 dropping mid-round; the global model is base + the survivors’ plain mean', async () => {
    const ids = Array.from({ length: N }, (_, i) => `sa-${String(i).padStart(2, '0')}`);
    const identities = ids.map((id) => DeviceIdentity.loadOrCreate(id, join(dir.path, 'keys', `${id}.pem`)));
    for (const identity of identities) {
      const r = await call(urls.registry, REGISTRY_TOKEN, 'POST', `/v1/tenants/${TENANT}/devices`, {
        id: identity.deviceId,
        publicKey: identity.publicKeyBase64,
        modelId: MODEL,
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    // the PKI the devices check each other's protocol signatures against: the registered keys
    const directory = new Map(identities.map((i) => [i.deviceId, i.key.publicKey]));
    const updates = new Map<string, Float32Array[]>();
    const outcomes = new Map<string, RoundOutcome>();
    const roundId = `secagg-e2e-${randomUUID()}`;
    for (const [i, identity] of identities.entries()) {
      const id = identity.deviceId;
      const registry = new RegistryClient({ baseUrl: urls.registry, identity });
      const token = await registry.token();
      let client: FederatedClient | null = null;
      let link: MqttLink | null = null;
      const channel = new MqttSecAggChannel({ link: () => link, key: identity.key });
      // a device that drops closes its connection when the named request arrives, and sends nothing more
      const dropAt = DROPS[id];
      const seen: SecAggChannel = dropAt
        ? {
            send: (m, s) => channel.send(m, s),
            sign: (b) => channel.sign(b),
            onMessage: (round, listener) =>
              channel.onMessage(round, (m) => {
                if (m.phase === dropAt) void link?.close();
                else listener(m);
              }),
          }
        : channel;
      const participant = new SecAggParticipant({ peerKeys: (peer) => directory.get(peer) ?? null });
      client = new FederatedClient(
        {
          tenant: TENANT,
          deviceId: id,
          key: identity.key,
          currentModel: () => ({ spec: SPEC, weights: BASE, version: 1 }),
          data: () => dataset(i),
          conditions: () => ({
            batteryPercent: 100,
            charging: true,
            networkType: 'WIFI',
            idle: true,
            hardwareClass: null,
            freeRamBytes: 1 << 30,
            modelVersion: 1,
          }),
          sendUpdate: () => Promise.reject(new Error('a secure round sends no FlUpdate')),
        },
        {
          secAggChannel: seen,
          // records the update the device hands to the protocol (the test's oracle), then runs the real client
          secureAggregation: {
            participate: (round, update, ch, signal) =>
              participant.participate(
                round,
                async () => {
                  const u = await update();
                  updates.set(
                    id,
                    u.map((l) => Float32Array.from(l)),
                  );
                  return u;
                },
                ch,
                signal,
              ),
          },
        },
      );
      // the gateway accepts a device once its lifecycle event reached it: retry the connection until then
      link = await eventually(`${id} connected`, () =>
        MqttLink.connect(
          { url: urls.mqtt, tenant: TENANT, deviceId: id, password: () => token },
          {
            round: (event: RoundEvent) => {
              if (event.roundId !== roundId) return;
              if ('io.edgefl.fl.RoundOpened' in event.event)
                void client!
                  .onRoundOpened(roundId, event.event['io.edgefl.fl.RoundOpened'])
                  .then((o) => outcomes.set(id, o));
              else if ('io.edgefl.fl.RoundClosed' in event.event) client!.cancel(roundId);
            },
            secagg: (m) => channel.deliver(m),
          },
        ).catch(() => undefined),
      );
      links.push(link);
    }
    // the aggregator knows every device key (lifecycle events) before the round opens
    await eventually(
      'device keys consumed by the aggregator',
      async () => {
        const lag = await bus.consumerLag('aggregator-devices', ['edgefl.device.lifecycle.v1']);
        return lag.length > 0 && lag.every((p) => p.lag === 0);
      },
      60_000,
    );

    const started = await call(urls.aggregator, AGGREGATOR_TOKEN, 'POST', '/v1/rounds', {
      roundId,
      tenant: TENANT,
      modelId: MODEL,
      baseVersion: 1,
      selectedDevices: ids,
      quorum: 15,
      deadline: Date.now() + 240_000,
      training: { localEpochs: 1, batchSize: 8, learningRate: 0.1 },
      dp: { mode: 'none' },
      privacyMode: 'secure-aggregation',
      secureAggregation: { phaseTimeoutMs: 6_000, bound: 1 },
    });
    expect(started.status, JSON.stringify(started.body)).toBe(201);

    const report = await eventually(
      'the round done',
      async () => {
        const r = await call(urls.aggregator, AGGREGATOR_TOKEN, 'GET', `/v1/rounds/${roundId}/report`);
        return r.body['state'] === 'DONE' || r.body['state'] === 'FAILED' ? r.body : undefined;
      },
      200_000,
    );
    expect(report['state'], JSON.stringify(report)).toBe('DONE');
    const survivors = report['participants'] as string[];
    // who dropped before their masked input is not in the sum; who dropped after it is
    expect(survivors).not.toContain('sa-03');
    expect(survivors).not.toContain('sa-09');
    expect(survivors.length).toBeGreaterThanOrEqual(15);
    const sa = report['secureAggregation'] as { buckets: Array<{ dropouts: Record<string, string[]> }> };
    expect(sa.buckets[0]!.dropouts['SHARE_KEYS']).toContain('sa-03');
    expect(sa.buckets[0]!.dropouts['MASKED_INPUT']).toContain('sa-09');

    // the result on the bus (what the registry turns into a version)
    const typed = catalogBus(
      bus,
      createSchemaRegistry({ kind: 'embedded', path: join(dir.path, 'bus.sqlite') }),
    );
    const results: RoundResult[] = [];
    await typed.subscribe({
      group: `secagg-e2e-${randomUUID()}`,
      topics: ['edgefl.fl.round.v1'],
      fromBeginning: true,
      handler: (r) => {
        const e = r.value;
        if (e.roundId === roundId && 'io.edgefl.fl.RoundResult' in e.event)
          results.push(e.event['io.edgefl.fl.RoundResult']);
      },
    });
    await eventually('the RoundResult', async () => results[0]);
    expect(results[0]!.participants).toEqual(survivors);
    const all = new Float32Array(Uint8Array.from(results[0]!.weights as Buffer).buffer);
    // base + the plain mean of the survivors' (clipped) updates: within n·2^-p of it (p ≥ 16), plus float32 rounding
    const n = survivors.length;
    let at = 0;
    let worst = 0;
    for (const [l, t] of BASE.entries()) {
      for (let j = 0; j < t.data.length; j++, at++) {
        const mean = survivors.reduce((a, id) => a + updates.get(id)![l]![j]!, 0) / n;
        worst = Math.max(worst, Math.abs(all[at]! - (t.data[j]! + mean)));
      }
    }
    expect(at).toBe(all.length);
    expect(worst).toBeLessThan(n * 2 ** -16);
    // and the surviving devices' federated clients report their masked input acknowledged
    await eventually('outcomes', async () => (outcomes.size >= n - 1 ? true : undefined));
    for (const id of survivors.filter((s) => s !== 'sa-15'))
      expect(outcomes.get(id)?.status, JSON.stringify(outcomes.get(id))).toBe('accepted');
  }, 300_000);
});
