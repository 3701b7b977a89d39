import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { mqttDeviceTopic, SingleObjectCodec, type FlUpdate, type OtaStatus } from '@edgefl/contracts';
import { decodeUpdate } from '@edgefl/fl';
import { Ed25519SigningKey, SealPrivateKey, verifyEd25519 } from '@edgefl/keys';
import { FRAUD_MLP, parameterShapes } from '@edgefl/model';
import { announceSkip, freePort, tempDir } from '@edgefl/testing';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STANDARD_SCORE_EDGES } from '../src/commands/device.js';
import { buildCli, startCli, workspaceRoot } from './cli-process.js';
import {
  onnxOf,
  runCliAsync as runCli,
  seedRegistry,
  startBroker,
  startRegistryProcess,
  versionWeights,
  type RegistryProcess,
} from './device-stack.js';

const spec = FRAUD_MLP;
const dataset = join(workspaceRoot, '..', 'shared', 'datasets', 'breast_cancer.csv');
const codec = new SingleObjectCodec();
let registry: RegistryProcess;
let broker: Awaited<ReturnType<typeof startBroker>>;
let dir: Awaited<ReturnType<typeof tempDir>>;
let observer: mqtt.MqttClient;
const seen: Array<{ topic: string; payload: Buffer }> = [];

async function until<T>(what: string, check: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  buildCli();
  dir = await tempDir('edgefl-device-run-');
  registry = await startRegistryProcess();
  broker = await startBroker();
  await seedRegistry(registry, 'fraud', spec, []);
  await registry.upload('fraud', onnxOf(spec, versionWeights(spec, 5, 0)));
  await registry.releaseStable('fraud', 1);
  observer = await mqtt.connectAsync(broker.url, { clientId: 'observer' });
  observer.on('message', (topic, payload) => seen.push({ topic, payload }));
  await observer.subscribeAsync('edgefl/#', { qos: 1 });
}, 240_000);

afterAll(async () => {
  await observer?.endAsync();
  await broker?.close();
  await registry?.stop();
  await dir?.remove();
});

const base = (device: string) => [
  'device',
  'run',
  '--registry',
  registry.url,
  '--mqtt',
  broker.url,
  '--tenant',
  'acme',
  '--device',
  device,
  '--key-file',
  join(dir.path, `${device}.pem`),
  '--data-dir',
  join(dir.path, device),
];

describe('npx edgefl device run', () => {
  it('--once provisions the device (registering it with the admin token), applies the release and exits 0 when ACTIVE; OTA statuses reach the broker', async () => {
    const result = await runCli([...base('cli-1'), '--once', '--model', 'fraud'], {
      REGISTRY_ADMIN_TOKEN: registry.adminToken,
    });
    expect(result.stderr).not.toMatch(/FAILED/);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^ACTIVE fraud v1 \(full, \d+ bytes\)/m);
    const states = await until('the ACTIVE status on the broker', () => {
      const statuses = seen
        .filter((m) => m.topic === mqttDeviceTopic('acme', 'cli-1', 'ota-status'))
        .map((m) => codec.decode(m.payload, 'io.edgefl.ota.OtaStatus') as OtaStatus);
      return statuses.some((s) => s.state === 'ACTIVE') ? statuses.map((s) => s.state) : undefined;
    });
    expect(states).toEqual(['PENDING', 'DOWNLOADING', 'VALIDATING', 'APPLYING', 'ACTIVE']);
    const again = await runCli([...base('cli-1'), '--once']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/ACTIVE fraud v1 \(already installed\)/);
  });

  it('--once exits non-zero with the reason when the device is not registered and no admin token is given', async () => {
    const result = await runCli([...base('cli-unknown'), '--once'], { REGISTRY_ADMIN_TOKEN: '' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/not-registered: .*register it/);
  });

  it('refuses bad flags with one line and exit code 2', async () => {
    const bad = await runCli([
      'device',
      'run',
      '--registry',
      'not a url',
      '--tenant',
      'acme',
      '--device',
      'd',
      '--key-file',
      'k',
      '--data-dir',
      'x',
    ]);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--registry must be a URL/);
    const label = await runCli([...base('cli-x'), '--dataset', join(dir.path, 'none.csv'), '--label', 'y']);
    expect(label.status).toBe(2);
    expect(label.stderr).toMatch(/cannot read/);
    const group = await runCli([...base('cli-x'), '--group', 'has space']);
    expect(group.status).toBe(2);
    expect(group.stderr).toMatch(/--group must be 1-128 printable ASCII/);
  });

  it('runs until stopped: inference on the data set rows, heartbeats, inference logs, and a sealed, signed federated update acknowledged by the gateway', async () => {
    if (!existsSync(dataset)) {
      announceSkip('device run with a data set', `${dataset} is absent`);
      return;
    }
    const device = 'cli-2';
    const run = startCli(
      [
        ...base(device),
        '--model',
        'fraud',
        '--dataset',
        dataset,
        '--label',
        '-1',
        '--infer-interval-ms',
        '20',
        '--heartbeat-ms',
        '200',
        '--sync',
        'event-driven',
        '--cloud',
        'none',
        '--group',
        'eu-west',
        '--feature-summaries',
      ],
      { REGISTRY_ADMIN_TOKEN: registry.adminToken },
      /ota ACTIVE v1/,
    );
    await run.started;
    const topic = (channel: Parameters<typeof mqttDeviceTopic>[2], reply = false) =>
      mqttDeviceTopic('acme', device, channel, { reply });
    const beat = await until('a heartbeat naming the installed model', () =>
      seen
        .filter((m) => m.topic === topic('telemetry'))
        .map((m) => codec.decode(m.payload, 'io.edgefl.device.DeviceTelemetry'))
        .find((t) => t.modelVersion === 1),
    );
    expect(beat).toMatchObject({
      modelId: 'fraud',
      modelVersion: 1,
      tenant: 'acme',
      deviceId: device,
      group: 'eu-west',
    });
    expect(beat.ramTotalBytes).toBeGreaterThan(0);
    // --feature-summaries: a later heartbeat summarises the rows inferred on since the one before, over z-score bins
    const summarised = await until('a heartbeat with feature summaries', () =>
      seen
        .filter((m) => m.topic === topic('telemetry'))
        .map((m) => codec.decode(m.payload, 'io.edgefl.device.DeviceTelemetry'))
        .find((t) => t.featureSummaries !== null),
    );
    const first = summarised.featureSummaries![0]!;
    expect(first).toMatchObject({ name: '0', binEdges: STANDARD_SCORE_EDGES });
    expect(first.count).toBeGreaterThan(0);
    expect(first.bins!.reduce((a, b) => a + b, 0)).toBe(first.count);
    expect(first.min).toBeLessThanOrEqual(first.mean);
    expect(first.mean).toBeLessThanOrEqual(first.max);
    await until('inference logs', () =>
      seen.some((m) => m.topic === topic('inference')) ? true : undefined,
    );
    const log = codec.decode(
      seen.find((m) => m.topic === topic('inference'))!.payload,
      'io.edgefl.inference.InferenceLog',
    );
    expect(log).toMatchObject({
      tenant: 'acme',
      deviceId: device,
      modelId: 'fraud',
      modelVersion: 1,
      source: 'EDGE',
    });
    expect(log.inputHash).toMatch(/^[0-9a-f]{64}$/);
    expect(run.output().stdout).toMatch(/"source":"edge"/);

    // a round: the device trains on its rows, seals to the round key, signs, publishes, and waits for our ack
    const roundKey = SealPrivateKey.generate();
    const roundId = `round-${randomUUID()}`;
    const invitation = codec.encode('io.edgefl.fl.RoundEvent', {
      eventId: randomUUID(),
      tenant: 'acme',
      roundId,
      modelId: 'fraud',
      occurredAt: Date.now(),
      event: {
        'io.edgefl.fl.RoundOpened': {
          baseVersion: 1,
          selectedDevices: [device],
          quorum: 1,
          deadline: Date.now() + 60_000,
          training: { localEpochs: 1, batchSize: 32, learningRate: 0.05 },
          dp: { clipNorm: 5, noiseMultiplier: 0, mode: 'CENTRAL', delta: 1e-5 },
          secureAggregation: {
            mode: 'HPKE',
            threshold: 0,
            roundPublicKey: Buffer.from(roundKey.publicKey),
            roundKeyId: roundKey.keyId,
          },
          strategy: 'fedprox',
          strategyParams: { mu: 0.01 },
        },
      },
    });
    await observer.publishAsync(topic('round'), invitation, { qos: 1 });
    const update = await until('the FL update', () => {
      const m = seen.find((x) => x.topic === topic('fl-update'));
      return m ? (codec.decode(m.payload, 'io.edgefl.fl.FlUpdate') as FlUpdate) : undefined;
    }).catch((error: Error) => {
      throw new Error(`${error.message}; the device said: ${run.output().stderr.slice(-800)}`);
    });
    expect(update).toMatchObject({ roundId, deviceId: device, payloadKind: 'SEALED', sampleCount: 569 });
    const key = Ed25519SigningKey.fromPem(readFileSync(join(dir.path, `${device}.pem`), 'utf8'));
    expect(verifyEd25519(key.publicKey, update.payload, update.signature)).toBe(true);
    const opened = await roundKey.open(update.payload, { info: `edgefl/fl.update/${roundId}`, aad: device });
    const decoded = decodeUpdate(opened);
    expect(decoded.weights.map((l) => l.length)).toEqual(
      parameterShapes(spec).map((s) => s.dims.reduce((a, b) => a * b, 1)),
    );
    const norm = Math.sqrt(decoded.weights.reduce((n, l) => n + l.reduce((a, v) => a + v * v, 0), 0));
    expect(norm).toBeGreaterThan(0);
    expect(norm).toBeLessThanOrEqual(5 * 1.001);
    const ack = codec.encode('io.edgefl.device.MessageAck', {
      eventId: randomUUID(),
      tenant: 'acme',
      correlationId: update.updateId,
      accepted: true,
      errorCode: null,
      errorMessage: null,
      timestamp: Date.now(),
    });
    await observer.publishAsync(topic('fl-update', true), ack, { qos: 1 });
    await until('the device to log the accepted round', () =>
      run.output().stderr.includes(`round ${roundId}: accepted`) ? true : undefined,
    );
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  }, 120_000);

  it('a provisioned device whose registry and broker are unreachable starts offline and serves its installed model', async () => {
    if (!existsSync(dataset)) return;
    const closed = await freePort();
    const args = base('cli-2').map((a) =>
      a === registry.url ? `http://127.0.0.1:${closed}` : a === broker.url ? `mqtt://127.0.0.1:${closed}` : a,
    );
    const run = startCli(
      [...args, '--dataset', dataset, '--label', '-1', '--infer-interval-ms', '20', '--cloud', 'none'],
      {},
      /starting offline/,
    );
    await run.started;
    await until('a prediction made offline', () =>
      run.output().stdout.includes('"source":"edge"') ? true : undefined,
    );
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  }, 60_000);
});
