import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { mqttDeviceTopic, SingleObjectCodec, type InferenceLog } from '@edgefl/contracts/edge';
import { buildOnnx, FRAUD_MLP, initWeights, logisticRegression, sha256Hex } from '@edgefl/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttLink } from '../transport/mqtt-link.js';
import { MqttEscalator } from './escalation.js';
import { loadModel, ModelRunner } from './model-runner.js';
import { TieredInference, type Escalator } from './tiered.js';

const codec = new SingleObjectCodec();
const fraud = (seed: number, std = 0.02) => buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, seed, std));
const load = (bytes: Uint8Array, version: number) =>
  loadModel({ modelId: 'fraud', version, sha256: sha256Hex(bytes) }, bytes);
const input = () => new Float32Array(30).map((_, i) => Math.sin(i));

let aedes: Aedes;
let server: ReturnType<typeof createServer>;
let url = '';
beforeAll(async () => {
  aedes = await Aedes.createBroker();
  server = createServer(aedes.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => aedes.close(() => server.close(() => r())));
});

describe('model runner', () => {
  it('hot-swaps under continuous load without a failed or dropped request; the old session is released after it drains', async () => {
    const runner = new ModelRunner();
    runner.swap(await load(fraud(1), 1));
    let failed = 0;
    let done = 0;
    const versions = new Set<number>();
    let stop = false;
    const clients = Array.from({ length: 8 }, async () => {
      while (!stop) {
        try {
          const r = await runner.run(input());
          versions.add(r.model.version);
          done++;
        } catch {
          failed++;
        }
      }
    });
    for (let v = 2; v <= 6; v++) {
      await new Promise((r) => setTimeout(r, 20));
      runner.swap(await load(fraud(v), v));
    }
    await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await Promise.all(clients);
    expect(failed).toBe(0);
    expect(done).toBeGreaterThan(0);
    expect(versions.has(6)).toBe(true);
    expect(runner.current?.version).toBe(6);
    expect(runner.released).toBe(5);
    await runner.close();
  });

  it('refuses an input of the wrong width with a clear error', async () => {
    const runner = new ModelRunner();
    await expect(runner.run(input())).rejects.toThrow(/no model/);
    runner.swap(await load(fraud(1), 1));
    await expect(runner.run(new Float32Array(3))).rejects.toThrow(/expected 1 × 30/);
    await runner.close();
  });
});

describe('tiered inference', () => {
  const logs: InferenceLog[] = [];
  // a near-zero model answers ~0.5 (confidence 0.5): every input is escalated
  const unsure = () => load(fraud(1, 0), 1);

  it('answers on the edge above the threshold and logs version, latency, confidence, source and input hash', async () => {
    const runner = new ModelRunner();
    const confident = buildOnnx(logisticRegression(30), [
      { name: 'dense0.weight', dims: [30, 1], data: new Float32Array(30).fill(2) },
      { name: 'dense0.bias', dims: [1], data: new Float32Array([3]) },
    ]);
    runner.swap(await loadModel({ modelId: 'fraud', version: 4, sha256: sha256Hex(confident) }, confident));
    const tiered = new TieredInference({
      tenant: 'acme',
      deviceId: 'd1',
      runner,
      log: (l) => logs.push(l),
      escalationThreshold: 0.6,
    });
    const x = new Float32Array(30).fill(1);
    const p = await tiered.predict(x);
    expect(p).toMatchObject({ source: 'edge', modelVersion: 4, label: '1', stage: 0 });
    expect(p.confidence).toBeGreaterThan(0.99);
    expect(logs.at(-1)).toMatchObject({
      source: 'EDGE',
      modelVersion: 4,
      deviceId: 'd1',
      inputHash: sha256Hex(new Uint8Array(x.buffer)),
    });
    expect(logs.at(-1)!.latencyMs).toBeGreaterThanOrEqual(0);
    await runner.close();
  });

  it('escalates low-confidence inputs to the cloud over MQTT infer request/reply, and labels the answer cloud', async () => {
    const link = await MqttLink.connect({ url, tenant: 'acme', deviceId: 'd2', password: () => 'token' });
    const cloud = await mqtt.connectAsync(url, { clientId: 'cloud' });
    const requests: string[] = [];
    cloud.on('message', (_topic, payload) => {
      const req = codec.decode(payload, 'io.edgefl.inference.InferenceRequest');
      requests.push(req.correlationId);
      expect(req.input).toHaveLength(30);
      void cloud.publishAsync(
        mqttDeviceTopic('acme', 'd2', 'infer', { reply: true }),
        codec.encode('io.edgefl.inference.InferenceReply', {
          eventId: randomUUID(),
          tenant: 'acme',
          deviceId: 'd2',
          correlationId: req.correlationId,
          modelId: req.modelId,
          modelVersion: 9,
          prediction: [0.97],
          label: '1',
          confidence: 0.97,
          errorCode: null,
          errorMessage: null,
          timestamp: Date.now(),
        }),
        { qos: 1 },
      );
    });
    await cloud.subscribeAsync(mqttDeviceTopic('acme', 'd2', 'infer'), { qos: 1 });
    const runner = new ModelRunner();
    runner.swap(await unsure());
    const tiered = new TieredInference({
      tenant: 'acme',
      deviceId: 'd2',
      runner,
      escalator: new MqttEscalator(link, { tenant: 'acme', deviceId: 'd2' }),
      escalationTimeoutMs: 10_000,
      log: (l) => logs.push(l),
    });
    const p = await tiered.predict(input());
    expect(p).toMatchObject({ source: 'cloud', modelVersion: 9, label: '1' });
    expect(p.prediction[0]).toBeCloseTo(0.97, 5);
    expect(requests).toHaveLength(1);
    expect(logs.at(-1)).toMatchObject({ source: 'CLOUD', errorCode: null });
    await cloud.endAsync();
    await link.close();
    await runner.close();
  });

  it('drops and counts inbound garbage and payloads that do not match their channel; the link keeps working', async () => {
    const link = await MqttLink.connect({ url, tenant: 'acme', deviceId: 'd5', password: () => 'token' });
    const releases: unknown[] = [];
    link.setHandlers({ release: (m) => releases.push(m) });
    const other = await mqtt.connectAsync(url, { clientId: 'noise' });
    await other.publishAsync(mqttDeviceTopic('acme', 'd5', 'release'), Buffer.from('not avro'), { qos: 1 });
    const wrongSchema = codec.encode('io.edgefl.device.MessageAck', {
      eventId: randomUUID(),
      tenant: 'acme',
      correlationId: 'x',
      accepted: true,
      errorCode: null,
      errorMessage: null,
      timestamp: 1,
    });
    await other.publishAsync(mqttDeviceTopic('acme', 'd5', 'round'), wrongSchema, { qos: 1 });
    await other.publishAsync(mqttDeviceTopic('acme', 'd5', 'fl-update', { reply: true }), wrongSchema, {
      qos: 1,
    });
    for (let i = 0; i < 200 && link.stats.badInbound + link.stats.unmatchedReplies < 3; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(link.stats).toMatchObject({ badInbound: 2, unmatchedReplies: 1 });
    expect(releases).toHaveLength(0);
    expect(link.connected).toBe(true);
    await other.endAsync();
    await link.close();
  });

  it('falls back to the local answer (edge_fallback) when the cloud times out or fails', async () => {
    const runner = new ModelRunner();
    runner.swap(await unsure());
    const never: Escalator = {
      infer: (_r, signal) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
    };
    const broken: Escalator = {
      infer: async () => ({
        prediction: new Float32Array([Number.NaN]),
        confidence: null,
        label: null,
        modelVersion: null,
      }),
    };
    for (const [escalator, code] of [
      [never, 'ESCALATION_TIMEOUT'],
      [broken, 'ESCALATION_REJECTED'],
    ] as const) {
      const tiered = new TieredInference({
        tenant: 'acme',
        deviceId: 'd3',
        runner,
        escalator,
        escalationTimeoutMs: 50,
        log: (l) => logs.push(l),
      });
      const p = await tiered.predict(input());
      expect(p.source).toBe('edge_fallback');
      expect(p.modelVersion).toBe(1);
      expect(logs.at(-1)).toMatchObject({ source: 'EDGE_FALLBACK', errorCode: code });
    }
    await runner.close();
  });

  it('runs a cascade: a cheap first stage answers when it is confident, the next stage otherwise', async () => {
    const sure = buildOnnx(logisticRegression(30), [
      { name: 'dense0.weight', dims: [30, 1], data: new Float32Array(30).fill(1) },
      { name: 'dense0.bias', dims: [1], data: new Float32Array([0]) },
    ]);
    const stage0 = await loadModel({ modelId: 'tiny', version: 1, sha256: sha256Hex(sure) }, sure);
    const runner = new ModelRunner();
    runner.swap(await load(fraud(2), 3));
    const tiered = new TieredInference({
      tenant: 'acme',
      deviceId: 'd4',
      runner,
      cascade: [{ model: stage0, threshold: 0.9 }],
    });
    expect(await tiered.predict(new Float32Array(30).fill(1))).toMatchObject({
      stage: 0,
      modelId: 'tiny',
      source: 'edge',
    });
    const hesitant = await tiered.predict(new Float32Array(30).fill(0));
    expect(hesitant).toMatchObject({ stage: 1, modelId: 'fraud', modelVersion: 3 });
    await stage0.session.release();
    await runner.close();
  });
});
